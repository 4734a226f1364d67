"""The two programs every export target ships, as small ``nn.Module`` wrappers, and their I/O.

Both the ONNX and the ExecuTorch exporters trace these wrappers, so the programs' inputs and
outputs are named and ordered once, here. Shapes use the legend of :mod:`lingolite.model`
(``L`` decoder layers, ``b`` batch, ``h_kv`` key/value heads, ``s`` source length, ``T``
``max_tgt_len``, ``d`` head dim, ``V`` vocabulary):

``encoder``: ``src_ids`` int64 ``(b, s)``, ``src_mask`` bool ``(b, s)``
-> ``cross_k``, ``cross_v`` float32 ``(L, b, h_kv, s, d)``

``decoder`` (one program for every step, see the cache rule in :mod:`lingolite.search`):
``tokens`` int64 ``(b, 1)``, ``pos`` int64 ``(1,)``, ``src_mask``, ``cross_k``, ``cross_v``,
``self_k``, ``self_v`` float32 ``(L, b, h_kv, T, d)``
-> ``logits`` float32 ``(b, V)``, ``new_self_k``, ``new_self_v`` (shapes of ``self_k``/``self_v``)

``b`` and ``s`` are dynamic (``s`` up to ``max_src_len``); the cache length ``T`` is static.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lingolite.config import ModelConfig
from lingolite.model import LingoLite

ENCODER_INPUTS = ("src_ids", "src_mask")
ENCODER_OUTPUTS = ("cross_k", "cross_v")
DECODER_INPUTS = ("tokens", "pos", "src_mask", "cross_k", "cross_v", "self_k", "self_v")
# An ONNX graph cannot name an output like an input, hence the ``new_`` prefix.
DECODER_OUTPUTS = ("logits", "new_self_k", "new_self_v")
# Names of the dynamic dimensions in signatures and ``dynamic_shapes``.
BATCH, SRC_LEN = "batch", "src_len"


class EncoderProgram(nn.Module):
    """``(src_ids, src_mask) -> (cross_k, cross_v)``: :meth:`LingoLite.encode`."""

    def __init__(self, model: LingoLite) -> None:
        super().__init__()
        self.model = model
        self.eval()  # programs are for inference: no dropout, and exporters check the flag

    def forward(self, src_ids: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        return self.model.encode(src_ids, src_mask)


class DecoderStepProgram(nn.Module):
    """One cached decoder step: :meth:`LingoLite.decode_step`."""

    def __init__(self, model: LingoLite) -> None:
        super().__init__()
        self.model = model
        self.eval()

    def forward(
        self,
        tokens: Tensor,
        pos: Tensor,
        src_mask: Tensor,
        cross_k: Tensor,
        cross_v: Tensor,
        self_k: Tensor,
        self_v: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        return self.model.decode_step(tokens, pos, src_mask, cross_k, cross_v, self_k, self_v)


def example_inputs(
    model: LingoLite, batch: int = 2, src_len: int = 7
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, ...]]:
    """Example encoder and decoder inputs for tracing.

    The defaults avoid the sizes 0 and 1, which ``torch.export`` would specialise on; the second
    row's source is padded so that the trace sees a real mask.
    """
    c = model.config
    if not 2 <= src_len <= c.max_src_len:
        raise ValueError(f"example src_len must be in [2, {c.max_src_len}], got {src_len}")
    gen = torch.Generator().manual_seed(0)
    src_ids = torch.randint(4, c.vocab_size, (batch, src_len), generator=gen)
    src_mask = torch.ones(batch, src_len, dtype=torch.bool)
    src_mask[1:, src_len // 2 :] = False
    with torch.no_grad():
        cross_k, cross_v = model.encode(src_ids, src_mask)
    self_k, self_v = model.empty_cache(batch)
    tokens = torch.full((batch, 1), c.bos_id, dtype=torch.int64)
    pos = torch.zeros(1, dtype=torch.int64)
    return (src_ids, src_mask), (tokens, pos, src_mask, cross_k, cross_v, self_k, self_v)


def dynamic_shapes(config: ModelConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """``torch.export`` dynamic shapes of the encoder and decoder inputs (batch and src_len)."""
    batch = torch.export.Dim(BATCH, min=1)
    src_len = torch.export.Dim(SRC_LEN, min=1, max=config.max_src_len)
    mask = {0: batch, 1: src_len}
    cross = {1: batch, 3: src_len}
    encoder = {"src_ids": mask, "src_mask": mask}
    decoder = {
        "tokens": {0: batch},
        "pos": None,
        "src_mask": mask,
        "cross_k": cross,
        "cross_v": cross,
        "self_k": {1: batch},
        "self_v": {1: batch},
    }
    return encoder, decoder


def signatures(config: ModelConfig) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The expected TensorSpecs (see ``runtime/manifest.py``) of both programs."""
    c = config
    L, h_kv, d, T = c.n_decoder_layers, c.n_kv_heads, c.head_dim, c.max_tgt_len

    def spec(name: str, dtype: str, *shape: int | str) -> dict[str, Any]:
        return {"name": name, "dtype": dtype, "shape": list(shape)}

    cross = [spec(n, "float32", L, BATCH, h_kv, SRC_LEN, d) for n in ENCODER_OUTPUTS]
    mask = spec("src_mask", "bool", BATCH, SRC_LEN)
    return {
        "encoder": {"inputs": [spec("src_ids", "int64", BATCH, SRC_LEN), mask], "outputs": cross},
        "decoder": {
            "inputs": [
                spec("tokens", "int64", BATCH, 1),
                spec("pos", "int64", 1),
                mask,
                *cross,
                spec("self_k", "float32", L, BATCH, h_kv, T, d),
                spec("self_v", "float32", L, BATCH, h_kv, T, d),
            ],
            "outputs": [
                spec("logits", "float32", BATCH, c.vocab_size),
                spec("new_self_k", "float32", L, BATCH, h_kv, T, d),
                spec("new_self_v", "float32", L, BATCH, h_kv, T, d),
            ],
        },
    }
