"""The Java core of ``android_demo/``: compiled with javac and tested with JUnit 4 on this machine.

Golden files are written fresh for the session by ``scripts/make_android_goldens.py`` from the
Python reference code (the shipped tokenizer if ``pretrained/lingolite-tiny-multi30k`` exists,
else one trained on the shared Multi30k train split), so the JUnit tests check the Java tokenizer,
search and manifest code against what Python does today. Nothing here is skipped: a missing JDK,
JUnit jar or data folder fails with the command that fixes it.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import re
import shutil
import struct
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import sentencepiece as spm
import torch

from export.common import ExportOptions
from export.executorch import export_executorch
from export.vocab import VocabError, vocab_from_model_proto, vocab_from_tokenizer
from lingolite.marian_tokenizer import MarianTokenizer
from lingolite.search import SearchConfig, generate, pad_batch
from lingolite.tokenizer import Tokenizer
from lingolite.tokenizers import load_tokenizer
from runtime.executorch_backend import ExecuTorchBackend
from runtime.manifest import load_manifest
from runtime.translator import Translator
from tests import executorch_bridge
from tests.conftest import multi30k_or_sample
from tests.marian_fixtures import SENTENCES
from tests.marian_goldens import write_marian_golden

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "android_demo" / "core" / "src"
APP = ROOT / "android_demo" / "app"
ANDROID_JAR = ROOT / "build" / "android" / "android-23.jar"  # scripts/fetch_android_platform.py
DATA = multi30k_or_sample()
PRETRAINED = ROOT / "pretrained" / "lingolite-tiny-multi30k"
# The browser demo's committed tokenizer golden (Python SentencePiece ids of test_2016_flickr and
# the general dev sets): the Java tokenizer is checked on the same cases as the JS one.
WEB_GOLDEN = ROOT / "web_demo" / "test" / "golden" / "tokenizer.json.gz"
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
    out = tmp_path_factory.mktemp("android_goldens")
    cmd = [sys.executable, str(ROOT / "scripts" / "make_android_goldens.py"),
           "--out", str(out), "--data", str(DATA)]  # fmt: skip
    if (PRETRAINED / "tokenizer.json").is_file():
        cmd += ["--tokenizer", str(PRETRAINED)]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{run.stderr[-4000:]}", pytrace=False)
    write_marian_golden(out)  # MarianTokenizerTest: the Python MarianTokenizer's ids and text
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


def _android_platform() -> tuple[str, Path]:
    """``aapt`` and the Android API 23 framework jar, or a failure naming the fix."""
    problems = []
    aapt = shutil.which("aapt")
    if aapt is None:
        problems.append("`aapt` is not on PATH (apt-get install -y aapt)")
    if not ANDROID_JAR.is_file():
        problems.append(f"{ANDROID_JAR} is missing (python scripts/fetch_android_platform.py)")
    if problems or aapt is None:
        pytest.fail("cannot build the Android app's sources: " + "; ".join(problems), pytrace=False)
    return aapt, ANDROID_JAR


def _aapt_package(manifest: Path, res: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """Compile and link the app's manifest and resources against the framework, as the Android
    build does, writing the resource APK and the generated ``R.java`` under ``out``."""
    aapt, jar = _android_platform()
    # AGP takes the package from `namespace` in app/build.gradle.kts and merges it into the
    # manifest; plain aapt needs it written in the manifest.
    gradle = (APP / "build.gradle.kts").read_text()
    namespace = re.search(r'namespace = "([\w.]+)"', gradle)
    assert namespace is not None, "app/build.gradle.kts declares no namespace"
    merged = out / "AndroidManifest.xml"
    merged.write_text(
        manifest.read_text(encoding="utf-8").replace(
            "<manifest ", f'<manifest package="{namespace.group(1)}" ', 1
        ),
        encoding="utf-8",
    )
    (out / "gen").mkdir(exist_ok=True)
    cmd = [aapt, "package", "-f", "-m", "-J", str(out / "gen"), "-M", str(merged),
           "-S", str(res), "-I", str(jar), "-F", str(out / "resources.ap_"),
           "--min-sdk-version", "26", "--target-sdk-version", "35"]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def app_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app module built as far as this machine allows: manifest and layouts compiled by aapt
    against the real Android API 23 framework resources, and its Java type-checked with -Werror
    against the real API 23 framework classes, the aapt-generated R and the core. Only the three
    executorch-android classes are stand-ins (android_demo/jvm_executorch: the AAR is on Maven
    only). Returns the class folder (core + app + stand-ins + the JVM driver)."""
    classpath = _classpath()
    out = tmp_path_factory.mktemp("android_app")
    run = _aapt_package(APP / "src/main/AndroidManifest.xml", APP / "src/main/res", out)
    assert run.returncode == 0, f"aapt failed on the app's resources:\n{run.stdout}{run.stderr}"
    r_java = out / "gen/ai/lingolite/demo/R.java"
    assert r_java.is_file(), sorted(p.name for p in (out / "gen").rglob("*"))
    assert (out / "resources.ap_").stat().st_size > 0
    demo = ROOT / "android_demo"
    sources = sorted(
        str(p)
        for folder in ("core/src/main", "jvm_executorch/src", "app/src/main")
        for p in (demo / folder).rglob("*.java")
    )
    cmd = ["javac", "--release", "11", "-encoding", "UTF-8", "-Xlint:all", "-Werror",
           "-d", str(out / "classes"), "-cp", f"{ANDROID_JAR}:{classpath}",
           *sources, str(r_java)]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"javac failed on the app sources:\n{run.stdout}{run.stderr}"
    return out / "classes"


