"""Model components: unit tests and property tests (RMSNorm, RoPE, GQA, masked softmax, cache)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lingolite.exportable import dynamic_shapes
from lingolite.model import (
    LingoLite,
    ModelInputError,
    RMSNorm,
    RotaryEmbedding,
    append_cache,
    apply_rotary,
    grouped_attention,
    masked_softmax,
    write_cache,
)
from lingolite.search import zero_cache
from tests.helpers import random_batch, small_config, small_model

BSZ = 2
FAST = settings(max_examples=25, deadline=None)


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor):  # type: ignore[no-untyped-def]
    """Plain multi-head attention with K/V repeated per query head (what GQA must equal)."""
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    return masked_softmax(scores, mask) @ v


# ---------------------------------------------------------------------------- RMSNorm
@FAST
@given(scale=st.floats(1e-3, 1e3), seed=st.integers(0, 1000))
def test_rmsnorm_is_invariant_to_positive_scaling(scale: float, seed: int) -> None:
    torch.manual_seed(seed)
    norm = RMSNorm(16, eps=1e-12)
    x = torch.randn(3, 5, 16, dtype=torch.float64).float() + 0.1
    torch.testing.assert_close(norm(x * scale), norm(x), rtol=1e-4, atol=1e-5)


def test_rmsnorm_output_has_unit_rms_and_uses_weight() -> None:
    norm = RMSNorm(8, eps=1e-6)
    x = torch.randn(4, 8) * 7
    rms = norm(x).pow(2).mean(-1).sqrt()
    torch.testing.assert_close(rms, torch.ones(4), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        norm.weight.fill_(2.0)
    torch.testing.assert_close(
        norm(x).pow(2).mean(-1).sqrt(), 2 * torch.ones(4), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("eps", [-1.0, 0.0, math.inf, math.nan])
def test_rmsnorm_rejects_an_eps_that_is_not_finite_and_positive(eps: float) -> None:
    with pytest.raises(ModelInputError, match=rf"eps must be finite and > 0, got {eps}"):
        RMSNorm(4, eps=eps)


def test_rmsnorm_reports_every_bad_argument_with_its_value() -> None:
    with pytest.raises(ModelInputError) as info:
        RMSNorm(0, eps=-1.0)
    assert "dim must be an int > 0, got 0" in str(info.value)
    assert "eps must be finite and > 0, got -1.0" in str(info.value)


# ---------------------------------------------------------------------------- RoPE
@pytest.mark.parametrize("base", [-1e4, 0.0, math.inf, math.nan])
def test_rope_rejects_a_base_that_is_not_finite_and_positive(base: float) -> None:
    with pytest.raises(ModelInputError, match=rf"base must be finite and > 0, got {base}"):
        RotaryEmbedding(4, 8, base=base)


def test_rope_reports_every_bad_length_with_its_value() -> None:
    with pytest.raises(ModelInputError) as info:
        RotaryEmbedding(0, 0, base=-1.0)
    for expected in ("head_dim must be an int > 0, got 0", "max_len must be an int > 0, got 0",
                     "base must be finite and > 0, got -1.0"):  # fmt: skip
        assert expected in str(info.value)
    with pytest.raises(ModelInputError, match=r"head_dim must be even .*, got 3"):
        RotaryEmbedding(3, 8, base=10.0)


def test_rope_tables_are_not_persistent() -> None:
    rope = RotaryEmbedding(8, 16, 10000.0)
    assert rope.state_dict() == {}
    assert rope.cos.shape == (16, 4)


def test_rope_rotates_adjacent_pairs() -> None:
    rope = RotaryEmbedding(4, 8, 100.0)
    x = torch.tensor([1.0, 0.0, 0.0, 1.0]).view(1, 1, 1, 4)
    cos, sin = rope.tables(torch.tensor([3]))
    out = apply_rotary(x, cos, sin).flatten()
    theta0, theta1 = 3 * 1.0, 3 * 100.0 ** (-2 / 4)
    expected = torch.tensor(
        [math.cos(theta0), math.sin(theta0), -math.sin(theta1), math.cos(theta1)]
    )
    torch.testing.assert_close(out, expected)


@FAST
@given(
    m=st.integers(0, 40), n=st.integers(0, 40), shift=st.integers(0, 20), seed=st.integers(0, 99)
)
def test_rope_score_depends_only_on_position_offset(m: int, n: int, shift: int, seed: int) -> None:
    torch.manual_seed(seed)
    rope = RotaryEmbedding(16, 64, 10000.0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(qp: int, kp: int) -> torch.Tensor:
        qc, qs = rope.tables(torch.tensor([qp]))
        kc, ks = rope.tables(torch.tensor([kp]))
        return (apply_rotary(q, qc, qs) * apply_rotary(k, kc, ks)).sum()

    torch.testing.assert_close(score(m, n), score(m + shift, n + shift), rtol=1e-4, atol=1e-4)


def test_rope_preserves_norm() -> None:
    rope = RotaryEmbedding(8, 32, 10000.0)
    x = torch.randn(2, 3, 32, 8)
    cos, sin = rope.tables(torch.arange(32))
    torch.testing.assert_close(apply_rotary(x, cos, sin).norm(dim=-1), x.norm(dim=-1))


# ---------------------------------------------------------------------------- attention
@FAST
@given(
    b=st.integers(1, 3), h_kv=st.integers(1, 3), g=st.integers(1, 3), n=st.integers(1, 6),
    m=st.integers(1, 7), d=st.sampled_from([2, 4, 8]), seed=st.integers(0, 999),
)  # fmt: skip
def test_gqa_equals_mha_with_repeated_kv_and_has_the_right_shape(
    b: int, h_kv: int, g: int, n: int, m: int, d: int, seed: int
) -> None:
    torch.manual_seed(seed)
    q = torch.randn(b, h_kv * g, n, d)
    k, v = torch.randn(b, h_kv, m, d), torch.randn(b, h_kv, m, d)
    mask = torch.rand(b, 1, n, m) > 0.3
    out = grouped_attention(q, k, v, mask)
    assert out.shape == (b, h_kv * g, n, d)
    torch.testing.assert_close(out, reference_attention(q, k, v, mask), rtol=1e-5, atol=1e-5)


def test_attention_module_never_repeats_kv() -> None:
    import inspect

    import lingolite.model as model_module

    source = inspect.getsource(model_module)
    assert "repeat_interleave" not in source and ".repeat(" not in source


@FAST
@given(rows=st.integers(1, 4), cols=st.integers(1, 6), seed=st.integers(0, 999))
def test_fully_masked_rows_give_zeros_and_finite_gradients(rows: int, cols: int, seed: int) -> None:
    torch.manual_seed(seed)
    scores = (torch.randn(rows, cols) * 50).requires_grad_()
    mask = torch.rand(rows, cols) > 0.5
    mask[0] = False  # at least one fully masked row
    probs = masked_softmax(scores, mask)
    assert torch.isfinite(probs).all()
    assert torch.equal(probs[0], torch.zeros(cols))
    live = mask.any(-1)
    torch.testing.assert_close(probs[live].sum(-1), torch.ones(int(live.sum())))
    (probs * torch.randn(rows, cols)).sum().backward()  # type: ignore[no-untyped-call]
    assert scores.grad is not None and torch.isfinite(scores.grad).all()


def test_masked_softmax_matches_softmax_when_nothing_is_masked() -> None:
    scores = torch.randn(3, 5)
    torch.testing.assert_close(
        masked_softmax(scores, torch.ones(3, 5, dtype=torch.bool)), scores.softmax(-1)
    )


def test_extreme_scores_stay_finite() -> None:
    scores = torch.tensor([[3e38, -3e38, 0.0], [-3e38, -3e38, -3e38]])
    probs = masked_softmax(scores, torch.tensor([[True, True, False], [True, True, True]]))
    assert torch.isfinite(probs).all()
    torch.testing.assert_close(probs[0], torch.tensor([1.0, 0.0, 0.0]))


# ---------------------------------------------------------------------------- cache
def test_write_cache_writes_only_the_position_slot() -> None:
    cache = torch.zeros(BSZ, 2, 5, 3)
    new = torch.ones(BSZ, 2, 1, 3)
    out = write_cache(cache, new, torch.tensor([2]))
    assert torch.equal(out[:, :, 2], torch.ones(BSZ, 2, 3))
    assert out.sum() == new.sum()


@settings(max_examples=30, deadline=None)
@given(pos=st.integers(0, 6), seed=st.integers(0, 2**16))
def test_write_cache_is_exact_for_finite_values(pos: int, seed: int) -> None:
    """The blend equals indexed assignment bit for bit (up to the sign of zeros) on random and
    extreme finite values: huge, tiny and subnormal magnitudes, both signs."""
    gen = torch.Generator().manual_seed(seed)
    scale = torch.tensor([1e-40, 1e-30, 1.0, 1e30, 1e37])  # subnormal .. large
    pick = torch.randint(0, len(scale), (2, 3, 7, 4), generator=gen)
    cache = torch.randn(2, 3, 7, 4, generator=gen) * scale[pick]
    new = torch.randn(2, 3, 1, 4, generator=gen) * scale[pick[:, :, :1]]
    expected = cache.clone()
    expected[:, :, pos] = new[:, :, 0]
    out = write_cache(cache, new, torch.tensor([pos]))
    assert torch.isfinite(out).all()
    assert torch.equal(out, expected)  # torch.equal treats -0.0 == 0.0


def test_empty_cache_shape_matches_the_documented_layout() -> None:
    config = small_config()
    k, v = LingoLite(config).empty_cache(3)
    expected = (config.n_decoder_layers, 3, config.n_kv_heads, config.max_tgt_len, config.head_dim)
    assert k.shape == v.shape == expected and not k.any()
    # The runtimes' numpy cache (lingolite.search.zero_cache) has the model's layout.
    zk, zv = zero_cache(config.to_dict(), 3)
    assert zk.shape == zv.shape == expected and zk.dtype == np.float32 and not zk.any()


def test_cache_buffers_never_enter_the_state_dict() -> None:
    keys = small_model().state_dict().keys()
    assert not any("causal" in k or "rope" in k for k in keys)


@pytest.mark.parametrize("batch,length", [(1, 1), (1, 24), (3, 7)])
def test_cached_steps_equal_full_decoding(batch: int, length: int) -> None:
    model = small_model()
    src, mask = random_batch(batch, length)
    tgt = torch.randint(4, 97, (batch, model.config.max_tgt_len))  # up to the max-length boundary
    full = model(src, mask, tgt)
    cross_k, cross_v = model.encode(src, mask)
    self_k, self_v = model.empty_cache(batch)
    for pos in range(tgt.shape[1]):
        logits, self_k, self_v = model.decode_step(
            tgt[:, pos : pos + 1], torch.tensor([pos]), mask, cross_k, cross_v, self_k, self_v
        )
        torch.testing.assert_close(logits, full[:, pos], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch,length", [(1, 1), (3, 7)])
def test_growing_cache_follows_its_rule_and_equals_the_static_cache(
    batch: int, length: int
) -> None:
    """The growing-cache rule (module docstring): the cache starts empty, grows by one entry
    per step, entry i is slot i of the static cache, and the logits are the static step's."""
    model = small_model()
    src, mask = random_batch(batch, length)
    tgt = torch.randint(4, 97, (batch, model.config.max_tgt_len))
    cross_k, cross_v = model.encode(src, mask)
    self_k, self_v = model.empty_cache(batch)
    past_k, past_v = model.empty_grow_cache(batch)
    assert [x.shape for x in (*past_k, *past_v)] == [(batch, 2, 0, 8)] * 4  # 2 layers, K and V
    for pos in range(tgt.shape[1]):
        tokens = tgt[:, pos : pos + 1]
        step = torch.tensor([pos])
        logits, self_k, self_v = model.decode_step(
            tokens, step, mask, cross_k, cross_v, self_k, self_v
        )
        grown, past_k, past_v = model.decode_step_grow(
            tokens, mask, cross_k, cross_v, past_k, past_v
        )
        assert [x.shape for x in (*past_k, *past_v)] == [(batch, 2, pos + 1, 8)] * 4
        grown_k, grown_v = torch.stack(past_k), torch.stack(past_v)
        torch.testing.assert_close(grown_k, self_k[:, :, :, : pos + 1], rtol=0, atol=1e-6)
        torch.testing.assert_close(grown_v, self_v[:, :, :, : pos + 1], rtol=0, atol=1e-6)
        torch.testing.assert_close(grown, logits, rtol=1e-5, atol=1e-5)


