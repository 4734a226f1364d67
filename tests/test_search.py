"""Decoding: greedy, sampling and beam search over the backend interface."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from lingolite.generate import EagerBackend, RecomputeBackend, translate_ids
from lingolite.search import (
    BoolArray,
    Cache,
    FloatArray,
    Hypothesis,
    IntArray,
    Memory,
    SearchConfig,
    SearchError,
    beam_candidates,
    generate,
    generate_nbest,
    generate_stream,
    length_normalised,
    log_softmax,
    log_softmax_at,
    pad_batch,
    sample_tokens,
)
from lingolite.tokenizer import BOS_ID, EOS_ID, PAD_ID, TokenId
from tests.helpers import small_model, token_ids

BOS, EOS, PAD = BOS_ID, EOS_ID, PAD_ID
SOURCES = [
    token_ids(5, 10, 11, 12, EOS),
    token_ids(6, 20, EOS),
    token_ids(5, 7, 8, 9, 10, 11, 13, 40, 41, EOS),
]
Table = dict[tuple[int, int], dict[int, float]]  # (last token, pos) -> {next token: log-prob}


class TableBackend:
    """A fake model: the next-token log-probs are a fixed function of (last token, position).

    Its cache is the token history, laid out (1, b, T) like a real cache, so the search's reorder
    rule applies to it; it asserts that every step sees the history the search claims.
    """

    def __init__(self, table: Table, vocab: int = 8) -> None:
        self.table, self.vocab = table, vocab
        self.calls = 0

    @property
    def max_tgt_len(self) -> int:
        return 6

    def encode(self, src_ids: IntArray, src_mask: BoolArray) -> Memory:
        b = src_ids.shape[0]
        z = np.zeros((1, b, 1, 1, 1), dtype=np.float32)
        return Memory(src_mask, z, z)

    def init_cache(self, batch: int) -> Cache:
        return (np.full((1, batch, self.max_tgt_len), -1, dtype=np.int64),)

    def decode_step(
        self, tokens: IntArray, pos: int, memory: Memory, cache: Cache
    ) -> tuple[FloatArray, Cache]:
        self.calls += 1
        history = cache[0].copy()
        assert (history[0, :, pos:] == -1).all(), "cache slot written twice"
        history[0, :, pos] = tokens
        logits = np.full((tokens.shape[0], self.vocab), -30.0, dtype=np.float32)
        for row, token in enumerate(tokens):
            for nxt, logp in self.table.get((int(token), pos), {EOS: 0.0}).items():
                logits[row, nxt] = logp
        return logits, (history,)


def run(backend: TableBackend, config: SearchConfig, batch: int = 1) -> list[list[TokenId]]:
    ids, mask = pad_batch([[TokenId(5), EOS]] * batch, PAD)
    return generate(backend, ids, mask, bos_id=BOS, eos_id=EOS, pad_id=PAD, config=config)


# A greedy trap: token 3 looks best first (p=.6) but every continuation after it is poor, while
# token 4 (p=.4) leads to a near-certain continuation.
TRAP: Table = {
    (BOS, 0): {3: np.log(0.6), 4: np.log(0.4)},
    (3, 1): {5: np.log(0.34), 6: np.log(0.33), 7: np.log(0.33)},
    (4, 1): {5: np.log(0.99), 6: np.log(0.01)},
    (5, 2): {EOS: 0.0},
    (6, 2): {EOS: 0.0},
    (7, 2): {EOS: 0.0},
}


def test_greedy_takes_the_locally_best_token_and_stops_at_eos() -> None:
    assert run(TableBackend(TRAP), SearchConfig(max_length=6)) == [[3, 5]]


def test_beam_search_escapes_the_greedy_trap() -> None:
    assert run(TableBackend(TRAP), SearchConfig(max_length=6, num_beams=2)) == [[4, 5]]


def test_beam_search_batches_sentences_independently() -> None:
    out = run(TableBackend(TRAP), SearchConfig(max_length=6, num_beams=3), batch=3)
    assert out == [[4, 5]] * 3


def test_length_penalty_trades_length_for_probability() -> None:
    # Short: EOS right away with p=.5. Long: 3 tokens with per-token p=.8 then EOS (p=.8^3 * 1).
    table: Table = {
        (BOS, 0): {EOS: np.log(0.5), 3: np.log(0.5)},
        (3, 1): {4: np.log(0.8), EOS: np.log(0.2)},
        (4, 2): {5: np.log(0.8), EOS: np.log(0.2)},
        (5, 3): {EOS: np.log(0.99)},
    }
    short = run(TableBackend(table), SearchConfig(max_length=6, num_beams=2, length_penalty=0.0))
    long = run(TableBackend(table), SearchConfig(max_length=6, num_beams=2, length_penalty=2.0))
    assert short == [[]]  # raw log-probability prefers stopping at once
    assert long == [[3, 4, 5]]  # a strong length penalty prefers the longer hypothesis


# With two beams, two hypotheses finish by step 2 ([] at step 1, [3] and [4] at step 2), while
# the running beam [3, 5] can still grow into [3, 5, 6], which wins under length_penalty=2.
EARLY: Table = {
    (BOS, 0): {EOS: np.log(0.5), 3: np.log(0.3), 4: np.log(0.2)},
    (3, 1): {EOS: np.log(0.5), 5: np.log(0.5)},
    (4, 1): {EOS: np.log(0.5), 5: np.log(0.5)},
    (5, 2): {6: np.log(0.99), EOS: np.log(0.01)},
    (6, 3): {EOS: 0.0},
}


def test_early_stopping_ends_the_search_once_num_beams_hypotheses_finish() -> None:
    stop, go_on = TableBackend(EARLY), TableBackend(EARLY)
    config = SearchConfig(max_length=6, num_beams=2, length_penalty=2.0, early_stopping=True)
    assert run(stop, config) == [[3]]
    assert stop.calls == 2  # stopped as soon as 2 hypotheses had finished
    # Without it the search goes on while a running beam can still beat a finished one.
    assert run(go_on, dataclasses.replace(config, early_stopping=False)) == [[3, 5, 6]]
    assert go_on.calls == 4


def test_length_normalisation_zero_length_edge_case() -> None:
    # EOS as the first token has length 1 (EOS counts), so every alpha is defined.
    assert length_normalised(-2.0, 1, 0.0) == -2.0
    assert length_normalised(-2.0, 1, 5.0) == -2.0
    assert length_normalised(-2.0, 4, 1.0) == -0.5


def test_max_length_is_honoured_without_eos() -> None:
    table = {(t, p): {3: 0.0} for t in range(8) for p in range(6)}
    assert run(TableBackend(table), SearchConfig(max_length=4)) == [[3, 3, 3, 3]]
    assert run(TableBackend(table), SearchConfig(max_length=4, num_beams=2)) == [[3, 3, 3, 3]]


def test_invalid_options_are_all_reported() -> None:
    bad = SearchConfig(max_length=0, num_beams=0, temperature=0.0, top_k=-1, top_p=1.5)
    with pytest.raises(SearchError) as info:
        run(TableBackend(TRAP), bad)
    for text in ("max_length", "num_beams", "temperature", "top_k", "top_p"):
        assert text in str(info.value)
    with pytest.raises(SearchError, match="exclusive"):
        run(TableBackend(TRAP), SearchConfig(num_beams=2, do_sample=True))


# ---------------------------------------------------------------------------- sampling
def test_top_k_one_and_tiny_temperature_are_greedy() -> None:
    rng = np.random.default_rng(0)
    logits = np.random.default_rng(1).normal(size=(4, 50)).astype(np.float32)
    for cfg in (
        SearchConfig(do_sample=True, top_k=1),
        SearchConfig(do_sample=True, temperature=1e-8),
    ):
        assert (sample_tokens(logits, cfg, rng) == logits.argmax(-1)).all()


def test_huge_temperature_is_finite_and_near_uniform() -> None:
    rng = np.random.default_rng(0)
    logits = np.array([[10.0, 0.0, -10.0, 5.0]] * 4000, dtype=np.float32)
    tokens = sample_tokens(logits, SearchConfig(do_sample=True, temperature=1e8), rng)
    counts = np.bincount(tokens, minlength=4)
    assert counts.min() > 800


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    rng = np.random.default_rng(0)
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    logits = np.log(np.tile(probs, (3000, 1))).astype(np.float32)
    tokens = sample_tokens(logits, SearchConfig(do_sample=True, top_p=0.8), rng)
    assert set(tokens.tolist()) == {0, 1}  # 0.5 + 0.3 reaches 0.8
    tokens = sample_tokens(logits, SearchConfig(do_sample=True, top_p=0.01), rng)
    assert set(tokens.tolist()) == {0}  # the most likely token is always kept


@pytest.mark.parametrize(
    "top_p,kept",
    [(0.25, {0}), (0.5, {0, 1}), (float(np.nextafter(0.5, 1.0)), {0, 1, 2}), (0.75, {0, 1, 2})],
)
def test_top_p_boundary_with_exactly_representable_probabilities(
    top_p: float, kept: set[int]
) -> None:
    """Four equal logits: every probability is exactly 2^-2, so the cumulative masses 0.25, 0.5,
    0.75 are exact and p can sit exactly on one. The smallest set whose mass is >= p stops there
    (ties keep the lower ids first); one ulp more needs the next token."""
    logits = np.zeros((2000, 4), dtype=np.float32)
    assert np.exp(log_softmax(logits[:1])).tolist() == [[0.25] * 4]  # the premise is exact
    tokens = sample_tokens(
        logits, SearchConfig(do_sample=True, top_p=top_p), np.random.default_rng(0)
    )
    assert set(tokens.tolist()) == kept


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize(
    "config", [SearchConfig(), SearchConfig(num_beams=2)], ids=["greedy", "beam"]
)
def test_non_finite_logits_are_a_search_error(bad: float, config: SearchConfig) -> None:
    # A model with NaN weights: before, greedy returned token 0 every step (an empty text) and
    # beam search raised ZeroDivisionError.
    table = {**TRAP, (3, 1): {5: bad}, (4, 1): {5: bad}}  # whichever path the search takes
    with pytest.raises(SearchError, match="NaN or infinite logits at decoder step 1"):
        run(TableBackend(table), dataclasses.replace(config, max_length=6))
    never = {**TRAP, (BOS, 0): {3: -np.inf, 4: np.log(0.4)}}  # -inf: a token that never comes
    assert run(TableBackend(never), dataclasses.replace(config, max_length=6)) == [[4, 5]]


def test_sampling_is_reproducible_with_a_seed() -> None:
    model = small_model()
    cfg = SearchConfig(max_length=10, do_sample=True, seed=7, top_k=20)
    assert translate_ids(model, SOURCES, cfg) == translate_ids(model, SOURCES, cfg)


# ---------------------------------------------------------------------------- eager model
@pytest.mark.parametrize("beams", [1, 3])
def test_cached_decoding_is_token_identical_to_full_recomputation(beams: int) -> None:
    model = small_model(seed=1)
    ids, mask = pad_batch(SOURCES, PAD)
    cfg = SearchConfig(max_length=16, num_beams=beams)
    cached = generate(
        EagerBackend(model), ids, mask, bos_id=BOS, eos_id=EOS, pad_id=PAD, config=cfg
    )
    recomputed = generate(
        RecomputeBackend(model), ids, mask, bos_id=BOS, eos_id=EOS, pad_id=PAD, config=cfg
    )
    assert cached == recomputed
    assert all(len(seq) <= 16 for seq in cached)


def test_batched_decoding_equals_one_sentence_at_a_time() -> None:
    model = small_model(seed=2)
    for beams in (1, 2):
        cfg = SearchConfig(max_length=12, num_beams=beams)
        batched = translate_ids(model, SOURCES, cfg)
        single = [translate_ids(model, [s], cfg)[0] for s in SOURCES]
        assert batched == single


def test_source_longer_than_max_src_len_is_refused() -> None:
    model = small_model()
    with pytest.raises(SearchError, match="source length 30 exceeds the model's max_src_len"):
        translate_ids(model, [token_ids(*[5] * 29, EOS)])


def test_empty_source_is_refused() -> None:
    with pytest.raises(SearchError, match="at least one token"):
        pad_batch([token_ids(5, 2), []], PAD)


def test_beam_candidates_equal_a_stable_sort_of_every_score() -> None:
    """The fast selection against its definition: argsort over all k*V scores of a sentence."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        sentences, k, vocab = (
            int(rng.integers(1, 4)),
            int(rng.integers(1, 5)),
            int(rng.integers(2, 30)),
        )
        quantum = float(rng.choice([1e-3, 0.5, 1.0]))  # coarse quanta give many exact ties
        logits = (np.round(rng.normal(0, 3, (sentences * k, vocab)) / quantum) * quantum).astype(
            np.float32
        )
        beam = np.round(rng.normal(-2, 1, sentences * k), 1)
        beam[rng.random(sentences * k) < 0.3] = -1e9  # dead beams, as at the first step
        n = 2 * k
        found = beam_candidates(logits, beam, k, n)
        scores = (log_softmax(logits) + beam[:, None]).reshape(sentences, k * vocab)
        for i in range(sentences):
            expected = np.argsort(-scores[i], kind="stable")[:n]
            lo = int(found.starts[i])
            got = found.flat[lo : min(lo + n, int(found.starts[i + 1]))]
            assert got.tolist() == expected.tolist()
            assert found.scores[lo : lo + len(got)].tolist() == scores[i, expected].tolist()