def test_app_builds_against_android_framework(app_classes: Path) -> None:
    for name in ("MainActivity", "ExecuTorchModel", "R$id", "R$string", "R$layout"):
        assert (app_classes / f"ai/lingolite/demo/{name}.class").is_file(), name


def test_aapt_refuses_attributes_the_framework_lacks(tmp_path: Path) -> None:
    """The resource check has teeth: a layout attribute API 23 does not define (autofill came in
    API 26) is refused, as is a layout naming a string that does not exist."""
    res = tmp_path / "res"
    shutil.copytree(APP / "src/main/res", res)
    layout = res / "layout/activity_main.xml"
    text = layout.read_text(encoding="utf-8")
    for broken, message in [
        ('android:id="@+id/source"', "importantForAutofill"),
        ('android:hint="@string/source_hint"', "no_such_string"),
    ]:
        assert broken in text
        patch = (
            broken + ' android:importantForAutofill="no"'
            if message == "importantForAutofill"
            else 'android:hint="@string/no_such_string"'
        )
        layout.write_text(text.replace(broken, patch, 1), encoding="utf-8")
        out = tmp_path / message
        out.mkdir()
        run = _aapt_package(APP / "src/main/AndroidManifest.xml", res, out)
        assert run.returncode != 0, f"aapt accepted a layout using {message}"
        assert message in run.stderr, run.stderr


def test_test_classes_found() -> None:
    assert set(TEST_CLASSES) >= {"JsonTest", "ManifestTest", "SearchGoldenTest", "SearchTest",
                                 "TokenizerGoldenTest", "MarianTokenizerTest"}, TEST_CLASSES  # fmt: skip