def test_append_cache_appends_one_entry() -> None:
    cache, new = torch.randn(BSZ, 2, 3, 4), torch.randn(BSZ, 2, 1, 4)
    out = append_cache(cache, new)
    assert torch.equal(out[:, :, :3], cache) and torch.equal(out[:, :, 3:], new)


def test_growing_cache_refuses_a_full_cache_and_names_it() -> None:
    model = small_model()
    src, mask = random_batch(1, 4)
    cross_k, cross_v = model.encode(src, mask)
    full = list(torch.zeros(2, 1, 2, model.config.max_tgt_len, 8))
    with pytest.raises(ModelInputError, match=r"cache length t must be in \[0, max_tgt_len - 1"):
        model.decode_step_grow(torch.tensor([[5]]), mask, cross_k, cross_v, full, full)
    past_k, past_v = model.empty_grow_cache(1)
    with pytest.raises(
        ModelInputError, match=r"past_v must hold one tensor per decoder layer \(2\), got 1"
    ):
        model.decode_step_grow(torch.tensor([[5]]), mask, cross_k, cross_v, past_k, past_v[:1])
    ragged = [past_k[0], torch.zeros(1, 2, 3, 8)]
    with pytest.raises(
        ModelInputError,
        match=r"past_k\[1\] must have shape \(b, h_kv, t, d\) of past_k\[0\] = \(1, 2, 0, 8\), got \(1, 2, 3, 8\)",
    ):
        model.decode_step_grow(torch.tensor([[5]]), mask, cross_k, cross_v, ragged, past_v)