def test_log_softmax_at_is_log_softmax_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    logits = (rng.normal(0, 1, (5, 300)) * rng.choice([1e-30, 1.0, 50.0], (5, 1))).astype(
        np.float32
    )
    rows, cols = np.repeat(np.arange(5), 300), np.tile(np.arange(300), 5)
    full = log_softmax(logits)
    assert (log_softmax_at(logits, rows, cols) == full[rows, cols]).all()


class CountdownBackend:
    """Row ``r`` says tokens 3, 4, 5, ... and then EOS after ``len(source r) - 1`` of them, a
    second-best token one nat behind. It records the batch of every step, and its cache (the
    token history) proves that every row is fed its own prefix."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    @property
    def max_tgt_len(self) -> int:
        return 12

    def encode(self, src_ids: IntArray, src_mask: BoolArray) -> Memory:
        lengths = src_mask.sum(axis=1).astype(np.float32) - 1
        cross = np.broadcast_to(lengths[None, :, None, None, None], (1, len(lengths), 1, 1, 1))
        return Memory(src_mask, cross.copy(), cross.copy())

    def init_cache(self, batch: int) -> Cache:
        return (np.full((1, batch, self.max_tgt_len), -1, dtype=np.int64),)

    def decode_step(
        self, tokens: IntArray, pos: int, memory: Memory, cache: Cache
    ) -> tuple[FloatArray, Cache]:
        self.batches.append(len(tokens))
        history = cache[0].copy()
        history[0, :, pos] = tokens
        logits = np.full((len(tokens), 16), -20.0, dtype=np.float32)
        for row in range(len(tokens)):
            said = [t for t in history[0, row, 1 : pos + 1] if t >= 0]
            stop = len(said) >= int(memory.cross_k[0, row, 0, 0, 0])
            best = EOS if stop else 3 + len(said)
            logits[row, best], logits[row, 15] = 0.0, -1.0
        return logits, (history,)


@pytest.mark.parametrize("beams", [1, 3])
def test_rows_that_finished_leave_the_batch(beams: int) -> None:
    # 5, 1 and 3 tokens to say
    sources = [token_ids(5, 5, 5, 5, 5, EOS), token_ids(6, EOS), token_ids(7, 7, 7, EOS)]
    config = SearchConfig(num_beams=beams)
    backend = CountdownBackend()
    ids, mask = pad_batch(sources, PAD)
    out = generate(backend, ids, mask, bos_id=BOS, eos_id=EOS, pad_id=PAD, config=config)
    assert out == [[3, 4, 5, 6, 7], [3], [3, 4, 5]]
    alone = [
        generate(CountdownBackend(), *pad_batch([s], PAD), bos_id=BOS, eos_id=EOS, pad_id=PAD,
                 config=config)[0]
        for s in sources
    ]  # fmt: skip
    assert out == alone
    # Greedy: a row leaves once it said EOS. Beam search: a sentence leaves once its search is
    # done, which the other beams' finished hypotheses decide one step later or so; either way,
    # later steps decode fewer rows than the first and never more.
    assert backend.batches[0] == 3 * beams
    assert backend.batches == sorted(backend.batches, reverse=True)
    assert backend.batches[-1] == beams  # only the longest sentence is left at the end
    if beams == 1:
        assert backend.batches == [3, 3, 2, 2, 1, 1]


# ---------------------------------------------------------------------------- n-best and streaming
def nbest(backend: TableBackend, config: SearchConfig, n: int) -> list[list[Hypothesis]]:
    ids, mask = pad_batch([[TokenId(5), EOS]], PAD)
    return generate_nbest(
        backend, ids, mask, bos_id=BOS, eos_id=EOS, pad_id=PAD, config=config, num_hypotheses=n
    )


def test_nbest_scores_come_from_the_search_best_first() -> None:
    config = SearchConfig(max_length=6, num_beams=3, length_penalty=0.0)
    (hyps,) = nbest(TableBackend(TRAP), config, 3)
    assert [h.tokens for h in hyps] == [[4, 5], [3, 5], [3, 6]]
    # length_penalty 0: the scores are the exact log-probabilities of the token paths + EOS.
    want = [np.log(0.4 * 0.99), np.log(0.6 * 0.34), np.log(0.6 * 0.33)]
    assert [h.score for h in hyps] == pytest.approx(want, abs=1e-6)
    assert hyps[0].tokens == run(TableBackend(TRAP), config)[0]  # plain beam output
    # Greedy scores the same way: its one hypothesis is 3, 5, EOS.
    (greedy,) = nbest(TableBackend(TRAP), SearchConfig(max_length=6, length_penalty=0.0), 1)
    assert [h.tokens for h in greedy] == [[3, 5]]
    assert greedy[0].score == pytest.approx(np.log(0.6 * 0.34), abs=1e-6)
    # With length_penalty 1 the score is per token, EOS counted.
    (normed,) = nbest(TableBackend(TRAP), SearchConfig(max_length=6, num_beams=2), 1)
    assert normed[0].score == pytest.approx(np.log(0.4 * 0.99) / 3, abs=1e-6)


def test_nbest_is_bounded_by_num_beams() -> None:
    with pytest.raises(SearchError, match=r"num_hypotheses must be in \[1, num_beams = 2\], got 3"):
        nbest(TableBackend(TRAP), SearchConfig(num_beams=2), 3)
    with pytest.raises(SearchError, match="got 2"):
        nbest(TableBackend(TRAP), SearchConfig(), 2)


def test_nbest_on_the_eager_model_is_distinct_and_decreasing() -> None:
    model = small_model(seed=3)
    ids, mask = pad_batch(SOURCES, PAD)
    cfg = SearchConfig(max_length=12, num_beams=4)
    out = generate_nbest(
        EagerBackend(model), ids, mask, bos_id=BOS, eos_id=EOS, pad_id=PAD, config=cfg,
        num_hypotheses=4,
    )  # fmt: skip
    assert [hyps[0].tokens for hyps in out] == translate_ids(model, SOURCES, cfg)
    for hyps in out:
        scores = [h.score for h in hyps]
        assert len(hyps) == 4 and scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 4


@pytest.mark.parametrize("sample", [False, True])
def test_streamed_steps_rebuild_the_plain_output(sample: bool) -> None:
    model = small_model(seed=4)
    ids, mask = pad_batch(SOURCES, PAD)
    cfg = SearchConfig(max_length=12, do_sample=sample, seed=5, top_k=30)
    kw: dict[str, Any] = {"bos_id": BOS, "eos_id": EOS, "pad_id": PAD, "config": cfg}
    rows: list[list[int]] = [[] for _ in SOURCES]
    ended = [False] * len(SOURCES)
    for step in generate_stream(EagerBackend(model), ids, mask, **kw):
        for row in np.flatnonzero(step.live):
            assert not ended[row]
            if step.tokens[row] == EOS:
                ended[row] = True
            else:
                rows[row].append(int(step.tokens[row]))
    assert rows == generate(EagerBackend(model), ids, mask, **kw)
    with pytest.raises(SearchError, match="streaming needs greedy search or sampling"):
        generate_stream(
            EagerBackend(model), ids, mask, **{**kw, "config": SearchConfig(num_beams=2)}
        )