@pytest.mark.parametrize("test_class", TEST_CLASSES)
def test_junit(test_class: str, java_classes: tuple[Path, str], android_goldens: Path) -> None:
    classes, classpath = java_classes
    cmd = ["java", f"-Dlingolite.goldens={android_goldens}",
           f"-Dlingolite.web_golden={WEB_GOLDEN}", "-cp", f"{classes}:{classpath}",
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


# ------------------------------------------------------ the app's Java against a real .pte

PHONE_MAX_LEN = 64  # static lengths of the test export (the shipped model's are 128)
PHONE_SENTENCES = 12


@pytest.fixture(scope="module")
def phone_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped model exported for the phone: fp32 program, int64 masks, vocab.json."""
    if not (PRETRAINED / "config.json").is_file():
        pytest.fail(f"the shipped model is not at {PRETRAINED}", pytrace=False)
    out = tmp_path_factory.mktemp("phone") / "tiny-executorch"
    options = ExportOptions(
        out=out, checkpoint=PRETRAINED, max_src_len=PHONE_MAX_LEN, max_tgt_len=PHONE_MAX_LEN
    )
    return export_executorch(options, ("fp32",), mask_dtype="int64")


@pytest.mark.parametrize(("src", "tgt", "beams"), [("en", "de", 1), ("en", "de", 4),
                                                   ("de", "en", 4), ("fr", "en", 1)])  # fmt: skip
def test_app_translates_like_the_python_runtime(
    src: str, tgt: str, beams: int, app_classes: Path, phone_export: Path, tmp_path: Path
) -> None:
    """The app's own path (LingoliteArtifact.open, ExecuTorchModel.open/translator, the Java
    tokenizer and search) run by ``JvmTranslate`` on the JVM, with jvm_executorch executing the
    real .pte in the C++ ExecuTorch runtime, gives the Python runtime's source ids, output ids and
    text for test_2016_flickr sentences. Only the JNI layer of executorch-android is not in it."""
    with gzip.open(DATA / f"test_2016_flickr.{src}.gz", "rt", encoding="utf-8") as f:
        sentences = [next(f).strip() for _ in range(PHONE_SENTENCES)]
    sources, out = tmp_path / "sources.txt", tmp_path / "out.tsv"
    sources.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    cmd = ["java", f"-Dexecutorch.bridge={sys.executable} -m tests.executorch_bridge",
           f"-Dexecutorch.bridge.dir={ROOT}", "-cp", str(app_classes),
           "ai.lingolite.demo.JvmTranslate", str(phone_export), tgt, str(beams), str(sources),
           str(out)]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"JvmTranslate failed:\n{run.stdout}{run.stderr[-6000:]}"
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(sentences) and all(len(r) == 6 for r in rows), rows

    manifest = load_manifest(phone_export)
    tok = Tokenizer.from_pretrained(manifest.tokenizer_dir)
    backend = ExecuTorchBackend(manifest, "fp32")
    config = SearchConfig(max_length=PHONE_MAX_LEN, num_beams=beams)
    texts = Translator(tok, backend, max_src_len=PHONE_MAX_LEN).translate(
        sentences, src, tgt, num_beams=beams, batch_size=1
    )
    for sentence, text, row in zip(sentences, texts, rows, strict=True):
        tokens, source_ids, encode_ms, decode_ms, steps, java_text = row
        ids = tok.encode_source(sentence, tgt, max_len=PHONE_MAX_LEN)
        assert [int(i) for i in source_ids.split()] == ids, sentence
        src_ids, src_mask = pad_batch([ids], tok.pad_id)
        hyp = generate(backend, src_ids, src_mask, bos_id=tok.bos_id, eos_id=tok.eos_id,
                       pad_id=tok.pad_id, config=config)[0]  # fmt: skip
        assert [int(i) for i in tokens.split()] == hyp, sentence
        assert java_text == text == tok.decode(hyp) and text.strip(), sentence
        assert float(encode_ms) > 0 and float(decode_ms) > 0 and int(steps) >= len(hyp)


@pytest.fixture(scope="module")
def marian_phone_export(marian_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small imported Marian en-de model (tests/marian_fixtures.py) exported for the phone:
    fp32 program, int64 masks, a "marian-sentencepiece" vocab.json; static lengths 48 and 32."""
    out = tmp_path_factory.mktemp("marian-phone") / "marian-executorch"
    options = ExportOptions(out=out, checkpoint=marian_checkpoint)
    return export_executorch(options, ("fp32",), mask_dtype="int64")