def test_cross_kv_shape_and_padding_does_not_change_real_rows() -> None:
    model = small_model()
    src, mask = random_batch(1, 6)
    padded = torch.cat([src, torch.zeros(1, 4, dtype=torch.long)], 1)
    padded_mask = torch.cat([mask, torch.zeros(1, 4, dtype=torch.bool)], 1)
    tgt = torch.randint(4, 97, (1, 5))
    cross_k, _ = model.encode(padded, padded_mask)
    c = model.config
    assert cross_k.shape == (c.n_decoder_layers, 1, c.n_kv_heads, 10, c.head_dim)
    torch.testing.assert_close(
        model(padded, padded_mask, tgt), model(src, mask, tgt), rtol=1e-5, atol=1e-5
    )


def test_all_padding_source_stays_finite_forward_and_backward() -> None:
    model = small_model()
    model.train()
    src = torch.zeros(BSZ, 5, dtype=torch.long)
    mask = torch.zeros(BSZ, 5, dtype=torch.bool)
    logits = model(src, mask, torch.randint(4, 97, (BSZ, 4)))
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_tied_and_untied_embeddings() -> None:
    tied = small_model(tie_embeddings=True)
    untied = small_model(tie_embeddings=False)
    assert "lm_head.weight" not in tied.state_dict()
    assert "lm_head.weight" in untied.state_dict()
    assert untied.num_parameters() - tied.num_parameters() == 97 * 32


