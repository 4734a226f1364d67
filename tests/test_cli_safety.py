"""The translate CLI and the Translator refuse bad text cleanly and never lose output files."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime import translate
from runtime.translate import main
from runtime.translator import Translator, TranslatorError
from tests.test_onnx_export import toy_artifacts

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def folder(
    tmp_path_factory: pytest.TempPathFactory, toy_tokenizer_dir: Path, toy_corpus_dir: Path
) -> Path:
    return toy_artifacts(tmp_path_factory.getbasetemp(), toy_tokenizer_dir, toy_corpus_dir)[0]


def base(folder: Path) -> list[str]:
    return ["--artifacts", str(folder), "--src", "en", "--tgt", "de"]


@pytest.mark.parametrize("text", ["a\udc80", "\udfff", "a\x00b"], ids=["surrogate", "lone", "nul"])
def test_translator_refuses_bad_text(folder: Path, text: str) -> None:
    translator = Translator.from_artifacts(folder)
    with pytest.raises(TranslatorError, match="text 1"):
        translator.translate(["ok", text], "en", "de")


def test_translator_caps_beams(folder: Path) -> None:
    with pytest.raises(TranslatorError, match="num_beams must be in"):
        Translator.from_artifacts(folder).translate(["A dog."], "en", "de", num_beams=100000)


def test_cli_beams_beyond_the_cap_is_a_clean_error(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: MemoryError (a cache of 100000 beams) and a traceback.
    assert main([*base(folder), "--beams", "100000", "A dog."]) == 2
    assert "num_beams must be in [1, 64], got 100000" in capsys.readouterr().err


def run_cli(args: list[bytes], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable.encode(), b"-m", b"runtime.translate", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_cli_invalid_utf8_everywhere_is_a_clean_error(folder: Path, tmp_path: Path) -> None:
    args = [a.encode() for a in base(folder)]
    bad_arg = run_cli([*args, b"ok", b"caf\xe9"])
    assert bad_arg.returncode == 2 and b"Traceback" not in bad_arg.stderr
    assert b"argument 2 is not valid Unicode" in bad_arg.stderr

    bad_stdin = run_cli(args, stdin=b"fine\ncaf\xe9 au lait\n")
    assert bad_stdin.returncode == 2 and b"Traceback" not in bad_stdin.stderr
    assert b"stdin is not valid UTF-8" in bad_stdin.stderr and b"line 2" in bad_stdin.stderr

    source = tmp_path / "in.txt"
    source.write_bytes(b"one\ntwo\n\xff\xfe three\n")
    bad_file = run_cli([*args, b"--input", str(source).encode()])
    assert bad_file.returncode == 2 and b"Traceback" not in bad_file.stderr
    assert b"is not valid UTF-8" in bad_file.stderr and b"line 3" in bad_file.stderr

    nul = run_cli(args, stdin=b"ok\nbad\x00\n")
    assert nul.returncode == 2 and b"line 2 contains a NUL" in nul.stderr


def test_cli_output_is_replaced_only_on_success(
    folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out.txt"
    out.write_text("precious old translations\n", encoding="utf-8")
    # A failure after the output was named (unknown language): the old file is intact.
    assert main([*base(folder)[:-1], "xx", "--output", str(out), "A dog."]) == 2
    assert out.read_text(encoding="utf-8") == "precious old translations\n"

    # A full disk while writing (ENOSPC surfaces on fsync at the latest): the old file is
    # intact and no temporary file is left.
    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    monkeypatch.setattr(sys, "stdin", io.StringIO("A dog.\nA cat.\n"))
    assert main([*base(folder), "--output", str(out)]) == 2
    monkeypatch.undo()
    assert "No space left" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "precious old translations\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]

    assert main([*base(folder), "--output", str(out), "A dog.", "A cat."]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_decode_utf8_names_the_offset() -> None:
    with pytest.raises(translate.InputError, match=r"offset 4 \(line 2\)"):
        translate.decode_utf8(b"abc\n\x80", "stdin")
