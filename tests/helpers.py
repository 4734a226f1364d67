"""Small builders shared by the core tests."""

from __future__ import annotations

from typing import Any

import torch

from lingolite.config import ModelConfig
from lingolite.model import LingoLite
from lingolite.tokenizer import TokenId
from lingolite.utils import set_seed

VOCAB = 97


def token_ids(*values: int) -> list[TokenId]:
    """Made-up token ids (a test's sources and expected outputs), typed as token ids."""
    return [TokenId(v) for v in values]


def small_config(**overrides: Any) -> ModelConfig:
    """A fast model for unit tests: 2+2 layers, d_model 32, GQA 4:2."""
    values: dict[str, Any] = dict(
        vocab_size=VOCAB, d_model=32, n_heads=4, n_kv_heads=2, n_encoder_layers=2,
        n_decoder_layers=2, ffn_dim=64, max_src_len=24, max_tgt_len=16, dropout=0.0,
    )  # fmt: skip
    values.update(overrides)
    return ModelConfig(**values)


def small_model(seed: int = 0, **overrides: Any) -> LingoLite:
    set_seed(seed)
    return LingoLite(small_config(**overrides)).eval()


def random_batch(
    batch: int, length: int, seed: int = 0, vocab: int = VOCAB
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random source ids (b, s) with ragged right padding and its bool mask."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (batch, length), generator=gen)
    lengths = torch.randint(1, length + 1, (batch,), generator=gen)
    lengths[0] = length
    mask = torch.arange(length)[None, :] < lengths[:, None]
    return torch.where(mask, ids, 0), mask
