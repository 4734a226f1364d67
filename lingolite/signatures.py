"""The I/O of the two programs every export target ships, and the cache geometry: defined once.

PyTorch-free. The ONNX and ExecuTorch exporters, the runtime backends, the benchmarks and the
Android golden generator all read the names, dtypes and shapes from here. Shapes use the legend
of :mod:`lingolite.model` (``L`` decoder layers, ``b`` batch, ``h_kv`` key/value heads, ``s``
source length, ``T`` ``max_tgt_len``, ``d`` head dim, ``V`` vocabulary):

``encoder`` (ExecuTorch method ``encode``): ``src_ids`` int64 ``(b, s)``, ``src_mask`` bool
``(b, s)`` -> ``cross_k``, ``cross_v`` float32 ``(L, b, h_kv, s, d)``

``decoder`` (ExecuTorch method ``decode_step``; one program for every step, see the cache rule
in :mod:`lingolite.search`): ``tokens`` int64 ``(b, 1)``, ``pos`` int64 ``(1,)``, ``src_mask``,
``cross_k``, ``cross_v``, ``self_k``, ``self_v`` float32 ``(L, b, h_kv, T, d)`` -> ``logits``
float32 ``(b, V)``, ``new_self_k``, ``new_self_v`` (shapes of ``self_k``/``self_v``)

``decoder_grow`` (ONNX only, desktop/server decoding; the growing-cache rule of
:mod:`lingolite.model`): every per-layer tensor is its own input or output, named ``{name}_{i}``
for decoder layer ``i`` (:func:`grow_decoder_names`): ``tokens`` int64 ``(b, 1)``, ``src_mask``,
``cross_k_i``, ``cross_v_i`` float32 ``(b, h_kv, s, d)``, ``past_k_i``, ``past_v_i`` float32
``(b, h_kv, t, d)`` -> ``logits`` float32 ``(b, V)``, ``present_k_i``, ``present_v_i``
``(b, h_kv, t + 1, d)``. The position is the cache length ``t`` (:data:`PAST_LEN`), so there is
no ``pos`` input. Per-layer tensors spare the graph a split of stacked inputs and a stack of its
outputs at every step (copies of the cross K/V and of the cache); a runner feeds ``cross_k[i]``
of the encoder's stacked output, a view. It is an optional extra file of an ONNX variant: the
static ``decoder`` stays the contract of the mobile runner.

ONNX graphs keep ``b`` and ``s`` dynamic (named :data:`BATCH` and :data:`SRC_LEN`); ExecuTorch
programs are static (``b = 1``, ``s = max_src_len``) and may take ``src_mask`` as int64. A
signature is ``{"inputs": [TensorSpec...], "outputs": [TensorSpec...]}`` with TensorSpecs as in
``runtime/manifest.py``: ``{"name": str, "dtype": str, "shape": [int | str]}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, overload

from lingolite.config import ModelConfig

ENCODER_INPUTS = ("src_ids", "src_mask")
ENCODER_OUTPUTS = ("cross_k", "cross_v")
DECODER_INPUTS = ("tokens", "pos", "src_mask", "cross_k", "cross_v", "self_k", "self_v")
# An ONNX graph cannot name an output like an input, hence the ``new_`` prefix (every target
# uses the same names).
DECODER_OUTPUTS = ("logits", "new_self_k", "new_self_v")
# The growing-cache decoder's I/O before the per-layer names of :func:`grow_decoder_names`.
GROW_DECODER_INPUTS = ("tokens", "src_mask", "cross_k", "cross_v", "past_k", "past_v")
GROW_DECODER_OUTPUTS = ("logits", "present_k", "present_v")
# Names of ``decoder_grow`` I/O that come once per decoder layer.
GROW_LAYER_INPUTS = GROW_DECODER_INPUTS[2:]
GROW_LAYER_OUTPUTS = GROW_DECODER_OUTPUTS[1:]
# Names of the dynamic dimensions in signatures and ``torch.export`` dynamic shapes.
BATCH, SRC_LEN = "batch", "src_len"
# The growing cache's length in and out (the name the ONNX exporter derives for ``t + 1``).
PAST_LEN, PRESENT_LEN = "past_len", "past_len + 1"
# ExecuTorch programs run one sentence at a time.
STATIC_BATCH = 1
# Dtypes ``src_mask`` may have: bool, or int64 (1 = real token) for runners without bool tensors.
MASK_DTYPES = ("bool", "int64")
# Program names: ONNX file roles and ExecuTorch method names of the same two programs.
ONNX_PROGRAMS = ("encoder", "decoder")
# The optional ONNX file role of the growing-cache decoder.
GROW_DECODER = "decoder_grow"
# How an ONNX runtime decodes: the static-cache ``decoder`` or the growing ``decoder_grow``.
CACHE_KINDS = ("static", "grow")
EXECUTORCH_METHODS = ("encode", "decode_step")

Dim = int | str
TensorSpec = dict[str, Any]
Signature = dict[str, list[TensorSpec]]


def model_config(model: ModelConfig | Mapping[str, Any]) -> ModelConfig:
    """``model`` as a :class:`ModelConfig` (a manifest's ``model`` dict is validated)."""
    return model if isinstance(model, ModelConfig) else ModelConfig.from_dict(dict(model))


@dataclass(frozen=True)
class CacheGeometry:
    """Sizes of the decoder's cross- and self-attention K/V, derived once from a config."""

    layers: int
    kv_heads: int
    max_tgt_len: int
    head_dim: int

    @classmethod
    def of(cls, model: ModelConfig | Mapping[str, Any]) -> CacheGeometry:
        c = model_config(model)
        return cls(c.n_decoder_layers, c.n_kv_heads, c.max_tgt_len, c.head_dim)

    @overload
    def self_shape(self, batch: int) -> tuple[int, ...]: ...
    @overload
    def self_shape(self, batch: Dim) -> tuple[Dim, ...]: ...
    def self_shape(self, batch: Dim) -> tuple[Dim, ...]:
        """``self_k``/``self_v``: ``(L, b, h_kv, T, d)``."""
        return (self.layers, batch, self.kv_heads, self.max_tgt_len, self.head_dim)

    @overload
    def grow_shape(self, batch: int, length: int) -> tuple[int, ...]: ...
    @overload
    def grow_shape(self, batch: Dim, length: Dim) -> tuple[Dim, ...]: ...
    def grow_shape(self, batch: Dim, length: Dim) -> tuple[Dim, ...]:
        """One layer's ``past_k_i``/``past_v_i`` of the growing cache: ``(b, h_kv, t, d)``."""
        return (batch, self.kv_heads, length, self.head_dim)

    def layer_cross_shape(self, batch: Dim, src_len: Dim) -> tuple[Dim, ...]:
        """One layer's ``cross_k_i``/``cross_v_i``: ``(b, h_kv, s, d)``."""
        return (batch, self.kv_heads, src_len, self.head_dim)

    @overload
    def cross_shape(self, batch: int, src_len: int) -> tuple[int, ...]: ...
    @overload
    def cross_shape(self, batch: Dim, src_len: Dim) -> tuple[Dim, ...]: ...
    def cross_shape(self, batch: Dim, src_len: Dim) -> tuple[Dim, ...]:
        """``cross_k``/``cross_v``: ``(L, b, h_kv, s, d)``."""
        return (self.layers, batch, self.kv_heads, src_len, self.head_dim)

    def cache_bytes(self, batch: int) -> int:
        """Bytes of the float32 self-attention cache (K and V) for ``batch`` rows."""
        return 2 * 4 * math.prod(self.self_shape(batch))


def spec(name: str, dtype: str, shape: tuple[Dim, ...] | list[Dim]) -> TensorSpec:
    return {"name": name, "dtype": dtype, "shape": list(shape)}


def program_signatures(
    model: ModelConfig | Mapping[str, Any],
    *,
    batch: Dim = BATCH,
    src_len: Dim = SRC_LEN,
    mask_dtype: str = "bool",
) -> tuple[Signature, Signature]:
    """The encoder and decoder signatures for ``batch`` rows of ``src_len`` source tokens (ints
    for static programs, names for dynamic dimensions)."""
    if mask_dtype not in MASK_DTYPES:
        raise ValueError(f"src_mask dtype {mask_dtype!r} is not one of {MASK_DTYPES}")
    c = model_config(model)
    geometry = CacheGeometry.of(c)
    cross = geometry.cross_shape(batch, src_len)
    cache = geometry.self_shape(batch)
    mask = spec("src_mask", mask_dtype, (batch, src_len))
    cross_specs = [spec(name, "float32", cross) for name in ENCODER_OUTPUTS]
    encoder = {"inputs": [spec("src_ids", "int64", (batch, src_len)), mask], "outputs": cross_specs}
    decoder = {
        "inputs": [
            spec("tokens", "int64", (batch, 1)),
            spec("pos", "int64", (1,)),
            mask,
            *cross_specs,
            *(spec(name, "float32", cache) for name in DECODER_INPUTS[-2:]),
        ],
        "outputs": [
            spec("logits", "float32", (batch, c.vocab_size)),
            *(spec(name, "float32", cache) for name in DECODER_OUTPUTS[1:]),
        ],
    }
    return encoder, decoder


def onnx_signatures(model: ModelConfig | Mapping[str, Any]) -> dict[str, Signature]:
    """``{"encoder": ..., "decoder": ...}`` with dynamic ``batch`` and ``src_len``."""
    return dict(zip(ONNX_PROGRAMS, program_signatures(model), strict=True))


def layer_names(name: str, layers: int) -> tuple[str, ...]:
    """``name_0 .. name_{layers-1}``: the per-layer I/O names of ``decoder_grow``."""
    return tuple(f"{name}_{i}" for i in range(layers))


def grow_decoder_names(layers: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``decoder_grow``'s input and output names, in graph order, for ``layers`` decoder layers:
    ``tokens, src_mask, cross_k_0.., cross_v_0.., past_k_0.., past_v_0..`` and ``logits,
    present_k_0.., present_v_0..``.

    >>> grow_decoder_names(2)[1]
    ('logits', 'present_k_0', 'present_k_1', 'present_v_0', 'present_v_1')
    """
    inputs = GROW_DECODER_INPUTS[:2] + sum((layer_names(n, layers) for n in GROW_LAYER_INPUTS), ())
    outputs = GROW_DECODER_OUTPUTS[:1] + sum(
        (layer_names(n, layers) for n in GROW_LAYER_OUTPUTS), ()
    )
    return inputs, outputs


def grow_decoder_signature(model: ModelConfig | Mapping[str, Any]) -> Signature:
    """The ``decoder_grow`` signature: dynamic ``batch``, ``src_len`` and cache length, one
    cross K/V and cache tensor per decoder layer."""
    c = model_config(model)
    geometry = CacheGeometry.of(c)
    cross = geometry.layer_cross_shape(BATCH, SRC_LEN)
    past = geometry.grow_shape(BATCH, PAST_LEN)
    present = geometry.grow_shape(BATCH, PRESENT_LEN)
    shapes = {"cross_k": cross, "cross_v": cross, "past_k": past, "past_v": past}

    def layered(kind: str, shape: tuple[Dim, ...]) -> list[TensorSpec]:
        return [spec(name, "float32", shape) for name in layer_names(kind, c.n_decoder_layers)]

    return {
        "inputs": [
            spec("tokens", "int64", (BATCH, 1)),
            spec("src_mask", "bool", (BATCH, SRC_LEN)),
            *(x for kind in GROW_LAYER_INPUTS for x in layered(kind, shapes[kind])),
        ],
        "outputs": [
            spec("logits", "float32", (BATCH, c.vocab_size)),
            *(x for kind in GROW_LAYER_OUTPUTS for x in layered(kind, present)),
        ],
    }


def executorch_signatures(
    model: ModelConfig | Mapping[str, Any], mask_dtype: str = "bool"
) -> dict[str, Signature]:
    """``{"encode": ..., "decode_step": ...}`` at batch :data:`STATIC_BATCH` and
    ``src_len = max_src_len``, ``src_mask`` of ``mask_dtype``."""
    c = model_config(model)
    programs = program_signatures(
        c, batch=STATIC_BATCH, src_len=c.max_src_len, mask_dtype=mask_dtype
    )
    return dict(zip(EXECUTORCH_METHODS, programs, strict=True))