def _jvm_translate(
    app_classes: Path, folder: Path, tgt: str, beams: int, sentences: list[str], tmp_path: Path
) -> list[list[str]]:
    """``JvmTranslate``'s rows for ``sentences``: output ids, source ids, encode ms, decode ms,
    steps and text."""
    sources, out = tmp_path / f"sources-{beams}.txt", tmp_path / f"out-{beams}.tsv"
    sources.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    cmd = ["java", f"-Dexecutorch.bridge={sys.executable} -m tests.executorch_bridge",
           f"-Dexecutorch.bridge.dir={ROOT}", "-cp", str(app_classes),
           "ai.lingolite.demo.JvmTranslate", str(folder), tgt, str(beams), str(sources),
           str(out)]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"JvmTranslate failed:\n{run.stdout}{run.stderr[-6000:]}"
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(sentences) and all(len(r) == 6 for r in rows), rows
    return rows


@pytest.mark.parametrize("beams", [1, 4])
def test_app_translates_an_imported_marian_model_like_the_python_runtime(
    beams: int, app_classes: Path, marian_phone_export: Path, tmp_path: Path
) -> None:
    """The same path for an imported OPUS-MT-style model: the Java MarianTokenizer (no language
    tag: a single-pair model), decoding from pad (the manifest's bos_id), Marian's eos 0 and the
    program's pad logit ban give the Python runtime's source ids, output ids and text."""
    manifest = load_manifest(marian_phone_export)
    assert manifest.directions == ["en-de"] and manifest.lang_ids == {}
    rows = _jvm_translate(app_classes, marian_phone_export, "de", beams, SENTENCES, tmp_path)
    tok = load_tokenizer(manifest.tokenizer_dir)
    assert isinstance(tok, MarianTokenizer) and tok.bos_id == tok.pad_id
    backend = ExecuTorchBackend(manifest, "fp32")
    max_len = manifest.model["max_tgt_len"]
    config = SearchConfig(max_length=max_len, num_beams=beams)
    texts = Translator.from_manifest(manifest, "executorch", "fp32").translate(
        SENTENCES, "en", "de", num_beams=beams, batch_size=1
    )
    lengths = set()
    for sentence, text, row in zip(SENTENCES, texts, rows, strict=True):
        tokens, source_ids, encode_ms, decode_ms, steps, java_text = row
        ids = tok.encode_source(sentence, "de", max_len=manifest.model["max_src_len"])
        assert ids[-1] == tok.eos_id and tok.pad_id not in ids
        assert [int(i) for i in source_ids.split()] == ids, sentence
        src_ids, src_mask = pad_batch([ids], tok.pad_id)
        hyp = generate(backend, src_ids, src_mask, bos_id=tok.bos_id, eos_id=tok.eos_id,
                       pad_id=tok.pad_id, config=config)[0]  # fmt: skip
        assert [int(i) for i in tokens.split()] == hyp, sentence
        assert java_text == text == tok.decode(hyp), sentence
        assert float(encode_ms) > 0 and float(decode_ms) > 0 and int(steps) >= len(hyp)
        lengths.add(len(hyp))
    # the fixture's outputs depend on the source; some end with eos, some at the length limit
    assert len(lengths) >= 2 and len(set(texts)) >= 3, (lengths, texts)


def _bridge(program: Path, requests: bytes) -> io.BytesIO:
    out = io.BytesIO()
    executorch_bridge.serve(program, io.BytesIO(requests), out)
    out.seek(0)
    return out


def _execute(method: str, *tensors: np.ndarray) -> bytes:
    buf = io.BytesIO()
    buf.write(struct.pack(">i", 1))
    executorch_bridge.write_string(buf, method)
    buf.write(struct.pack(">i", len(tensors)))
    for array in tensors:
        executorch_bridge.write_tensor(buf, torch.from_numpy(array))
    return buf.getvalue()


