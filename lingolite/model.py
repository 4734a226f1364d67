"""The LingoLite encoder-decoder transformer.

Shape legend used in comments and docstrings:

- ``b``: batch, ``s``: source length, ``t``: target length (training), ``T``: ``max_tgt_len``
  (static length of the decoder's self-attention cache)
- ``h``: query heads, ``h_kv``: key/value heads, ``g = h / h_kv``: query heads per KV head
- ``d``: head dim, ``D``: ``d_model``, ``L``: decoder layers, ``V``: vocabulary

One set of modules serves training (whole sequences, causal mask), eager step-by-step decoding
and export. The decoding state is explicit, which is what lets ONNX Runtime, ExecuTorch and the
Android runner drive the same graph:

- :meth:`LingoLite.encode` maps source ids to the cross-attention K/V of every decoder layer,
  ``cross_k``/``cross_v`` of shape ``(L, b, h_kv, s, d)``, computed once per sentence.
- :meth:`LingoLite.decode_step` takes one token per row at position ``pos`` and the self-attention
  cache ``self_k``/``self_v`` of shape ``(L, b, h_kv, T, d)`` and returns the logits and the
  updated cache.

The cache rule (mirrored by every runtime, see ``lingolite/search.py``): the cache starts as zeros;
the token at position ``pos`` writes its K/V into slot ``pos`` and attends to slots ``0..pos``;
``pos`` is the number of tokens fed before it (the BOS token has ``pos = 0``).

The growing-cache rule (:meth:`LingoLite.decode_step_grow`, desktop/server decoding): one cache
per decoder layer, ``past_k[i]``/``past_v[i]`` ``(b, h_kv, t, d)``, starts empty (``t = 0``); the
token fed next is at position ``pos = t`` (the cache length, no ``pos`` input), appends its K/V
(:func:`append_cache`) and attends to all ``t + 1`` entries; the step returns each layer's cache
of length ``t + 1``. Entry ``i`` of the grown cache equals slot ``i`` of the static one after the
same tokens. The layers come and go as separate tensors (and the step reads ``cross_k[i]``,
``cross_v[i]``, which a stacked ``(L, ...)`` tensor also yields): a stacked cache would make an
exported graph split its input and stack its output at every step, two copies of the whole cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lingolite.config import ModelConfig

# One tensor per decoder layer: a sequence of them, or a stacked ``(L, ...)`` tensor (whose
# iteration and indexing yield the layers).
PerLayer = Sequence[Tensor] | Tensor


class ModelInputError(ValueError):
    """Arguments a model component or the model cannot run on; the message lists every problem
    with the offending value."""


def _raise_if(problems: list[str], what: str) -> None:
    if problems:
        raise ModelInputError(f"invalid {what}: " + "; ".join(problems))


def _positive_finite(name: str, value: float) -> list[str]:
    real = isinstance(value, int | float) and not isinstance(value, bool)
    ok = real and math.isfinite(value) and value > 0
    return [] if ok else [f"{name} must be finite and > 0, got {value!r}"]


def _positive_int(name: str, value: int) -> list[str]:
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return [] if ok else [f"{name} must be an int > 0, got {value!r}"]


def _tracing() -> bool:
    """True while ``torch.export``, ``torch.compile`` or ``torch.jit`` trace the model: tensor
    values are unknown then and shapes may be symbolic."""
    compiling = torch.compiler.is_exporting() or torch.compiler.is_compiling()
    return compiling or torch.jit.is_tracing()  # type: ignore[attr-defined, no-untyped-call]


# (name, tensor, expected dtype (None: any floating dtype), expected rank)
_Spec = tuple[str, Tensor, torch.dtype | None, int]
# (name, tensor, expected shape, what the expected shape means)
_Shape = tuple[str, Tensor, tuple[int, ...], str]
# (name, value, lowest allowed, highest allowed, what the highest is)
_Bound = tuple[str, int, int, int, str]
_CACHE_NAMES = ("cross_k", "cross_v", "self_k", "self_v")


def _spec_problems(specs: list[_Spec]) -> list[str]:
    """dtype and rank of each input: static facts, checked the same way under export."""
    problems = []
    for name, t, dtype, rank in specs:
        if not isinstance(t, Tensor):
            problems.append(f"{name} must be a tensor, got {type(t).__name__}")
            continue
        if dtype is None and not t.is_floating_point():
            problems.append(f"{name} must be a floating-point tensor, got {t.dtype}")
        elif dtype is not None and t.dtype != dtype:
            problems.append(f"{name} must be {dtype}, got {t.dtype}")
        if t.dim() != rank:
            problems.append(f"{name} must have {rank} dims, got shape {tuple(t.shape)}")
    return problems


def _check_shapes(what: str, shapes: list[_Shape], bounds: list[_Bound]) -> bool:
    """Check shapes and size bounds (after :func:`_spec_problems` passed); True when the caller
    may go on to check tensor values.

    In eager mode every failure is reported at once, with its values. While tracing, sizes may be
    symbolic: each condition becomes a ``torch._check``, which the exporter proves from the
    declared dynamic shapes (or keeps as a runtime assertion), and value checks are skipped:
    values are unknown then, and a ``torch._check`` on them would need ``.item()`` in the graph.
    """
    if _tracing():
        for _, t, expected, _ in shapes:
            for got, want in zip(t.shape, expected, strict=True):
                torch._check(got == want)  # type: ignore[no-untyped-call]
        for _, value, low, high, _ in bounds:
            torch._check(value >= low)  # type: ignore[no-untyped-call]
            torch._check(value <= high)  # type: ignore[no-untyped-call]
        return False
    problems = [
        f"{name} must have shape {legend} = {expected}, got {tuple(t.shape)}"
        for name, t, expected, legend in shapes
        if tuple(t.shape) != expected
    ]
    problems += [
        f"{name} must be in [{low}, {label} = {high}], got {value}"
        for name, value, low, high, label in bounds
        if not low <= value <= high
    ]
    _raise_if(problems, what)
    return True


def _ids_problems(name: str, ids: Tensor, vocab_size: int) -> list[str]:
    """Eager only: token ids outside ``[0, vocab_size)``."""
    if ids.numel() == 0:
        return []
    low, high = int(ids.min()), int(ids.max())
    if low >= 0 and high < vocab_size:
        return []
    return [f"{name} must be in [0, vocab_size = {vocab_size}), got values in [{low}, {high}]"]


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last dim that yields zeros (not NaN) on rows whose keys are all masked.

    ``mask`` is boolean, True where a key may be attended, and broadcasts against ``scores``.
    Masked scores are replaced (``torch.where``, not ``+= -inf``) by the dtype's most negative
    finite value, so the row max is finite; masked terms are zeroed after ``exp`` and an empty row
    divides by 1 instead of 0. Neither forward nor backward produces NaN or Inf.
    """
    scores = torch.where(mask, scores, torch.finfo(scores.dtype).min)
    shifted = scores - scores.amax(dim=-1, keepdim=True)
    weights = torch.where(mask, torch.exp(shifted), 0.0)
    total = weights.sum(dim=-1, keepdim=True)
    return weights / torch.where(total > 0, total, 1.0)


