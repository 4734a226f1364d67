"""The two programs every export target ships, as small ``nn.Module`` wrappers.

Both the ONNX and the ExecuTorch exporters trace these wrappers; their inputs and outputs (names,
dtypes, shapes) are defined once, torch-free, in :mod:`lingolite.signatures`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lingolite.config import ModelConfig
from lingolite.model import LingoLite
from lingolite.signatures import BATCH, PAST_LEN, SRC_LEN


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


class DecoderGrowProgram(nn.Module):
    """One decoder step with the growing cache: :meth:`LingoLite.decode_step_grow`. Every
    per-layer tensor is its own graph input or output (names from
    :func:`lingolite.signatures.grow_decoder_names`)."""

    def __init__(self, model: LingoLite) -> None:
        super().__init__()
        self.model = model
        self.eval()

    def forward(
        self,
        tokens: Tensor,
        src_mask: Tensor,
        cross_k: list[Tensor],
        cross_v: list[Tensor],
        past_k: list[Tensor],
        past_v: list[Tensor],
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        return self.model.decode_step_grow(tokens, src_mask, cross_k, cross_v, past_k, past_v)


def grow_example_inputs(decoder_args: tuple[Tensor, ...], past_len: int = 3) -> tuple[Any, ...]:
    """:class:`DecoderGrowProgram` inputs from :func:`example_inputs`' decoder ones: the stacked
    tensors split into per-layer lists, with a cache of ``past_len`` entries (not 0 or 1, which
    ``torch.export`` would specialise on)."""
    tokens, _, src_mask, cross_k, cross_v, self_k, self_v = decoder_args
    past_k, past_v = self_k[:, :, :, :past_len], self_v[:, :, :, :past_len]  # (L, b, h_kv, t, d)
    layers = [list(x.unbind(0)) for x in (cross_k, cross_v, past_k, past_v)]
    return tokens, src_mask, *layers


def grow_dynamic_shapes(config: ModelConfig) -> dict[str, Any]:
    """``torch.export`` dynamic shapes of :class:`DecoderGrowProgram`: batch, src_len and the
    cache length ``t`` in ``[0, max_tgt_len - 1]``, the same for every layer."""
    batch = torch.export.Dim(BATCH, min=1)
    src_len = torch.export.Dim(SRC_LEN, min=1, max=config.max_src_len)
    past = torch.export.Dim(PAST_LEN, min=0, max=config.max_tgt_len - 1)
    layers = range(config.n_decoder_layers)
    cross = [{0: batch, 2: src_len} for _ in layers]
    cache = [{0: batch, 2: past} for _ in layers]
    return {
        "tokens": {0: batch},
        "src_mask": {0: batch, 1: src_len},
        "cross_k": cross,
        "cross_v": cross,
        "past_k": cache,
        "past_v": cache,
    }


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
