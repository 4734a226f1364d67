"""The Java core of ``android_demo/``: compiled with javac and tested with JUnit 4 on this machine.

Golden files are written fresh for the session by ``scripts/make_android_goldens.py`` from the
Python reference code (the shipped tokenizer if ``pretrained/lingolite-tiny-multi30k`` exists,
else one trained on the shared Multi30k train split), so the JUnit tests check the Java tokenizer,
search and manifest code against what Python does today. Nothing here is skipped: a missing JDK,
JUnit jar or data folder fails with the command that fixes it.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sentencepiece as spm

from export.vocab import VocabError, vocab_from_model_proto, vocab_from_tokenizer
from lingolite.tokenizer import Tokenizer

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "android_demo" / "core" / "src"
DATA = ROOT.parent / "shared" / "data" / "multi30k"
PRETRAINED = ROOT / "pretrained" / "lingolite-tiny-multi30k"
JAVA_DIR = Path("/usr/share/java")
SETUP = "apt-get update && apt-get install -y openjdk-17-jdk-headless junit4"
TEST_CLASSES = sorted(p.stem for p in (CORE / "test/java/ai/lingolite/core").glob("*Test.java"))


def _classpath() -> str:
    """javac/java on PATH and the Debian JUnit 4 + Hamcrest jars, or a failure naming the fix."""
    problems = [f"`{tool}` is not on PATH" for tool in ("javac", "java") if not shutil.which(tool)]
    jars = [JAVA_DIR / "junit4.jar", JAVA_DIR / "hamcrest-core.jar"]
    problems += [f"{jar} is missing" for jar in jars if not jar.is_file()]
    if problems:
        pytest.fail(
            "cannot run the Android Java tests: "
            + "; ".join(problems)
            + f". Run the setup: {SETUP}",
            pytrace=False,
        )
    extra = JAVA_DIR / "hamcrest.jar"  # Debian's hamcrest-core.jar may only point at this one
    return ":".join(str(j) for j in [*jars, *([extra] if extra.is_file() else [])])


@pytest.fixture(scope="session")
def android_goldens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not DATA.is_dir():
        pytest.fail(f"the shared Multi30k data is not at {DATA}; the Java tokenizer goldens need "
                    "its test_2016_flickr files", pytrace=False)  # fmt: skip
    out = tmp_path_factory.mktemp("android_goldens")
    cmd = [sys.executable, str(ROOT / "scripts" / "make_android_goldens.py"),
           "--out", str(out), "--data", str(DATA)]  # fmt: skip
    if (PRETRAINED / "tokenizer.json").is_file():
        cmd += ["--tokenizer", str(PRETRAINED)]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{run.stderr[-4000:]}", pytrace=False)
    return out


@pytest.fixture(scope="session")
def java_classes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    classpath = _classpath()
    out = tmp_path_factory.mktemp("android_java_classes")
    sources = sorted(str(p) for p in CORE.rglob("*.java"))
    # --release 11: the core must stay within what Android's desugared Java supports.
    cmd = ["javac", "--release", "11", "-encoding", "UTF-8", "-Xlint:all", "-Werror",
           "-d", str(out), "-cp", classpath, *sources]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        pytest.fail(f"javac failed:\n{run.stdout}{run.stderr}", pytrace=False)
    return out, classpath


def test_app_compiles_against_api_stubs(tmp_path: Path) -> None:
    """The app module (Activity + ExecuTorch adapter) type-checks against stand-ins carrying the
    signatures of the Android SDK and executorch-android classes it uses (android_demo/stubs)."""
    _classpath()
    demo = ROOT / "android_demo"
    sources = sorted(
        str(p)
        for folder in ("core/src/main", "stubs/src", "app/src/main")
        for p in (demo / folder).rglob("*.java")
    )
    cmd = ["javac", "--release", "17", "-encoding", "UTF-8", "-Xlint:all", "-Werror",
           "-d", str(tmp_path), *sources]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"javac failed on the app sources:\n{run.stdout}{run.stderr}"


def test_test_classes_found() -> None:
    assert set(TEST_CLASSES) >= {"JsonTest", "ManifestTest", "SearchGoldenTest", "SearchTest",
                                 "TokenizerGoldenTest"}, TEST_CLASSES  # fmt: skip


@pytest.mark.parametrize("test_class", TEST_CLASSES)
def test_junit(test_class: str, java_classes: tuple[Path, str], android_goldens: Path) -> None:
    classes, classpath = java_classes
    cmd = ["java", f"-Dlingolite.goldens={android_goldens}", "-cp", f"{classes}:{classpath}",
           "org.junit.runner.JUnitCore", f"ai.lingolite.core.{test_class}"]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    output = run.stdout + run.stderr
    ok = re.search(r"^OK \((\d+) tests?\)", output, re.MULTILINE)
    assert run.returncode == 0 and ok and int(ok.group(1)) > 0, f"JUnit failed:\n{output[-6000:]}"


# ------------------------------------------------------------------ export/vocab.py


def test_vocab_scores_round_trip_exactly(toy_tokenizer: Tokenizer) -> None:
    vocab = json.loads(json.dumps(vocab_from_tokenizer(toy_tokenizer)))
    sp = spm.SentencePieceProcessor(model_proto=toy_tokenizer.model_proto)
    assert len(vocab["pieces"]) == sp.get_piece_size()
    for i, (piece, score, kind) in enumerate(vocab["pieces"]):
        assert piece == sp.id_to_piece(i) and score == sp.get_score(i)
        assert (kind == "CONTROL") == sp.is_control(i) and (kind == "UNKNOWN") == sp.is_unknown(i)
    assert vocab["normalizer"]["name"] == "nmt_nfkc"
    assert vocab["lang_ids"] == {
        lang: toy_tokenizer.lang_id(lang) for lang in toy_tokenizer.languages
    }
    assert (vocab["unk_id"], vocab["bos_id"], vocab["eos_id"], vocab["pad_id"]) == (3, 1, 2, 0)


def test_vocab_refuses_what_java_does_not_implement() -> None:
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["a b c d e f g h", "hello world", "bytes and more"] * 20),
        model_writer=writer, model_type="bpe", vocab_size=300, byte_fallback=True,
        treat_whitespace_as_suffix=True, hard_vocab_limit=False, minloglevel=2,
    )  # fmt: skip
    with pytest.raises(VocabError) as info:
        vocab_from_model_proto(writer.getvalue())
    message = str(info.value)
    for fragment in ("only unigram", "byte_fallback", "treat_whitespace_as_suffix", "BYTE piece"):
        assert fragment in message