def append_cache(cache: Tensor, new: Tensor) -> Tensor:
    """The growing-cache rule: ``new`` becomes entry ``t`` of ``cache``.

    cache: ``(b, h_kv, t, d)`` (``t`` may be 0); new: ``(b, h_kv, 1, d)``; returns
    ``(b, h_kv, t + 1, d)``.
    The cache holds only the positions fed so far, so a step reads and writes ``t + 1`` entries
    instead of ``T`` (:func:`write_cache`), and nothing needs masking.
    """
    return torch.cat((cache, new), dim=2)


def write_cache(cache: Tensor, new: Tensor, pos: Tensor) -> Tensor:
    """The cache-update rule: slot ``pos`` of ``cache`` receives ``new``.

    cache: ``(b, h_kv, T, d)``; new: ``(b, h_kv, 1, d)``; pos: ``(1,)`` int64.
    Written as a blend over a one-hot slot mask, ``cache * (1 - hit) + new * hit``, so it traces
    to plain elementwise multiply/add (no scatter, no data-dependent indexing) that ONNX Runtime
    runs and XNNPACK delegates. (XNNPACK does not take ``where``: with ``torch.where`` here,
    ExecuTorch ran the cache update in portable kernels, 43% of a ``small`` 8da8w step; the blend
    made that step 1.54x faster.) For finite values it is exact: every slot but ``pos`` keeps its
    value (``x * 1 + new * 0``), slot ``pos`` gets ``new`` (``x * 0 + new * 1``); only the sign of
    a zero may differ from a ``where``. Cache values are keys and values of finite activations.
    """
    slots = torch.arange(cache.shape[2], device=cache.device)
    hit = (slots == pos).view(1, 1, -1, 1).to(cache.dtype)  # (1, 1, T, 1), one 1.0
    return cache * (1.0 - hit) + new * hit


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x^2) + eps) * weight``, computed in float32.

    >>> RMSNorm(2, eps=1e-6)(torch.tensor([3.0, 4.0]))  # rms 3.5355
    tensor([0.8485, 1.1314], grad_fn=<MulBackward0>)
    >>> RMSNorm(4, eps=-1.0)
    Traceback (most recent call last):
    ...
    lingolite.model.ModelInputError: invalid RMSNorm arguments: eps must be finite and > 0,
    got -1.0
    """

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        _raise_if(_positive_int("dim", dim) + _positive_finite("eps", eps), "RMSNorm arguments")
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def make_norm(config: ModelConfig) -> nn.Module:
    """The norm of ``config.norm``: :class:`RMSNorm` or ``nn.LayerNorm`` (weight and bias)."""
    if config.norm == "layernorm":
        return nn.LayerNorm(config.d_model, eps=config.norm_eps)
    return RMSNorm(config.d_model, config.norm_eps)


class SinusoidalPositions(nn.Module):
    """Marian's absolute sinusoidal positions, added to the (scaled) token embeddings.

    Row ``p`` of the ``(P, D)`` table is ``[sin(p w_0), ..., sin(p w_{D/2-1}), cos(p w_0), ...,
    cos(p w_{D/2-1})]`` with ``w_i = base ** (-2i / D)``: sines in the first half, cosines in the
    second (not interleaved), computed in float64 and rounded to float32 once.

    >>> SinusoidalPositions(dim=4, max_len=2, base=10000.0).table
    tensor([[0.0000, 0.0000, 1.0000, 1.0000],
            [0.8415, 0.0100, 0.5403, 0.9999]])
    """

    table: Tensor

    def __init__(self, dim: int, max_len: int, base: float) -> None:
        super().__init__()
        problems = _positive_int("dim", dim) + _positive_int("max_len", max_len)
        if not problems and dim % 2:
            problems.append(f"dim must be even (sine and cosine halves), got {dim}")
        _raise_if(problems + _positive_finite("base", base), "SinusoidalPositions arguments")
        inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float64), inv_freq)  # (P, D/2)
        table = torch.cat((angles.sin(), angles.cos()), dim=-1).float()
        self.register_buffer("table", table, persistent=False)

    def forward(self, positions: Tensor) -> Tensor:
        """Rows of ``positions`` (int64 ``(n,)``) -> ``(n, D)``."""
        return self.table.index_select(0, positions)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding with precomputed, non-persistent cos/sin tables.

    Pairwise rotation: the head dimension is read as ``d/2`` adjacent pairs ``(x[2i], x[2i+1])``;
    at position ``p`` pair ``i`` is rotated by the angle ``p * theta_i`` with
    ``theta_i = base ** (-2i / d)``::

        x'[2i]   = x[2i] * cos(p theta_i) - x[2i+1] * sin(p theta_i)
        x'[2i+1] = x[2i] * sin(p theta_i) + x[2i+1] * cos(p theta_i)

    A query at position ``m`` and a key at position ``n`` then score ``q^T R(n - m) k``: the score
    depends on positions only through their offset.

    >>> rope = RotaryEmbedding(head_dim=4, max_len=8, base=10000.0)
    >>> cos, sin = rope.tables(torch.tensor([0, 1]))
    >>> cos  # cos(p * base ** (-2i / d)) for p = 0, 1 and i = 0, 1
    tensor([[1.0000, 1.0000],
            [0.5403, 0.9999]])
    >>> RotaryEmbedding(4, 0, base=-1e4)
    Traceback (most recent call last):
    ...
    lingolite.model.ModelInputError: invalid RotaryEmbedding arguments: max_len must be an
    int > 0, got 0; base must be finite and > 0, got -10000.0
    """

    cos: Tensor
    sin: Tensor

    def __init__(self, head_dim: int, max_len: int, base: float) -> None:
        super().__init__()
        problems = _positive_int("head_dim", head_dim) + _positive_int("max_len", max_len)
        if not problems and head_dim % 2:
            problems.append(f"head_dim must be even (pairs are rotated), got {head_dim}")
        _raise_if(problems + _positive_finite("base", base), "RotaryEmbedding arguments")
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float64), inv_freq)  # (P, d/2)
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)

    def tables(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """cos and sin rows for ``positions`` (any int64 shape ``(n,)``) -> two ``(n, d/2)``."""
        return self.cos.index_select(0, positions), self.sin.index_select(0, positions)


def apply_rotary(x: Tensor, cos: Tensor | None, sin: Tensor | None) -> Tensor:
    """Rotate ``x`` ``(b, heads, n, d)`` by tables ``(n, d/2)`` (see :class:`RotaryEmbedding`);
    ``x`` itself when the tables are None (a model with sinusoidal positions)."""
    if cos is None or sin is None:
        return x
    b, heads, n, d = x.shape
    pairs = x.float().reshape(b, heads, n, d // 2, 2)  # (b, heads, n, d/2, 2)
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.reshape(b, heads, n, d).type_as(x)


def grouped_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
    """Scaled dot-product attention for grouped-query heads, without repeating K/V.

    q: ``(b, h, n, d)``; k, v: ``(b, h_kv, m, d)``; mask: bool broadcastable to
    ``(b, 1, n, m)`` (True = may attend), or None when every key may be attended. Query head
    ``j`` uses KV head ``j // g``, so the ``g`` query heads of a group are folded into the row
    dimension and one 4-D matmul per side serves them all:
    ``(b, h_kv, g*n, d) @ (b, h_kv, d, m)``. Returns ``(b, h, n, d)``.
    """
    b, h, n, d = q.shape
    h_kv, m = k.shape[1], k.shape[2]
    g = h // h_kv
    q = q.reshape(b, h_kv, g * n, d)  # (b, h_kv, g*n, d)
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(d))  # (b, h_kv, g*n, m)
    scores = scores.reshape(b, h_kv, g, n, m)
    if mask is None:
        probs = torch.softmax(scores, dim=-1)
    else:
        probs = masked_softmax(scores, mask.unsqueeze(2))  # mask (b, 1, 1, n, m)
    out = torch.matmul(probs.reshape(b, h_kv, g * n, m), v)  # (b, h_kv, g*n, d)
    return out.reshape(b, h, n, d)


class Attention(nn.Module):
    """Grouped-query attention projections; self- or cross-attention depending on the caller."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.n_kv_heads = config.n_kv_heads
        self.head_dim = config.head_dim
        kv_dim = config.n_kv_heads * config.head_dim
        bias = config.bias
        self.wq = nn.Linear(config.d_model, config.d_model, bias=bias)
        self.wk = nn.Linear(config.d_model, kv_dim, bias=bias)
        self.wv = nn.Linear(config.d_model, kv_dim, bias=bias)
        self.wo = nn.Linear(config.d_model, config.d_model, bias=bias)

    def split(self, x: Tensor, heads: int) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, heads, self.head_dim).transpose(1, 2)  # (b, heads, n, d)

    def project_kv(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values ``(b, h_kv, n, d)`` of ``x`` ``(b, n, D)`` (no rotation)."""
        return self.split(self.wk(x), self.n_kv_heads), self.split(self.wv(x), self.n_kv_heads)

    def merge(self, out: Tensor) -> Tensor:
        b, _, n, _ = out.shape
        merged: Tensor = self.wo(out.transpose(1, 2).reshape(b, n, self.n_heads * self.head_dim))
        return merged

    def self_attend(
        self, x: Tensor, cos: Tensor | None, sin: Tensor | None, mask: Tensor
    ) -> Tensor:
        """Self-attention over the whole of ``x`` ``(b, n, D)`` with rotary tables ``(n, d/2)``."""
        q = apply_rotary(self.split(self.wq(x), self.n_heads), cos, sin)
        k, v = self.project_kv(x)
        return self.merge(grouped_attention(q, apply_rotary(k, cos, sin), v, mask))

    def self_attend_step(
        self,
        x: Tensor,
        cos: Tensor | None,
        sin: Tensor | None,
        pos: Tensor,
        cache_k: Tensor,
        cache_v: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One decoding step: x ``(b, 1, D)``, caches ``(b, h_kv, T, d)``, pos ``(1,)``.

        Writes this token's K/V into slot ``pos`` (:func:`write_cache`) and attends to slots
        ``0..pos``. Returns the output ``(b, 1, D)`` and both updated caches.
        """
        q = apply_rotary(self.split(self.wq(x), self.n_heads), cos, sin)
        k, v = self.project_kv(x)
        cache_k = write_cache(cache_k, apply_rotary(k, cos, sin), pos)
        cache_v = write_cache(cache_v, v, pos)
        visible = (torch.arange(cache_k.shape[2], device=x.device) <= pos).view(1, 1, 1, -1)
        return self.merge(grouped_attention(q, cache_k, cache_v, visible)), cache_k, cache_v

    def self_attend_grow(
        self, x: Tensor, cos: Tensor | None, sin: Tensor | None, past_k: Tensor, past_v: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One step of the growing cache: x ``(b, 1, D)``, past ``(b, h_kv, t, d)``.

        Appends this token's K/V (:func:`append_cache`) and attends to all ``t + 1`` entries.
        Returns the output ``(b, 1, D)`` and both caches of length ``t + 1``.
        """
        q = apply_rotary(self.split(self.wq(x), self.n_heads), cos, sin)
        k, v = self.project_kv(x)
        present_k = append_cache(past_k, apply_rotary(k, cos, sin))
        present_v = append_cache(past_v, v)
        return self.merge(grouped_attention(q, present_k, present_v, None)), present_k, present_v

    def cross_attend(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """Attend from ``x`` ``(b, n, D)`` to precomputed encoder K/V ``(b, h_kv, s, d)``."""
        q = self.split(self.wq(x), self.n_heads)
        return self.merge(grouped_attention(q, k, v, mask))


_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "swiglu": F.silu, "swish": F.silu, "gelu": F.gelu, "relu": F.relu,
}  # fmt: skip


class FeedForward(nn.Module):
    """SwiGLU ``w2(silu(w1 x) * w3 x)``, or ``w2(act(w1 x))`` for ``ffn`` gelu (exact, erf),
    swish (silu) and relu; projections with biases when ``config.bias``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.act = _ACTIVATIONS[config.ffn]
        self.w1 = nn.Linear(config.d_model, config.ffn_dim, bias=config.bias)
        self.w3 = (
            nn.Linear(config.d_model, config.ffn_dim, bias=config.bias)
            if config.ffn == "swiglu"
            else None
        )
        self.w2 = nn.Linear(config.ffn_dim, config.d_model, bias=config.bias)

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.act(self.w1(x))
        if self.w3 is not None:
            hidden = hidden * self.w3(x)
        out: Tensor = self.w2(hidden)
        return out


class _Residual(nn.Module):
    """Where a layer normalises (``config.norm_position``). A sublayer ``f`` with norm ``n``:
    pre-norm ``x + f(n(x))``, post-norm ``n(x + f(x))``; written as ``out(n, x + f(into(n, x)))``
    so that each layer form states its sublayers once."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.post = config.norm_position == "post"
        self.dropout = nn.Dropout(config.dropout)

    def into(self, norm: nn.Module, x: Tensor) -> Tensor:
        """The sublayer's input: ``norm(x)`` (pre-norm) or ``x`` (post-norm)."""
        return x if self.post else cast(Tensor, norm(x))

    def out(self, norm: nn.Module, x: Tensor, sublayer_out: Tensor) -> Tensor:
        """The residual sum ``x + dropout(f)``, normalised in post-norm."""
        total = x + self.dropout(sublayer_out)
        return cast(Tensor, norm(total)) if self.post else total


class EncoderLayer(_Residual):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.attn_norm = make_norm(config)
        self.attn = Attention(config)
        self.ffn_norm = make_norm(config)
        self.ffn = FeedForward(config)

    def forward(self, x: Tensor, cos: Tensor | None, sin: Tensor | None, mask: Tensor) -> Tensor:
        h = self.into(self.attn_norm, x)
        x = self.out(self.attn_norm, x, self.attn.self_attend(h, cos, sin, mask))
        return self.out(self.ffn_norm, x, self.ffn(self.into(self.ffn_norm, x)))


class DecoderLayer(_Residual):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.self_norm = make_norm(config)
        self.self_attn = Attention(config)
        self.cross_norm = make_norm(config)
        self.cross_attn = Attention(config)
        self.ffn_norm = make_norm(config)
        self.ffn = FeedForward(config)

    def forward(
        self, x: Tensor, cos: Tensor | None, sin: Tensor | None, causal: Tensor, k: Tensor,
        v: Tensor, src_mask: Tensor,
    ) -> Tensor:  # fmt: skip
        """Whole-sequence (training) form: x ``(b, t, D)``, causal ``(1, 1, t, t)``."""
        h = self.self_attn.self_attend(self.into(self.self_norm, x), cos, sin, causal)
        return self._cross_and_ffn(self.out(self.self_norm, x, h), k, v, src_mask)

    def step(
        self, x: Tensor, cos: Tensor | None, sin: Tensor | None, pos: Tensor, cache_k: Tensor,
        cache_v: Tensor, k: Tensor, v: Tensor, src_mask: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        """Cached form: x ``(b, 1, D)``; returns the output and the layer's updated caches."""
        out, cache_k, cache_v = self.self_attn.self_attend_step(
            self.into(self.self_norm, x), cos, sin, pos, cache_k, cache_v
        )
        x = self.out(self.self_norm, x, out)
        return self._cross_and_ffn(x, k, v, src_mask), cache_k, cache_v

    def step_grow(
        self, x: Tensor, cos: Tensor | None, sin: Tensor | None, past_k: Tensor, past_v: Tensor,
        k: Tensor, v: Tensor, src_mask: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        """Growing-cache form of :meth:`step`: the layer's caches come back one entry longer."""
        out, past_k, past_v = self.self_attn.self_attend_grow(
            self.into(self.self_norm, x), cos, sin, past_k, past_v
        )
        x = self.out(self.self_norm, x, out)
        return self._cross_and_ffn(x, k, v, src_mask), past_k, past_v

    def _cross_and_ffn(self, x: Tensor, k: Tensor, v: Tensor, src_mask: Tensor) -> Tensor:
        h = self.cross_attn.cross_attend(self.into(self.cross_norm, x), k, v, src_mask)
        x = self.out(self.cross_norm, x, h)
        return self.out(self.ffn_norm, x, self.ffn(self.into(self.ffn_norm, x)))


class LingoLite(nn.Module):
    """Pre-norm encoder-decoder with RoPE, grouped-query attention and SwiGLU.

    ``src_mask`` is always boolean ``(b, s)``, True on real tokens. Sources are right-padded.

    Encode once, then decode one token per step against the explicit cache:

    >>> config = ModelConfig(vocab_size=100, d_model=32, n_heads=4, n_kv_heads=2,
    ...                      n_encoder_layers=1, n_decoder_layers=1, ffn_dim=64,
    ...                      max_src_len=16, max_tgt_len=8)
    >>> model = LingoLite(config).eval()
    >>> src_ids = torch.tensor([[7, 8, 9, config.eos_id]])
    >>> src_mask = src_ids != config.pad_id
    >>> cross_k, cross_v = model.encode(src_ids, src_mask)
    >>> tuple(cross_k.shape)  # (L, b, h_kv, s, d)
    (1, 1, 2, 4, 8)
    >>> self_k, self_v = model.empty_cache(batch=1)
    >>> tokens, pos = torch.tensor([[config.bos_id]]), torch.tensor([0])
    >>> logits, self_k, self_v = model.decode_step(
    ...     tokens, pos, src_mask, cross_k, cross_v, self_k, self_v)
    >>> tuple(logits.shape)  # (b, V): scores of the token at pos + 1
    (1, 100)

    Inputs the model cannot run on are refused with every problem named:

    >>> model.decode_step(tokens, torch.tensor([8]), src_mask, cross_k, cross_v, self_k, self_v)
    Traceback (most recent call last):
    ...
    lingolite.model.ModelInputError: invalid decode_step input: pos must be a cache slot in
    [0, max_tgt_len - 1 = 7], got 8
    >>> model.encode(src_ids.int(), src_mask.long())
    Traceback (most recent call last):
    ...
    lingolite.model.ModelInputError: invalid encoder input: src_ids must be torch.int64, got
    torch.int32; src_mask must be torch.bool, got torch.int64
    """

    causal: Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        # Embeddings are initialised with std D^-1/2 and (scale_embeddings) scaled by sqrt(D),
        # once, here.
        self.embed_scale = math.sqrt(config.d_model) if config.scale_embeddings else 1.0
        positions = max(config.max_src_len, config.max_tgt_len)
        rotary = config.positions == "rotary"
        self.rope = (
            RotaryEmbedding(config.head_dim, positions, config.rope_base) if rotary else None
        )
        self.positions = (
            None if rotary else SinusoidalPositions(config.d_model, positions, config.rope_base)
        )
        self.encoder_layers = nn.ModuleList(
            EncoderLayer(config) for _ in range(config.n_encoder_layers)
        )
        # Pre-norm stacks end with a norm; in post-norm every layer's output is already normed.
        pre = config.norm_position == "pre"
        self.encoder_norm = make_norm(config) if pre else None
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(config) for _ in range(config.n_decoder_layers)
        )
        self.decoder_norm = make_norm(config) if pre else None
        self.lm_head = (
            None
            if config.tie_embeddings
            else nn.Linear(config.d_model, config.vocab_size, bias=False)
        )
        self.logits_bias = (
            nn.Parameter(torch.zeros(config.vocab_size)) if config.logits_bias else None
        )
        self.dropout = nn.Dropout(config.dropout)
        causal = torch.tril(torch.ones(config.max_tgt_len, config.max_tgt_len, dtype=torch.bool))
        self.register_buffer("causal", causal, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deterministic given the torch seed: normal(0, 0.02) linears, D^-1/2 embeddings, zero
        biases, unit norms."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()  # weight 1, bias 0
        nn.init.normal_(self.embed.weight, std=self.config.d_model**-0.5)
        if self.logits_bias is not None:
            nn.init.zeros_(self.logits_bias)
        if self.config.tie_embeddings and isinstance(self.decoder_norm, RMSNorm | nn.LayerNorm):
            # The tied output matrix has rows of norm ~1 while the normalised hidden state has
            # norm ~sqrt(D): start the final norm at D^-1/2 so initial logits are O(1) and the
            # initial loss is ~ln(V) instead of favouring the input token.
            nn.init.constant_(self.decoder_norm.weight, self.config.d_model**-0.5)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ pieces
    def _decoder_layers(self) -> list[DecoderLayer]:
        return cast(list[DecoderLayer], list(self.decoder_layers))

    def _memory_shapes(self, b: int, s: int, cross_k: Tensor, cross_v: Tensor) -> list[_Shape]:
        c = self.config
        cross = (c.n_decoder_layers, b, c.n_kv_heads, s, c.head_dim)
        legend = "(L, b, h_kv, s, d)"
        return [("cross_k", cross_k, cross, legend), ("cross_v", cross_v, cross, legend)]

    def _source_bound(self, s: int) -> _Bound:
        return ("source length s", s, 1, self.config.max_src_len, "max_src_len")

    def _check_encode(self, src_ids: Tensor, src_mask: Tensor) -> None:
        what = "encoder input"
        specs: list[_Spec] = [
            ("src_ids", src_ids, torch.int64, 2),
            ("src_mask", src_mask, torch.bool, 2),
        ]
        _raise_if(_spec_problems(specs), what)
        b, s = src_ids.shape
        shapes: list[_Shape] = [("src_mask", src_mask, (b, s), "(b, s) of src_ids")]
        if _check_shapes(what, shapes, [self._source_bound(s)]):
            _raise_if(_ids_problems("src_ids", src_ids, self.config.vocab_size), what)

    def _check_decode_step(
        self, tokens: Tensor, pos: Tensor, src_mask: Tensor, cross_k: Tensor, cross_v: Tensor,
        self_k: Tensor, self_v: Tensor,
    ) -> None:  # fmt: skip
        c, what = self.config, "decode_step input"
        caches = (cross_k, cross_v, self_k, self_v)
        specs: list[_Spec] = [
            ("tokens", tokens, torch.int64, 2),
            ("pos", pos, torch.int64, 1),
            ("src_mask", src_mask, torch.bool, 2),
            *((name, t, None, 5) for name, t in zip(_CACHE_NAMES, caches, strict=True)),
        ]
        _raise_if(_spec_problems(specs), what)
        b, s = tokens.shape[0], src_mask.shape[1]
        cache = (c.n_decoder_layers, b, c.n_kv_heads, c.max_tgt_len, c.head_dim)
        shapes: list[_Shape] = [
            ("tokens", tokens, (b, 1), "(b, 1)"),
            ("pos", pos, (1,), "(1,)"),
            ("src_mask", src_mask, (b, s), "(b, s)"),
            *self._memory_shapes(b, s, cross_k, cross_v),
            ("self_k", self_k, cache, "(L, b, h_kv, T, d)"),
            ("self_v", self_v, cache, "(L, b, h_kv, T, d)"),
        ]
        if _check_shapes(what, shapes, [self._source_bound(s)]):
            step = int(pos[0])
            problems = _ids_problems("tokens", tokens, c.vocab_size)
            if not 0 <= step < c.max_tgt_len:
                problems.append(
                    f"pos must be a cache slot in [0, max_tgt_len - 1 = {c.max_tgt_len - 1}], "
                    f"got {step}"
                )
            _raise_if(problems, what)

    def _check_decode_grow(
        self, tokens: Tensor, src_mask: Tensor, cross_k: PerLayer,
        cross_v: PerLayer, past_k: PerLayer, past_v: PerLayer,
    ) -> None:  # fmt: skip
        c, what = self.config, "decode_step_grow input"
        layers = {"cross_k": cross_k, "cross_v": cross_v, "past_k": past_k, "past_v": past_v}
        _raise_if(
            [
                f"{name} must hold one tensor per decoder layer ({c.n_decoder_layers}), "
                f"got {len(seq)}"
                for name, seq in layers.items()
                if len(seq) != c.n_decoder_layers
            ],
            what,
        )
        specs: list[_Spec] = [
            ("tokens", tokens, torch.int64, 2),
            ("src_mask", src_mask, torch.bool, 2),
            *(
                (f"{name}[{i}]", t, None, 4)
                for name, seq in layers.items()
                for i, t in enumerate(seq)
            ),
        ]
        _raise_if(_spec_problems(specs), what)
        b, s, t = tokens.shape[0], src_mask.shape[1], past_k[0].shape[2]
        cross = (b, c.n_kv_heads, s, c.head_dim)
        cache = (b, c.n_kv_heads, t, c.head_dim)
        shapes: list[_Shape] = [
            ("tokens", tokens, (b, 1), "(b, 1)"),
            ("src_mask", src_mask, (b, s), "(b, s)"),
            *((f"{n}[{i}]", x, cross, "(b, h_kv, s, d)") for n in ("cross_k", "cross_v")
              for i, x in enumerate(layers[n])),
            *((f"{n}[{i}]", x, cache, "(b, h_kv, t, d) of past_k[0]") for n in ("past_k", "past_v")
              for i, x in enumerate(layers[n])),
        ]  # fmt: skip
        bounds = [
            self._source_bound(s),
            ("cache length t", t, 0, c.max_tgt_len - 1, "max_tgt_len - 1"),
        ]
        if _check_shapes(what, shapes, bounds):
            _raise_if(_ids_problems("tokens", tokens, c.vocab_size), what)

    def _check_decode_full(
        self, tgt_in: Tensor, src_mask: Tensor, cross_k: Tensor, cross_v: Tensor
    ) -> None:
        c, what = self.config, "decoder input"
        specs: list[_Spec] = [
            ("tgt_in", tgt_in, torch.int64, 2),
            ("src_mask", src_mask, torch.bool, 2),
            ("cross_k", cross_k, None, 5),
            ("cross_v", cross_v, None, 5),
        ]
        _raise_if(_spec_problems(specs), what)
        (b, t), s = tgt_in.shape, src_mask.shape[1]
        shapes: list[_Shape] = [
            ("src_mask", src_mask, (b, s), "(b, s) with b of tgt_in"),
            *self._memory_shapes(b, s, cross_k, cross_v),
        ]
        bounds = [("target length t", t, 1, c.max_tgt_len, "max_tgt_len")]
        if _check_shapes(what, shapes, bounds):
            _raise_if(_ids_problems("tgt_in", tgt_in, c.vocab_size), what)

    def _rotary(self, positions: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Rotary tables ``(n, d/2)`` of ``positions``; (None, None) with sinusoidal positions."""
        if self.rope is None:
            return None, None
        return self.rope.tables(positions)

    def _absolute(self, positions: Tensor) -> Tensor | None:
        """Sinusoidal rows ``(n, D)`` of ``positions``; None with rotary positions."""
        return None if self.positions is None else cast(Tensor, self.positions(positions))

    def _embed(self, ids: Tensor, absolute: Tensor | None) -> Tensor:
        """Token embeddings ``(b, n, D)`` of ``ids`` ``(b, n)``, scaled, plus the sinusoidal rows
        ``absolute`` ``(n, D)`` of their positions when the model has them."""
        x: Tensor = self.embed(ids) * self.embed_scale
        if absolute is not None:
            x = x + absolute
        out: Tensor = self.dropout(x)
        return out

    def _logits(self, x: Tensor) -> Tensor:
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)
        if self.lm_head is not None:
            logits: Tensor = self.lm_head(x)
        else:
            logits = F.linear(x, self.embed.weight)
        return logits if self.logits_bias is None else logits + self.logits_bias

    def encode(self, src_ids: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Source ids ``(b, s)`` int64 and mask ``(b, s)`` -> cross K, V ``(L, b, h_kv, s, d)``.

        ``s`` may be anything from 1 to ``max_src_len``. Raises :class:`ModelInputError` naming
        every wrong dtype, shape, length or id (values are checked in eager mode only).
        """
        self._check_encode(src_ids, src_mask)
        s = src_ids.shape[1]
        positions = torch.arange(s, device=src_ids.device)
        cos, sin = self._rotary(positions)
        key_mask = src_mask.view(src_mask.shape[0], 1, 1, s)  # (b, 1, 1, s)
        x = self._embed(src_ids, self._absolute(positions))  # (b, s, D)
        for enc_layer in self.encoder_layers:
            x = enc_layer(x, cos, sin, key_mask)
        memory = x if self.encoder_norm is None else self.encoder_norm(x)
        keys, values = zip(
            *(layer.cross_attn.project_kv(memory) for layer in self._decoder_layers()), strict=True
        )
        return torch.stack(keys), torch.stack(values)

    def decode_step(
        self, tokens: Tensor, pos: Tensor, src_mask: Tensor, cross_k: Tensor, cross_v: Tensor,
        self_k: Tensor, self_v: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        """One cached decoder step for every row of the batch.

        tokens ``(b, 1)`` int64 (the token at position ``pos``); pos ``(1,)`` int64, shared by all
        rows; src_mask ``(b, s)``; cross_k/cross_v ``(L, b, h_kv, s, d)`` from :meth:`encode`;
        self_k/self_v ``(L, b, h_kv, T, d)``. Returns logits ``(b, V)`` for the token at
        ``pos + 1`` and the updated caches (same shapes as given). Raises
        :class:`ModelInputError` for wrong dtypes or shapes and, in eager mode, for a ``pos``
        outside the cache or token ids outside the vocabulary.
        """
        self._check_decode_step(tokens, pos, src_mask, cross_k, cross_v, self_k, self_v)
        cos, sin = self._rotary(pos)  # (1, d/2)
        key_mask = src_mask.view(src_mask.shape[0], 1, 1, src_mask.shape[1])  # (b, 1, 1, s)
        x = self._embed(tokens, self._absolute(pos))  # (b, 1, D)
        new_k, new_v = [], []
        for i, layer in enumerate(self._decoder_layers()):
            x, k_i, v_i = layer.step(
                x, cos, sin, pos, self_k[i], self_v[i], cross_k[i], cross_v[i], key_mask
            )
            new_k.append(k_i)
            new_v.append(v_i)
        return self._logits(x)[:, 0], torch.stack(new_k), torch.stack(new_v)

    def decode_step_grow(
        self, tokens: Tensor, src_mask: Tensor, cross_k: PerLayer,
        cross_v: PerLayer, past_k: PerLayer, past_v: PerLayer,
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:  # fmt: skip
        """One decoder step with the growing cache (the growing-cache rule of the module
        docstring).

        tokens ``(b, 1)`` int64, at position ``t``; src_mask ``(b, s)``; cross_k/cross_v one
        ``(b, h_kv, s, d)`` tensor per decoder layer (the stacked tensors of :meth:`encode` are
        such sequences); past_k/past_v one ``(b, h_kv, t, d)`` tensor per layer, ``0 <= t < T``.
        Returns logits ``(b, V)`` for position ``t + 1`` and each layer's caches
        ``(b, h_kv, t + 1, d)``.
        """
        self._check_decode_grow(tokens, src_mask, cross_k, cross_v, past_k, past_v)
        t = past_k[0].shape[2]
        # Rows t of the tables, sliced (a symbolic t needs no index tensor): (1, d/2), (1, D).
        cos, sin = (None, None) if self.rope is None else (self.rope.cos[t : t + 1],
                                                           self.rope.sin[t : t + 1])  # fmt: skip
        absolute = None if self.positions is None else self.positions.table[t : t + 1]
        key_mask = src_mask.view(src_mask.shape[0], 1, 1, src_mask.shape[1])  # (b, 1, 1, s)
        x = self._embed(tokens, absolute)  # (b, 1, D)
        new_k, new_v = [], []
        for i, layer in enumerate(self._decoder_layers()):
            x, k_i, v_i = layer.step_grow(
                x, cos, sin, past_k[i], past_v[i], cross_k[i], cross_v[i], key_mask
            )
            new_k.append(k_i)
            new_v.append(v_i)
        return self._logits(x)[:, 0], new_k, new_v

    def decode_full(
        self, tgt_in: Tensor, src_mask: Tensor, cross_k: Tensor, cross_v: Tensor
    ) -> Tensor:
        """Whole-sequence decoder without a cache: tgt_in ``(b, t)`` -> logits ``(b, t, V)``,
        ``t`` from 1 to ``max_tgt_len``."""
        self._check_decode_full(tgt_in, src_mask, cross_k, cross_v)
        t = tgt_in.shape[1]
        positions = torch.arange(t, device=tgt_in.device)
        cos, sin = self._rotary(positions)
        causal = self.causal[:t, :t].view(1, 1, t, t)
        key_mask = src_mask.view(src_mask.shape[0], 1, 1, src_mask.shape[1])
        x = self._embed(tgt_in, self._absolute(positions))
        for i, layer in enumerate(self.decoder_layers):
            x = layer(x, cos, sin, causal, cross_k[i], cross_v[i], key_mask)
        return self._logits(x)

    def forward(self, src_ids: Tensor, src_mask: Tensor, tgt_in: Tensor) -> Tensor:
        """Training form: logits ``(b, t, V)`` for teacher-forced decoder input ``tgt_in``."""
        cross_k, cross_v = self.encode(src_ids, src_mask)
        return self.decode_full(tgt_in, src_mask, cross_k, cross_v)

    def empty_grow_cache(self, batch: int) -> tuple[list[Tensor], list[Tensor]]:
        """The growing cache's start state: per decoder layer, K and V ``(b, h_kv, 0, d)``."""
        c = self.config
        shape = (batch, c.n_kv_heads, 0, c.head_dim)
        device = self.causal.device  # a buffer: moves with the model, whatever the embedding is
        layers = range(c.n_decoder_layers)
        return (
            [torch.zeros(shape, device=device) for _ in layers],
            [torch.zeros(shape, device=device) for _ in layers],
        )

    def empty_cache(self, batch: int) -> tuple[Tensor, Tensor]:
        """Zeroed self-attention caches ``(L, b, h_kv, T, d)`` (the cache rule's start state)."""
        c = self.config
        shape = (c.n_decoder_layers, batch, c.n_kv_heads, c.max_tgt_len, c.head_dim)
        device = self.causal.device  # a buffer: moves with the model, whatever the embedding is
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)
