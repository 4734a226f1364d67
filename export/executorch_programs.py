"""``encode`` and ``decode_step`` written for XNNPACK: the same math as :mod:`lingolite.model`, in
the operators ExecuTorch's XNNPACK partitioner takes.

Traced from :class:`lingolite.exportable`'s wrappers, a third of the encoder's work stayed in
ExecuTorch's portable kernels (``get_delegation_info``): XNNPACK takes no ``where``, ``amax``,
``select``, ``expand``, 3-D ``mean``, nor a slice of a dynamic tensor. These programs read the
model's weights (no copies) and compute the same functions with the matmuls, norms, softmax and
cache update in delegated operators. Still outside (tiny ``small``-model share, but they split
the graph: 44 delegate calls in ``tiny``'s encoder, 21 in its decode step): the ``expand`` of
the 4-D broadcast matmuls, reshapes with a symbolic (dynamic) size, the per-layer ``select`` of
the cross K/V, the mask conversions, the rotary table lookup and the embedding lookup.

=========================  ================================================  ===================
model (eager)              here                                              equal
=========================  ================================================  ===================
``masked_softmax``         ``softmax(scores + bias) * keep``, ``bias`` = 0    up to rounding
                           on kept keys, the float32 minimum on masked ones;   (softmax's sum)
                           ``keep`` zeroes a fully masked row as eager does
RMSNorm ``mean(x^2)``      ``(x * x) @ (1/D)``: a matrix-vector product       up to rounding
rotary (pairs selected,    ``x * cos2 + (x @ P) * sin2``: tables repeated     bit for bit
stacked)                   per pair, ``P`` the signed pair swap
                           (one nonzero ``+-1`` per column: exact)
``self_k[i]``, ``stack``   static slices and ``cat`` of views                 bit for bit
=========================  ================================================  ===================

Architecture variants (:class:`~lingolite.config.ModelConfig`) take the same forms: LayerNorm
as ``(x - mean) / sqrt(var + eps) * weight + bias`` with both means as products with ``1/D``;
post-norm layers through :meth:`_Forms.into` / :meth:`_Forms.out` (the model's
``_Residual`` rule); sinusoidal positions as a row lookup added to the embeddings; no rotation
then; the feed-forward, projections and their biases are the model's own modules.

The export's parity gate (fp32 within 1e-4 of eager, identical greedy tokens) holds these to the
model; ``tests/test_executorch.py`` checks them against eager directly, and that no heavy
operator is left outside the delegate.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lingolite.model import Attention, DecoderLayer, EncoderLayer, LingoLite, RMSNorm, _Residual


def pair_swap(head_dim: int) -> Tensor:
    """``P`` ``(d, d)`` with ``(x @ P)[2i] = -x[2i+1]`` and ``(x @ P)[2i+1] = x[2i]``."""
    swap = torch.zeros(head_dim, head_dim)
    even = torch.arange(0, head_dim, 2)
    swap[even + 1, even] = -1.0
    swap[even, even + 1] = 1.0
    return swap


class _Forms(nn.Module):
    """The model plus the constant tables the rewritten operators need."""

    cos2: Tensor
    sin2: Tensor
    swap: Tensor
    mean: Tensor

    def __init__(self, model: LingoLite) -> None:
        super().__init__()
        self.model = model
        c = model.config
        # (P, d): each pair's angle twice, so that a row multiplies a whole head vector (empty
        # tables for a model without rotary positions: rotate() is then the identity).
        rope = model.rope
        cos = rope.cos if rope is not None else torch.zeros(0, c.head_dim // 2)
        sin = rope.sin if rope is not None else torch.zeros(0, c.head_dim // 2)
        self.rotary = rope is not None
        self.register_buffer("cos2", cos.repeat_interleave(2, dim=-1), persistent=False)
        self.register_buffer("sin2", sin.repeat_interleave(2, dim=-1), persistent=False)
        self.register_buffer("swap", pair_swap(c.head_dim), persistent=False)
        self.register_buffer("mean", torch.full((c.d_model, 1), 1.0 / c.d_model), persistent=False)
        self.eval()

    def norm(self, module: nn.Module, x: Tensor) -> Tensor:
        """RMSNorm or LayerNorm of ``x`` ``(b, n, D)``; every mean a product with ``1/D``."""
        if isinstance(module, RMSNorm):
            return x * torch.rsqrt(torch.matmul(x * x, self.mean) + module.eps) * module.weight
        assert isinstance(module, nn.LayerNorm)  # make_norm builds one or the other
        centred = x - torch.matmul(x, self.mean)
        var = torch.matmul(centred * centred, self.mean)
        return centred * torch.rsqrt(var + module.eps) * module.weight + module.bias

    def into(self, layer: _Residual, norm: nn.Module, x: Tensor) -> Tensor:
        """A sublayer's input, as ``_Residual.into``: normed in pre-norm layers."""
        return x if layer.post else self.norm(norm, x)

    def out(self, layer: _Residual, norm: nn.Module, x: Tensor, sublayer_out: Tensor) -> Tensor:
        """The residual sum, as ``_Residual.out``: normed in post-norm layers."""
        total = x + sublayer_out
        return self.norm(norm, total) if layer.post else total

    def rotate(self, x: Tensor, cos2: Tensor, sin2: Tensor) -> Tensor:
        """Rotary embedding of ``x`` ``(b, heads, n, d)`` with tables ``(n, d)``; ``x`` itself in
        a model without rotary positions."""
        if not self.rotary:
            return x
        return x * cos2 + torch.matmul(x, self.swap) * sin2

    def tables(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """Rotary rows ``(n, d)`` of ``positions`` (unused, empty, without rotary positions)."""
        if not self.rotary:
            return self.cos2, self.sin2
        return self.cos2.index_select(0, positions), self.sin2.index_select(0, positions)

    def attend(self, attn: Attention, q: Tensor, k: Tensor, v: Tensor, bias: Tensor,
               keep: Tensor) -> Tensor:  # fmt: skip
        """Grouped-query attention, merged and projected: q ``(b, h, n, d)``, k/v
        ``(b, h_kv, m, d)``, bias/keep broadcastable to ``(b, h_kv, g, n, m)``."""
        b, h, n, d = q.shape
        h_kv, m = k.shape[1], k.shape[2]
        g = h // h_kv
        q = q.reshape(b, h_kv, g * n, d)  # (b, h_kv, g*n, d)
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(d))  # (b, h_kv, g*n, m)
        probs = torch.softmax(scores.reshape(b, h_kv, g, n, m) + bias, dim=-1) * keep
        out = torch.matmul(probs.reshape(b, h_kv, g * n, m), v)  # (b, h_kv, g*n, d)
        return attn.merge(out.reshape(b, h, n, d))

    def ffn(self, layer: EncoderLayer | DecoderLayer, x: Tensor) -> Tensor:
        h = cast(Tensor, layer.ffn(self.into(layer, layer.ffn_norm, x)))
        return self.out(layer, layer.ffn_norm, x, h)

    def embed(self, ids: Tensor, positions: Tensor) -> Tensor:
        """Scaled embeddings of ``ids`` ``(b, n)`` plus, with sinusoidal positions, the table
        rows of ``positions`` ``(n,)``."""
        x = cast(Tensor, self.model.embed(ids)) * self.model.embed_scale
        if self.model.positions is not None:
            x = x + self.model.positions.table.index_select(0, positions)
        return x

    def final_norm(self, module: nn.Module | None, x: Tensor) -> Tensor:
        """The stack's final norm (pre-norm models only)."""
        return x if module is None else self.norm(module, x)