def test_embedding_scale_is_derived_once_and_read_from_the_attribute() -> None:
    model = small_model()
    assert model.embed_scale == math.sqrt(32)  # derived from the config when the model is built
    src, mask = random_batch(2, 5)
    tgt = torch.randint(4, 97, (2, 3))
    before = model(src, mask, tgt)
    # Every forward reads the stored value: changing it changes the output, and setting it to 1
    # makes the embedding step a plain lookup. A forward that recomputed sqrt(D) would ignore both.
    model.embed_scale = 1.0
    assert torch.equal(model._embed(src, None), model.embed.weight[src])
    assert not torch.allclose(model(src, mask, tgt), before)
    model.embed_scale = math.sqrt(32)
    assert torch.equal(model(src, mask, tgt), before)


def test_same_seed_gives_identical_weights_and_outputs() -> None:
    a, b = small_model(seed=3), small_model(seed=3)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    src, mask = random_batch(2, 5)
    tgt = torch.randint(4, 97, (2, 3))
    assert torch.equal(a(src, mask, tgt), b(src, mask, tgt))
    assert not torch.equal(small_model(seed=4).embed.weight, a.embed.weight)


class _Encoder(torch.nn.Module):
    def __init__(self, model: LingoLite) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, src_ids: torch.Tensor, src_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode(src_ids, src_mask)