def test_bridge_reports_runtime_errors(phone_export: Path, tmp_path: Path) -> None:
    """What the JVM Module raises comes from the ExecuTorch runtime: a program that is not one, an
    input of the wrong dtype (a bool mask for an int64-mask program) and an unknown method are
    error replies, and a correct call after them still works."""
    garbage = tmp_path / "garbage.pte"
    garbage.write_bytes(b"not a flatbuffer" * 64)
    reply = _bridge(garbage, b"")
    assert executorch_bridge.read_int(reply) == 1
    assert executorch_bridge.read_string(reply)

    program = next(phone_export.glob("*.pte"))
    ids = np.zeros((1, PHONE_MAX_LEN), np.int64)
    good_mask = np.zeros((1, PHONE_MAX_LEN), np.int64)
    good_mask[0, :3] = 1
    requests = (
        _execute("encode", ids, good_mask.astype(np.bool_))
        + _execute("no_such_method", ids)
        + _execute("encode", ids, good_mask)
        + struct.pack(">i", 0)
    )
    reply = _bridge(program, requests)
    assert executorch_bridge.read_int(reply) == 0
    names = [executorch_bridge.read_string(reply) for _ in range(executorch_bridge.read_int(reply))]
    assert {"encode", "decode_step"} <= set(names)
    assert executorch_bridge.read_int(reply) == 1  # bool mask refused by Method::set_input
    assert executorch_bridge.read_string(reply)
    assert executorch_bridge.read_int(reply) == 1
    assert "no method 'no_such_method'" in executorch_bridge.read_string(reply)
    assert executorch_bridge.read_int(reply) == 0
    outputs = [
        executorch_bridge.read_tensor(reply) for _ in range(executorch_bridge.read_int(reply))
    ]
    assert len(outputs) == 2 and outputs[0].dtype == torch.float32
    assert outputs[0].shape[:2] == (int(load_manifest(phone_export).model["n_decoder_layers"]), 1)


# ------------------------------------------------------ scripts/fetch_android_platform.py


def _fetch_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fetch_android_platform", ROOT / "scripts" / "fetch_android_platform.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _deb(members: dict[str, bytes]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members.items():
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n"
        out += header.encode("ascii") + data + (b"\n" if len(data) % 2 else b"")
    return out


def _tar_xz(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_fetch_android_platform_checks_what_it_extracts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch = _fetch_module()
    tampered = _deb({"debian-binary": b"2.0\n", "data.tar.xz": _tar_xz(fetch.MEMBER, b"jar")})
    with pytest.raises(fetch.FetchError, match=r"sha256 [0-9a-f]{64} != pinned"):
        fetch.extract_jar(tampered)
    with pytest.raises(fetch.FetchError, match=r"has no data\.tar\.xz"):
        fetch.extract_jar(_deb({"debian-binary": b"2.0\n"}))
    with pytest.raises(fetch.FetchError, match="not an ar archive"):
        fetch.extract_jar(b"PK\x03\x04")

    # A jar already in place with the pinned hash is kept without downloading; a wrong one is
    # replaced, and a failed download leaves nothing behind.
    def no_network() -> bytes:
        raise fetch.FetchError("offline")

    monkeypatch.setattr(fetch, "download", no_network)
    _android_platform()
    kept = tmp_path / "ok" / "android-23.jar"
    kept.parent.mkdir()
    shutil.copyfile(ANDROID_JAR, kept)
    assert fetch.fetch(kept) == kept
    stale = tmp_path / "stale" / "android-23.jar"
    stale.parent.mkdir()
    stale.write_bytes(b"half a jar")
    with pytest.raises(fetch.FetchError, match="offline"):
        fetch.fetch(stale)
    assert sorted(p.name for p in stale.parent.iterdir()) == ["android-23.jar"]
    assert fetch.main(["--out", str(tmp_path / "new" / "android-23.jar")]) == 1
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())
