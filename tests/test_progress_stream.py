"""Long work: the translate CLI streams any input size in bounded chunks; parity shows text."""

from __future__ import annotations

import importlib
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from export.parity import check_parity, parity_sentences
from lingolite import utils
from lingolite.generate import EagerBackend
from lingolite.search import Cache, FloatArray, Memory
from lingolite.tokenizer import Tokenizer
from runtime import translate
from runtime.translator import Translation, Translator, TranslatorError
from tests.helpers import small_model

LINES = 5_000  # about 80 chunks of translate.CHUNK_LINES


class CountingRaw(io.RawIOBase):
    """Bytes served from memory, counting how many were read so far."""

    def __init__(self, data: bytes) -> None:
        self.data, self.read_so_far = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self.data[self.read_so_far : self.read_so_far + min(len(buffer), 4096)]
        buffer[: len(chunk)] = chunk
        self.read_so_far += len(chunk)
        return len(chunk)


class FakeStdin:
    def __init__(self, raw: CountingRaw) -> None:
        self.buffer = io.BufferedReader(raw, buffer_size=4096)


class CopyTranslator:
    """Upper-cases each text; checks at each call that the CLI streams."""

    def __init__(self, raw: CountingRaw, out: Path, fail_at: int | None = None) -> None:
        self.raw, self.out, self.fail_at = raw, out, fail_at
        self.calls: list[int] = []
        self.temp_sizes: list[int] = []

    def translate_detailed(self, texts: Sequence[str], src: str, tgt: str, **_: Any) -> list[Any]:
        self.calls.append(len(texts))
        if len(self.calls) == self.fail_at:
            raise TranslatorError("backend failed in the middle")
        # Input is read as it is needed, not whole: bounded memory for any size.
        if len(self.calls) <= 10:
            assert self.raw.read_so_far < len(self.raw.data) // 4
        # Output so far sits in a temporary file beside --output; --output is still the old one.
        (temp,) = [p for p in self.out.parent.iterdir() if p.name.startswith(".out.txt.tmp-")]
        self.temp_sizes.append(temp.stat().st_size)
        assert self.out.read_text(encoding="utf-8") == "old\n"
        return [Translation(text.upper(), 1, False) for text in texts]


def run(
    monkeypatch: pytest.MonkeyPatch, data: bytes, out: Path, fail_at: int | None = None
) -> tuple[int, CopyTranslator]:
    raw = CountingRaw(data)
    fake = CopyTranslator(raw, out, fail_at)
    monkeypatch.setattr(translate, "load_manifest", lambda folder: object())
    monkeypatch.setattr(Translator, "from_manifest", lambda *a, **k: fake)
    monkeypatch.setattr(sys, "stdin", FakeStdin(raw))
    argv = ["--artifacts", "unused", "--src", "en", "--tgt", "de", "--output", str(out)]
    return translate.main([*argv, "--quiet"]), fake


def test_large_input_is_streamed_in_chunks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lines = [f"line {i} of a long input, caf\u00e9 {'x' * (i % 50)}" for i in range(LINES)]
    out = tmp_path / "out.txt"
    out.write_text("old\n", encoding="utf-8")
    status, fake = run(monkeypatch, "\r\n".join(lines).encode() + b"\n", out)
    assert status == 0
    assert out.read_text(encoding="utf-8") == "".join(f"{line.upper()}\n" for line in lines)
    assert max(fake.calls) == translate.CHUNK_LINES and sum(fake.calls) == LINES
    assert fake.temp_sizes == sorted(fake.temp_sizes) and fake.temp_sizes[-1] > 0  # grew
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_failure_mid_stream_keeps_the_old_output(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.txt"
    out.write_text("old\n", encoding="utf-8")
    data = "".join(f"text {i}\n" for i in range(LINES)).encode()
    assert run(monkeypatch, data, out, fail_at=3)[0] == 2
    assert "backend failed in the middle" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]

    # Invalid UTF-8 deep in the input: named by line and offset, nothing replaced.
    bad = data + b"caf\xe9\n"
    assert run(monkeypatch, bad, out)[0] == 2
    err = capsys.readouterr().err
    assert f"at offset {len(data) + 3} (line {LINES + 1})" in err
    assert out.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


class NoisyBackend(EagerBackend):
    """Eager plus large uniform noise on the logits: most greedy outputs change."""

    def decode_step(
        self, tokens: Any, pos: int, memory: Memory, cache: Cache
    ) -> tuple[FloatArray, Cache]:
        logits, cache = super().decode_step(tokens, pos, memory, cache)
        rng = np.random.default_rng(pos)
        return logits + rng.uniform(-50, 50, logits.shape).astype(np.float32), cache


def test_parity_mismatches_show_both_translations(toy_tokenizer: Tokenizer) -> None:
    model = small_model(vocab_size=toy_tokenizer.vocab_size)
    sentences = parity_sentences([("en", "de"), ("de", "en")], 4)
    report = check_parity(
        model, toy_tokenizer, NoisyBackend(model), sentences, exact=False, trained=True
    )
    assert not report.passed and report.examples
    summary = report.summary()
    for example in report.examples:
        assert example["eager_text"] == toy_tokenizer.decode(example["eager"])
        assert f"eager:   {example['eager_text']!r}" in summary
        assert f"backend: {example['backend_text']!r}" in summary
        assert repr(example["sentence"]) in summary


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_bars_show_on_a_terminal_unless_quiet(
    monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    for quiet in (False, True):
        stderr = _Terminal() if terminal else io.StringIO()
        monkeypatch.setattr(sys, "stderr", stderr)
        utils.set_quiet(quiet)
        try:
            assert list(utils.progress(range(3), "sentences", unit="batch")) == [0, 1, 2]
        finally:
            utils.set_quiet(False)
        shown = "sentences" in stderr.getvalue()
        assert shown == (terminal and not quiet), (terminal, quiet, stderr.getvalue())


@pytest.mark.parametrize(
    "module",
    [
        "runtime.translate",
        "lingolite.evaluate",
        "export.parity",
        "export.onnx",
        "export.executorch",
        "export.ctranslate2",
    ],
)
def test_long_commands_take_quiet(module: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(module).main(["--help"])
    assert exit_info.value.code == 0
    assert "--quiet" in capsys.readouterr().out