class _Step(torch.nn.Module):
    def __init__(self, model: LingoLite) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.model.decode_step(*args)


def test_torch_export_strict_succeeds_on_encoder_and_decoder_step() -> None:
    model = small_model()
    src, mask = random_batch(BSZ, 6)
    encoder = torch.export.export(_Encoder(model), (src, mask), strict=True)
    cross_k, cross_v = model.encode(src, mask)
    self_k, self_v = model.empty_cache(BSZ)
    args = (torch.tensor([[5], [6]]), torch.tensor([3]), mask, cross_k, cross_v, self_k, self_v)
    step = torch.export.export(_Step(model), args, strict=True)
    torch.testing.assert_close(encoder.module()(src, mask)[0], cross_k)
    torch.testing.assert_close(step.module()(*args)[0], model.decode_step(*args)[0])


# ---------------------------------------------------------------------------- input checks
MAX_SRC, MAX_TGT = 24, 16  # small_config's static lengths


def step_args(model: LingoLite, batch: int = BSZ, src_len: int = 6) -> list[torch.Tensor]:
    """Valid decode_step arguments: BOS at position 0 over a random source."""
    src, mask = random_batch(batch, src_len)
    cross_k, cross_v = model.encode(src, mask)
    self_k, self_v = model.empty_cache(batch)
    tokens = torch.full((batch, 1), model.config.bos_id)
    return [tokens, torch.tensor([0]), mask, cross_k, cross_v, self_k, self_v]


def test_source_longer_than_max_src_len_is_a_clear_error_not_an_index_error() -> None:
    model = small_model()
    src, mask = random_batch(1, 30)
    with pytest.raises(
        ModelInputError, match=r"source length s must be in \[1, max_src_len = 24\], got 30"
    ):
        model.encode(src, mask)
    with pytest.raises(ModelInputError, match="got 30"):
        model(src, mask, torch.randint(4, 97, (1, 3)))


def test_target_longer_than_max_tgt_len_is_refused() -> None:
    model = small_model()
    src, mask = random_batch(1, 5)
    with pytest.raises(
        ModelInputError, match=r"target length t must be in \[1, max_tgt_len = 16\], got 17"
    ):
        model(src, mask, torch.randint(4, 97, (1, 17)))


@pytest.mark.parametrize("pos", [MAX_TGT, 20, -1])
def test_decode_step_refuses_a_position_outside_the_cache(pos: int) -> None:
    model = small_model()
    args = step_args(model)
    args[1] = torch.tensor([pos])
    with pytest.raises(
        ModelInputError,
        match=rf"pos must be a cache slot in \[0, max_tgt_len - 1 = 15\], got {pos}",
    ):
        model.decode_step(*args)
    args[1] = torch.tensor([MAX_TGT - 1])  # the last slot is fine
    assert torch.isfinite(model.decode_step(*args)[0]).all()