class Int8RowEmbedding(nn.Module):
    """An embedding table stored as int8 with one float32 scale per row (symmetric, weight-only).

    ``forward`` is the portable ``embedding`` kernel on the int8 rows, a cast and a multiply by
    the row's scale: a quarter of the fp32 table's bytes, no quantized-kernel library needed.
    A row's largest magnitude maps to 127, so each element is off by at most half its row's step.
    """

    table: Tensor
    scale: Tensor

    def __init__(self, weight: Tensor) -> None:
        super().__init__()
        weight = weight.detach().float()
        scale = weight.abs().amax(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
        scale = scale / 127.0  # (V, 1)
        self.register_buffer("table", torch.round(weight / scale).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale)

    def forward(self, ids: Tensor) -> Tensor:
        return F.embedding(ids, self.table).to(torch.float32) * F.embedding(ids, self.scale)


def _keep_and_bias(mask: Tensor) -> tuple[Tensor, Tensor]:
    """A bool key mask as float ``keep`` (1 = attend) and additive ``bias`` (0 or float32 min)."""
    keep = mask.to(torch.float32)
    return keep, (keep - 1.0) * torch.finfo(torch.float32).max


class XnnpackEncoder(_Forms):
    """``(src_ids, src_mask) -> (cross_k, cross_v)``, as :meth:`LingoLite.encode`."""

    def forward(self, src_ids: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        m = self.model
        m._check_encode(src_ids, src_mask)
        b, s = src_ids.shape
        positions = torch.arange(s)
        cos2, sin2 = self.tables(positions)
        keep, bias = _keep_and_bias(src_mask.view(b, 1, 1, 1, s))  # (b, 1, 1, 1, s)
        x = self.embed(src_ids, positions)  # (b, s, D)
        for enc_layer in cast(list[EncoderLayer], list(m.encoder_layers)):
            a = enc_layer.attn
            h = self.into(enc_layer, enc_layer.attn_norm, x)
            q = self.rotate(a.split(a.wq(h), a.n_heads), cos2, sin2)
            k, v = a.project_kv(h)
            h = self.attend(a, q, self.rotate(k, cos2, sin2), v, bias, keep)
            x = self.ffn(enc_layer, self.out(enc_layer, enc_layer.attn_norm, x, h))
        memory = self.final_norm(m.encoder_norm, x)
        keys: list[Tensor] = []
        values: list[Tensor] = []
        for dec_layer in m._decoder_layers():
            k, v = dec_layer.cross_attn.project_kv(memory)  # (b, h_kv, s, d)
            keys.append(k.view(1, *k.shape))  # (1, b, h_kv, s, d)
            values.append(v.view(1, *v.shape))
        return torch.cat(keys), torch.cat(values)


class XnnpackDecoderStep(_Forms):
    """One cached decoder step, as :meth:`LingoLite.decode_step` (same cache rule)."""

    def forward(
        self, tokens: Tensor, pos: Tensor, src_mask: Tensor, cross_k: Tensor, cross_v: Tensor,
        self_k: Tensor, self_v: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        m = self.model
        m._check_decode_step(tokens, pos, src_mask, cross_k, cross_v, self_k, self_v)
        b, s = src_mask.shape
        _, _, h_kv, t, d = self_k.shape
        cos2, sin2 = self.tables(pos)  # (1, d)
        src_keep, src_bias = _keep_and_bias(src_mask.view(b, 1, 1, 1, s))
        slots = torch.arange(t)
        self_keep, self_bias = _keep_and_bias((slots <= pos).view(1, 1, 1, 1, t))
        hit = (slots == pos).view(1, 1, t, 1).to(torch.float32)  # the slot pos receives
        x = self.embed(tokens, pos)  # (b, 1, D)
        new_k, new_v = [], []
        for i, layer in enumerate(m._decoder_layers()):
            a = layer.self_attn
            h = self.into(layer, layer.self_norm, x)
            q = self.rotate(a.split(a.wq(h), a.n_heads), cos2, sin2)
            k, v = a.project_kv(h)
            # write_cache's blend, on a static slice of the stacked cache (no select)
            cache_k = self_k[i : i + 1].view(b, h_kv, t, d) * (1.0 - hit)
            cache_k = cache_k + self.rotate(k, cos2, sin2) * hit
            cache_v = self_v[i : i + 1].view(b, h_kv, t, d) * (1.0 - hit) + v * hit
            h = self.attend(a, q, cache_k, cache_v, self_bias, self_keep)
            x = self.out(layer, layer.self_norm, x, h)
            c = layer.cross_attn
            q = c.split(c.wq(self.into(layer, layer.cross_norm, x)), c.n_heads)
            h = self.attend(c, q, cross_k[i], cross_v[i], src_bias, src_keep)
            x = self.ffn(layer, self.out(layer, layer.cross_norm, x, h))
            new_k.append(cache_k.view(1, b, h_kv, t, d))
            new_v.append(cache_v.view(1, b, h_kv, t, d))
        x = self.final_norm(m.decoder_norm, x)
        logits = F.linear(x, m.embed.weight) if m.lm_head is None else m.lm_head(x)  # (b, 1, V)
        if m.logits_bias is not None:
            logits = logits + m.logits_bias
        return logits.view(b, -1), torch.cat(new_k), torch.cat(new_v)
