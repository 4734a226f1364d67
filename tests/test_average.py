"""Tests of lingolite.average: checkpoint averaging."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lingolite.average import average_checkpoints, last_checkpoints, main
from lingolite.checkpoint import CheckpointError, load_pretrained, save_pretrained
from lingolite.model import LingoLite
from lingolite.tokenizer import Tokenizer
from lingolite.utils import set_seed
from tests.helpers import small_config


def checkpoint(folder: Path, seed: int, tokenizer: Tokenizer, **overrides: int) -> Path:
    set_seed(seed)
    model = LingoLite(small_config(vocab_size=tokenizer.vocab_size, **overrides))
    save_pretrained(model, folder)
    tokenizer.save(folder)
    return folder


def test_average_is_the_elementwise_mean(tmp_path: Path, toy_tokenizer: Tokenizer) -> None:
    run = tmp_path / "run" / "checkpoints"
    paths = [checkpoint(run / f"step-{s:06d}", s, toy_tokenizer) for s in (100, 200, 300)]
    assert last_checkpoints(tmp_path / "run", 2) == paths[1:]
    assert (
        main(["--run", str(tmp_path / "run"), "--last", "2", "--out", str(tmp_path / "avg")]) == 0
    )
    averaged = load_pretrained(tmp_path / "avg").state_dict()
    a, b = (load_pretrained(p).state_dict() for p in paths[1:])
    for key, value in averaged.items():
        torch.testing.assert_close(value, (a[key] + b[key]) / 2)
    assert Tokenizer.from_pretrained(tmp_path / "avg").model_proto == toy_tokenizer.model_proto
    with pytest.raises(CheckpointError, match="it has 3"):
        last_checkpoints(tmp_path / "run", 4)


def test_refuses_mismatched_configs_and_foreign_folders(
    tmp_path: Path, toy_tokenizer: Tokenizer
) -> None:
    one = checkpoint(tmp_path / "one", 0, toy_tokenizer)
    two = checkpoint(tmp_path / "two", 1, toy_tokenizer, n_decoder_layers=1)
    with pytest.raises(CheckpointError, match=r"two differs from .*one in its model config"):
        average_checkpoints([one, two], tmp_path / "avg")
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("precious")
    with pytest.raises(CheckpointError, match="replaces only a model folder"):
        average_checkpoints([one], thesis, force=True)
    assert (thesis / "chapter1.tex").read_text() == "precious"