def test_encoder_reports_every_wrong_dtype_and_rank_at_once() -> None:
    model = small_model()
    src, mask = random_batch(2, 5)
    with pytest.raises(ModelInputError) as info:
        model.encode(src.to(torch.int32)[0], mask.long())
    message = str(info.value)
    for expected in (
        "src_ids must be torch.int64, got torch.int32",
        "src_ids must have 2 dims, got shape (5,)",
        "src_mask must be torch.bool, got torch.int64",
    ):
        assert expected in message


def test_encoder_refuses_mismatched_shapes_and_ids_outside_the_vocabulary() -> None:
    model = small_model()
    src, mask = random_batch(2, 5)
    with pytest.raises(
        ModelInputError,
        match=r"src_mask must have shape \(b, s\) of src_ids = \(2, 5\), got \(2, 4\)",
    ):
        model.encode(src, mask[:, :4])
    src[1, 2] = 97
    with pytest.raises(
        ModelInputError,
        match=r"src_ids must be in \[0, vocab_size = 97\), got values in \[\d+, 97\]",
    ):
        model.encode(src, mask)


def test_decode_step_reports_every_wrong_dtype_and_shape_at_once() -> None:
    model = small_model()
    tokens, pos, mask, cross_k, cross_v, self_k, self_v = step_args(model)
    with pytest.raises(ModelInputError) as info:
        model.decode_step(
            tokens.int(), pos.float(), mask, cross_k.long(), cross_v, self_k, self_v[0]
        )
    message = str(info.value)
    for expected in (
        "tokens must be torch.int64, got torch.int32",
        "pos must be torch.int64, got torch.float32",
        "cross_k must be a floating-point tensor, got torch.int64",
        "self_v must have 5 dims, got shape (2, 2, 16, 8)",
    ):
        assert expected in message
    with pytest.raises(ModelInputError) as info:
        model.decode_step(
            tokens[:1], pos.repeat(2), mask, cross_k, cross_v, self_k[:, :, :, :8], self_v
        )
    message = str(info.value)
    for expected in (
        "pos must have shape (1,) = (1,), got (2,)",
        "src_mask must have shape (b, s) = (1, 6), got (2, 6)",
        "cross_k must have shape (L, b, h_kv, s, d) = (2, 1, 2, 6, 8), got (2, 2, 2, 6, 8)",
        "self_k must have shape (L, b, h_kv, T, d) = (2, 1, 2, 16, 8), got (2, 2, 2, 8, 8)",
    ):
        assert expected in message
    with pytest.raises(
        ModelInputError, match=r"tokens must be in \[0, vocab_size = 97\), got values in \[-1, 1\]"
    ):
        model.decode_step(torch.tensor([[-1], [1]]), pos, mask, cross_k, cross_v, self_k, self_v)


def test_input_checks_stay_out_of_the_exported_graphs() -> None:
    """Export with the exporters' dynamic shapes: the shape checks are proved from the
    declared ranges (no assertion or ``.item()`` enters the graph), and the programs still accept
    every source length and batch size they declare."""
    model = small_model()
    enc_shapes, dec_shapes = dynamic_shapes(model.config)
    src, mask = random_batch(BSZ, 6)
    encoder = torch.export.export(
        _Encoder(model), (src, mask), dynamic_shapes=enc_shapes, strict=True
    )
    args = tuple(step_args(model))
    names = ("tokens", "pos", "src_mask", "cross_k", "cross_v", "self_k", "self_v")
    step = torch.export.export(
        _Step(model),
        args,
        dynamic_shapes={"args": tuple(dec_shapes[n] for n in names)},
        strict=True,
    )
    for program in (encoder, step):
        targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
        leaked = {
            t for t in targets if "assert_scalar" in t or "local_scalar" in t or "constrain" in t
        }
        assert not leaked, leaked
    src3, mask3 = random_batch(3, MAX_SRC, seed=1)
    torch.testing.assert_close(encoder.module()(src3, mask3)[0], model.encode(src3, mask3)[0])
    args3 = step_args(model, batch=3, src_len=MAX_SRC)
    torch.testing.assert_close(step.module()(*args3)[0], model.decode_step(*args3)[0])
