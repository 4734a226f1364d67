"""Decoding algorithms (greedy, sampling, beam search), written once over a backend interface.

PyTorch-free (numpy, and :data:`~lingolite.tokenizer.TokenId` for the ids it takes and returns):
eager PyTorch, ONNX Runtime and ExecuTorch are backends that implement :class:`Seq2SeqBackend`;
the search code here never knows which one it drives. A runtime with its own search in native
code (CTranslate2) is a :class:`SentenceBackend` instead: it takes the same :class:`SearchConfig`,
and :func:`decode_batch` drives either kind.

The cache rule, as every backend must honour it (the model defines it in
``lingolite.model.write_cache``; this module is the one place a runtime applies it):

1. ``encode`` runs once per batch and returns :class:`Memory`; its arrays never change afterwards.
2. ``init_cache(b)`` returns the start state (zeros for a KV cache).
3. Step ``i`` feeds one token per row at position ``pos = i`` (BOS at ``pos = 0``) together with the
   cache returned by step ``i - 1``; the backend returns the logits for position ``i + 1`` and the
   new cache, which replaces the old one.
4. Beam search reorders rows by taking cache and memory rows along their batch axis
   (:data:`CACHE_BATCH_AXIS` for every cache array, axis 0 of ``src_mask``, axis 1 of the cross
   K/V): a row's cache always describes exactly the prefix of the hypothesis in that row. Rows
   whose search has ended (greedy: the row said EOS; beam: the sentence is done) leave the batch
   by the same take, so the next steps decode only rows still searching (the backend sees a
   smaller batch; each sentence gets the tokens it would get alone, up to the batch-dependent
   rounding of a runtime that quantizes activations per tensor, as ONNX Runtime int8 does).
5. At most ``max_tgt_len`` tokens are fed (positions ``0 .. max_tgt_len - 1``).

A backend may keep a cache that grows with the step instead (the growing-cache rule of
``lingolite.model``, ``LingoLite.decode_step_grow``; the ONNX ``decoder_grow`` graph):
``init_cache`` returns arrays with 0 positions and step ``i`` returns them with ``i + 1``. Rules 1
to 5 hold unchanged, and since only the positions fed so far exist, reordering (rule 4) copies
the live length only. Beam search skips the reorder when every row keeps its own cache.

Results: :func:`generate` returns the best token list per row; :func:`generate_nbest` the same
search's ``num_hypotheses`` best :class:`Hypothesis` per row, with their scores (beam search keeps
``num_beams`` finished hypotheses, so ``num_hypotheses <= num_beams``); :func:`generate_stream`
runs the greedy/sampling loop one step at a time and yields every :class:`Step` as it is decoded
(the other two consume the same loop).

Stopping early: :func:`generate` takes ``should_stop``, a callable polled before the encoder and
before every decoder step; when it returns True the search raises :class:`SearchCancelled`. A
caller with a deadline (the server) uses it so that a timed-out request stops consuming its worker
after at most one more step, whatever the backend.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from lingolite.config import ModelConfig
from lingolite.signatures import CacheGeometry
from lingolite.tokenizer import TokenId

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float32]
TokenIds = list[TokenId]
Cache = tuple[npt.NDArray[np.generic], ...]

# Every cache array is laid out (layers, batch, ...): rows are reordered along axis 1.
CACHE_BATCH_AXIS = 1


def zero_cache(model: ModelConfig | Mapping[str, Any], batch: int) -> Cache:
    """The empty self-attention cache of a model for ``batch`` rows: zeros (K, V), each
    :meth:`CacheGeometry.self_shape` ``(L, b, h_kv, T, d)`` float32, the layout of
    ``LingoLite.empty_cache``; ``model`` may be a manifest's ``model`` dict."""
    shape = CacheGeometry.of(model).self_shape(batch)
    return np.zeros(shape, dtype=np.float32), np.zeros(shape, dtype=np.float32)


class Memory(NamedTuple):
    """What the encoder hands the decoder: src_mask ``(b, s)``; cross_k/v ``(L, b, h_kv, s, d)``."""

    src_mask: BoolArray
    cross_k: FloatArray
    cross_v: FloatArray

    def take(self, rows: IntArray) -> Memory:
        # np.take keeps the arrays C-contiguous (``a[:, rows]`` would not), which runtimes need.
        return Memory(
            self.src_mask[rows],
            np.take(self.cross_k, rows, axis=1),
            np.take(self.cross_v, rows, axis=1),
        )


class Seq2SeqBackend(Protocol):
    """What a runtime implements so that the search code can drive it."""

    @property
    def max_tgt_len(self) -> int: ...

    def encode(self, src_ids: IntArray, src_mask: BoolArray) -> Memory: ...

    def init_cache(self, batch: int) -> Cache: ...

    def decode_step(
        self, tokens: IntArray, pos: int, memory: Memory, cache: Cache
    ) -> tuple[FloatArray, Cache]:
        """tokens ``(b,)`` at position ``pos`` -> logits ``(b, V)`` float32 and the new cache."""
        ...


class SearchError(ValueError):
    """Invalid decoding options (the message names the option and its value), or logits that are
    NaN or +inf (a model with non-finite weights or an overflow)."""


class SearchCancelled(Exception):
    """The caller's ``should_stop`` asked the search to stop (e.g. its deadline passed)."""


StopCheck = Callable[[], bool]


class Hypothesis(NamedTuple):
    """One output of the search: its tokens (without BOS and EOS) and its score, the model's
    log-probability of the tokens (EOS included when it was produced) divided by
    ``length ** length_penalty`` (:func:`length_normalised`), the quantity beam search ranks by;
    NaN from a :class:`SentenceBackend`, which reports no scores."""

    tokens: TokenIds
    score: float


class Step(NamedTuple):
    """One decoder step of greedy search or sampling, for a batch of ``b`` rows.

    ``tokens`` ``(b,)``: the token chosen in every row; ``logprobs`` ``(b,)``: its log-probability
    under the model (temperature 1); ``live`` ``(b,)``: the rows that had not ended before this
    step. A live row whose token is EOS ends here; the others append their token. A row that
    ended earlier is no longer decoded: its token is ``pad_id`` and its log-probability 0."""

    tokens: IntArray
    logprobs: npt.NDArray[np.float64]
    live: BoolArray


def deadline_check(deadline: float) -> StopCheck:
    """A ``should_stop`` that turns True once ``time.monotonic()`` reaches ``deadline``."""
    return lambda: time.monotonic() >= deadline


def _check_stop(should_stop: StopCheck | None, pos: int) -> None:
    if should_stop is not None and should_stop():
        raise SearchCancelled(f"search stopped by its caller before step {pos}")


@dataclass(frozen=True)
class SearchConfig:
    """Decoding options. ``num_beams > 1`` selects beam search, ``do_sample`` sampling.

    >>> SearchConfig(num_beams=4, max_length=32).validate(max_tgt_len=128)
    >>> SearchConfig(num_beams=0, top_p=1.5).validate(max_tgt_len=128)
    Traceback (most recent call last):
    ...
    lingolite.search.SearchError: invalid search config: num_beams must be >= 1, got 0;
    top_p must be in (0, 1], got 1.5
    """

    # Tokens to generate at most (EOS excluded); None means the backend's max_tgt_len.
    max_length: int | None = None
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool = False
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None

    def validate(self, max_tgt_len: int) -> None:
        errors = []
        if self.max_length is not None and not 1 <= self.max_length <= max_tgt_len:
            errors.append(f"max_length must be in [1, {max_tgt_len}], got {self.max_length}")
        if self.num_beams < 1:
            errors.append(f"num_beams must be >= 1, got {self.num_beams}")
        if self.do_sample and self.num_beams > 1:
            errors.append("sampling and beam search are exclusive (num_beams > 1 with do_sample)")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            errors.append(f"temperature must be finite and > 0, got {self.temperature}")
        if self.top_k < 0:
            errors.append(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            errors.append(f"top_p must be in (0, 1], got {self.top_p}")
        if not math.isfinite(self.length_penalty):
            errors.append(f"length_penalty must be finite, got {self.length_penalty}")
        if errors:
            raise SearchError("invalid search config: " + "; ".join(errors))


def _check_logits(logits: npt.NDArray[np.floating], pos: int) -> None:
    """Refuse NaN and +inf logits, which would make greedy search pick token 0 every step and
    beam search rank NaN scores; -inf (a token that can never come) is fine."""
    if not (logits < np.inf).all():
        raise SearchError(
            f"the model returned NaN or infinite logits at decoder step {pos}; "
            "are its weights finite?"
        )


def log_softmax(logits: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Row-wise log-softmax in float64: ``x - log(sum(exp(x)))`` with ``x = logits - max``, the
    sum pairwise (numpy's), the arithmetic the Java and JS ports repeat bit for bit."""
    x = logits.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))  # type: ignore[no-any-return]


def log_softmax_at(
    logits: npt.NDArray[np.floating], rows: IntArray, cols: IntArray
) -> npt.NDArray[np.float64]:
    """``log_softmax(logits)[rows, cols]``, bit for bit, without building the normalised array.

    Each row's two constants (its max and ``log(sum(exp(x)))``) come from the same operations on
    the same values as in :func:`log_softmax`, and each picked entry is ``(x - max) - lse`` as
    there; only the (b, V) float64 result is never written. The searches call this once a step.

    >>> logits = np.array([[0.5, 2.0, -1.0], [3.0, 3.0, 0.0]], dtype=np.float32)
    >>> picked = log_softmax_at(logits, np.array([0, 1, 1]), np.array([1, 0, 2]))
    >>> bool((picked == log_softmax(logits)[[0, 1, 1], [1, 0, 2]]).all())
    True
    """
    top = logits.max(axis=-1).astype(np.float64)  # the float64 max, exactly
    x = np.subtract(logits, top[:, None], dtype=np.float64)  # one pass: cast, then subtract
    np.exp(x, out=x)
    lse = np.log(x.sum(axis=-1))
    picked = logits[rows, cols].astype(np.float64) - top[rows]
    return picked - lse[rows]  # type: ignore[no-any-return]


def check_source(src_ids: IntArray, src_mask: BoolArray, max_src_len: int) -> None:
    """Reject sources a backend cannot encode, naming the offending shape (every backend's
    ``encode`` calls this first)."""
    if src_ids.ndim != 2 or src_ids.shape != src_mask.shape:
        raise SearchError(
            f"src_ids and src_mask must both be (batch, length); got {src_ids.shape} and "
            f"{src_mask.shape}"
        )
    if src_ids.shape[1] > max_src_len:
        raise SearchError(
            f"source length {src_ids.shape[1]} exceeds the model's max_src_len ({max_src_len})"
        )


def pad_batch(
    sequences: Sequence[Sequence[TokenId]], pad_id: TokenId
) -> tuple[IntArray, BoolArray]:
    """Right-pad id lists into ``(b, s)`` ids and a boolean mask (True on real tokens)."""
    if not sequences or any(len(s) == 0 for s in sequences):
        raise SearchError("every source sequence needs at least one token")
    width = max(len(s) for s in sequences)
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.bool_)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = True
    return ids, mask


def generate(
    backend: Seq2SeqBackend,
    src_ids: IntArray,
    src_mask: BoolArray,
    *,
    bos_id: TokenId,
    eos_id: TokenId,
    pad_id: TokenId,
    config: SearchConfig | None = None,
    should_stop: StopCheck | None = None,
) -> list[TokenIds]:
    """Translate a right-padded batch; returns one token list per row, without BOS and EOS.

    ``should_stop`` is polled before the encoder and before every decoder step; once it returns
    True, :class:`SearchCancelled` is raised (see the module docstring).

    Any :class:`Seq2SeqBackend` works; here the eager model of the shipped checkpoint:

    >>> from lingolite.checkpoint import load_pretrained
    >>> from lingolite.generate import EagerBackend
    >>> from lingolite.tokenizer import Tokenizer
    >>> folder = "pretrained/lingolite-tiny-multi30k"
    >>> model, tok = load_pretrained(folder), Tokenizer.from_pretrained(folder)
    >>> src_ids, src_mask = pad_batch(
    ...     [tok.encode_source(text, "fr") for text in ("Two dogs play in the snow.", "A man.")],
    ...     tok.pad_id)
    >>> src_mask.astype(int)  # right-padded
    array([[1, 1, 1, 1, 1, 1, 1, 1, 1],
           [1, 1, 1, 1, 1, 0, 0, 0, 0]])
    >>> config = SearchConfig(num_beams=2, max_length=16)
    >>> out = generate(EagerBackend(model), src_ids, src_mask, bos_id=tok.bos_id,
    ...                eos_id=tok.eos_id, pad_id=tok.pad_id, config=config)
    >>> [tok.decode(ids) for ids in out]
    ['Deux chiens jouent dans la neige.', '...']
    """
    config = _resolve(config, backend.max_tgt_len)
    if config.num_beams == 1:  # no scores wanted: the loop skips the log-probabilities
        out: list[TokenIds] = [[] for _ in range(src_ids.shape[0])]
        steps = _steps(
            backend, src_ids, src_mask, bos_id, eos_id, pad_id, config, should_stop,
            logprobs=False,
        )  # fmt: skip
        for step in steps:
            tokens = as_token_ids(step.tokens)
            for row in np.flatnonzero(step.live & (step.tokens != eos_id)).tolist():
                out[row].append(tokens[row])
        return out
    nbest = generate_nbest(
        backend, src_ids, src_mask, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id, config=config,
        should_stop=should_stop,
    )  # fmt: skip
    return [hyps[0].tokens for hyps in nbest]


def _resolve(config: SearchConfig | None, max_tgt_len: int) -> SearchConfig:
    config = config or SearchConfig()
    config.validate(max_tgt_len)
    if config.max_length is None:
        config = dataclasses.replace(config, max_length=max_tgt_len)
    return config


def generate_nbest(
    backend: Seq2SeqBackend,
    src_ids: IntArray,
    src_mask: BoolArray,
    *,
    bos_id: TokenId,
    eos_id: TokenId,
    pad_id: TokenId,
    config: SearchConfig | None = None,
    num_hypotheses: int = 1,
    should_stop: StopCheck | None = None,
) -> list[list[Hypothesis]]:
    """:func:`generate`, keeping the ``num_hypotheses`` best hypotheses of every row, best first,
    with their scores (see :class:`Hypothesis`). Beam search yields up to ``num_beams``
    distinct hypotheses; greedy search and sampling yield one (``num_hypotheses`` must be 1)."""
    config = _resolve(config, backend.max_tgt_len)
    if not 1 <= num_hypotheses <= config.num_beams:
        raise SearchError(
            f"num_hypotheses must be in [1, num_beams = {config.num_beams}], got {num_hypotheses}"
        )
    if config.num_beams > 1:
        _check_stop(should_stop, 0)
        memory = backend.encode(src_ids, src_mask)
        finished = _beam_search(backend, memory, bos_id, eos_id, config, should_stop)
        return [[Hypothesis(t, s) for s, t in f.items[:num_hypotheses]] for f in finished]
    batch = src_ids.shape[0]
    out: list[TokenIds] = [[] for _ in range(batch)]
    logp = np.zeros((batch,), dtype=np.float64)
    ended = np.zeros((batch,), dtype=np.bool_)
    for step in _steps(backend, src_ids, src_mask, bos_id, eos_id, pad_id, config, should_stop):
        tokens = as_token_ids(step.tokens)
        for row in np.flatnonzero(step.live):
            logp[row] += step.logprobs[row]
            if tokens[row] == eos_id:
                ended[row] = True
            else:
                out[row].append(tokens[row])
    return [
        [
            Hypothesis(
                out[r],
                length_normalised(logp[r], len(out[r]) + int(ended[r]), config.length_penalty),
            )
        ]
        for r in range(batch)
    ]


def generate_stream(
    backend: Seq2SeqBackend,
    src_ids: IntArray,
    src_mask: BoolArray,
    *,
    bos_id: TokenId,
    eos_id: TokenId,
    pad_id: TokenId,
    config: SearchConfig | None = None,
    should_stop: StopCheck | None = None,
) -> Iterator[Step]:
    """Greedy search or sampling, one :class:`Step` at a time, as each is decoded: the loop
    behind :func:`generate` (which consumes it whole), so the tokens are the same. Beam search
    cannot stream (a beam's prefix may still be replaced): ``num_beams > 1`` is refused."""
    config = _resolve(config, backend.max_tgt_len)
    if config.num_beams > 1:
        raise SearchError(
            f"streaming needs greedy search or sampling, got num_beams {config.num_beams}"
        )
    return _steps(backend, src_ids, src_mask, bos_id, eos_id, pad_id, config, should_stop)


@runtime_checkable
class SentenceBackend(Protocol):
    """A runtime that runs the whole search itself (CTranslate2): source id lists in, output id
    lists (without BOS and EOS) out, with the options of a :class:`SearchConfig` it supports;
    it raises :class:`SearchError` naming any option it cannot honour."""

    @property
    def max_tgt_len(self) -> int: ...

    def translate_ids(
        self, sources: Sequence[TokenIds], config: SearchConfig
    ) -> list[TokenIds]: ...


def decode_batch(
    backend: Seq2SeqBackend | SentenceBackend,
    sources: Sequence[TokenIds],
    *,
    bos_id: TokenId,
    eos_id: TokenId,
    pad_id: TokenId,
    config: SearchConfig | None = None,
    should_stop: StopCheck | None = None,
) -> list[TokenIds]:
    """Translate source id lists (each ``[<2xx>] + pieces + [eos]``) with either kind of backend:
    :func:`generate` over a :class:`Seq2SeqBackend`, or the backend's own search.

    A :class:`SentenceBackend` runs its search in native code that cannot be interrupted, so
    ``should_stop`` is polled once before it starts (and after every step for the others)."""
    if isinstance(backend, SentenceBackend):
        nbest = decode_batch_nbest(
            backend, sources, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id, config=config,
            should_stop=should_stop,
        )  # fmt: skip
        return [hyps[0].tokens for hyps in nbest]
    src_ids, src_mask = pad_batch(sources, pad_id)
    return generate(
        backend, src_ids, src_mask, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id, config=config,
        should_stop=should_stop,
    )  # fmt: skip


def decode_batch_nbest(
    backend: Seq2SeqBackend | SentenceBackend,
    sources: Sequence[TokenIds],
    *,
    bos_id: TokenId,
    eos_id: TokenId,
    pad_id: TokenId,
    config: SearchConfig | None = None,
    num_hypotheses: int = 1,
    should_stop: StopCheck | None = None,
) -> list[list[Hypothesis]]:
    """:func:`decode_batch` with the ``num_hypotheses`` best hypotheses per source and their
    scores (:func:`generate_nbest`). A :class:`SentenceBackend` gives one hypothesis, scored NaN."""
    config = config or SearchConfig()
    if isinstance(backend, SentenceBackend):
        config.validate(backend.max_tgt_len)
        if num_hypotheses != 1:
            raise SearchError(
                f"num_hypotheses {num_hypotheses} needs the search code's beam search; "
                f"{type(backend).__name__} returns one hypothesis"
            )
        _check_stop(should_stop, 0)
        return [[Hypothesis(ids, math.nan)] for ids in backend.translate_ids(sources, config)]
    src_ids, src_mask = pad_batch(sources, pad_id)
    return generate_nbest(
        backend, src_ids, src_mask, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id, config=config,
        num_hypotheses=num_hypotheses, should_stop=should_stop,
    )  # fmt: skip


def _max_length(config: SearchConfig) -> int:
    assert config.max_length is not None, "generate() resolves max_length before searching"
    return config.max_length


def _steps(
    backend: Seq2SeqBackend,
    src_ids: IntArray,
    src_mask: BoolArray,
    bos_id: TokenId,
    eos_id: TokenId,
    pad_id: TokenId,
    config: SearchConfig,
    should_stop: StopCheck | None = None,
    *,
    logprobs: bool = True,
) -> Iterator[Step]:
    """The greedy/sampling loop (``config`` resolved by :func:`_resolve`); ends once every row
    has produced EOS or ``max_length`` steps ran. With ``logprobs=False`` the steps' log-
    probabilities are NaN (not computed: :func:`generate` needs the tokens only)."""
    _check_stop(should_stop, 0)
    memory = backend.encode(src_ids, src_mask)
    rng = np.random.default_rng(config.seed) if config.do_sample else None
    batch = memory.src_mask.shape[0]
    cache = backend.init_cache(batch)
    tokens = np.full((batch,), bos_id, dtype=np.int64)
    rows = np.arange(batch)  # the caller's row of each row still decoding
    for pos in range(_max_length(config)):
        _check_stop(should_stop, pos)
        logits, cache = backend.decode_step(tokens, pos, memory, cache)
        _check_logits(logits, pos)
        if rng is None:
            nxt = logits.argmax(axis=-1).astype(np.int64)
        else:
            nxt = sample_tokens(logits, config, rng)
        if logprobs:
            chosen = log_softmax_at(logits, np.arange(len(rows)), nxt)
        else:
            chosen = np.full((len(rows),), np.nan)
        step = Step(
            np.full((batch,), pad_id, dtype=np.int64), np.zeros((batch,)), np.zeros((batch,), bool)
        )
        step.tokens[rows], step.logprobs[rows], step.live[rows] = nxt, chosen, True
        yield step
        going = np.flatnonzero(nxt != eos_id)
        if going.size == 0:
            break
        if going.size < len(rows):  # rows that ended leave the batch (rule 4: a row take)
            memory, cache = memory.take(going), take_rows(cache, going)
            rows = rows[going]
        tokens = nxt[going]


def sample_tokens(
    logits: npt.NDArray[np.floating], config: SearchConfig, rng: np.random.Generator
) -> IntArray:
    """Sample one token per row with temperature, top-k and top-p (nucleus) filtering.

    top-p keeps the smallest set of most likely tokens whose cumulative probability is >= p; the
    most likely token is always kept. Work is in float64 after subtracting the row max, so
    temperatures from 1e-8 to 1e8 stay finite (tiny ones approach greedy, huge ones uniform).

    >>> logits = np.log(np.array([[0.5, 0.3, 0.2]]))
    >>> rng = np.random.default_rng(0)
    >>> config = SearchConfig(do_sample=True, top_p=0.5)  # 0.5 alone reaches p
    >>> {int(sample_tokens(logits, config, rng)[0]) for _ in range(20)}
    {0}
    """
    logp = log_softmax(logits.astype(np.float64) / config.temperature)
    vocab = logp.shape[-1]
    order = np.argsort(-logp, axis=-1, kind="stable")  # most likely first
    sorted_p = np.exp(np.take_along_axis(logp, order, axis=-1))
    keep = np.ones_like(sorted_p, dtype=np.bool_)
    if 0 < config.top_k < vocab:
        keep[:, config.top_k :] = False
    if config.top_p < 1.0:
        mass_before = np.cumsum(sorted_p, axis=-1) - sorted_p  # exclusive cumulative sum
        keep &= mass_before < config.top_p
    keep[:, 0] = True
    probs = np.where(keep, sorted_p, 0.0)
    probs /= probs.sum(axis=-1, keepdims=True)
    choice = np.array([rng.choice(vocab, p=row) for row in probs], dtype=np.int64)
    return np.take_along_axis(order, choice[:, None], axis=-1)[:, 0].astype(np.int64)


def as_token_ids(tokens: IntArray) -> list[TokenId]:
    """The ids of a ``(b,)`` token array as a list of :data:`~lingolite.tokenizer.TokenId`: the
    one place where decoded ids leave numpy (one ``tolist`` per step, no per-token work)."""
    ids: list[TokenId] = tokens.tolist()
    return ids


def take_rows(cache: Cache, rows: IntArray) -> Cache:
    """The cache of ``rows`` (rule 4: a take along :data:`CACHE_BATCH_AXIS`, in that order)."""
    return tuple(np.take(a, rows, axis=CACHE_BATCH_AXIS) for a in cache)


class Candidates(NamedTuple):
    """Every sentence's best continuations, best first: entries ``starts[i]:starts[i + 1]`` belong
    to sentence ``i`` (``flat = beam * V + token`` within it, ``scores`` its beam score plus the
    token's log-probability)."""

    starts: IntArray
    flat: IntArray
    scores: npt.NDArray[np.float64]


def beam_candidates(
    logits: npt.NDArray[np.floating], beam_scores: npt.NDArray[np.float64], k: int, n: int
) -> Candidates:
    """The best continuations of each sentence whose ``k`` beams are rows ``i*k .. i*k+k-1`` of
    ``logits`` ``(b*k, V)``, best first: a sentence's first ``n`` entries are exactly
    ``np.argsort(-scores, kind="stable")[:n]`` over its ``k*V`` scores ``log_softmax(logits) +
    beam_scores`` (ties to the lower flat index, the order the Java and JS ports mirror), found
    without normalising or sorting every entry (entries after the first ``n`` may follow).

    Adding a row's constants keeps the order within the row, so the sentence's ``n`` best are
    among the ``n`` largest logits of each of its rows. Entries that round to a tie with the
    ``n``-th largest are kept too (the margin), so float64 rounding cannot push one out; exact
    scores are then computed for the few kept entries only (:func:`log_softmax_at`).

    >>> logits = np.log(np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]], dtype=np.float32))
    >>> c = beam_candidates(logits, np.array([0.0, -1.0]), k=2, n=3)
    >>> c.flat[:3].tolist(), [round(float(x), 3) for x in c.scores[:3]]
    ([0, 1, 5], [-0.693, -1.204, -1.223])
    """
    rows, vocab = logits.shape
    if vocab > n:
        nth = np.partition(logits, vocab - n, axis=-1)[:, vocab - n].astype(np.float64)
        margin = 1e-9 * (np.abs(nth) + np.abs(logits.max(axis=-1)) + 16.0)
        # Rounded down to the logits' dtype, so the comparison needs no float64 copy of them.
        low = (nth - margin).astype(logits.dtype)
        low = np.nextafter(low, np.array(-np.inf, dtype=logits.dtype))
        row, col = np.divmod(np.flatnonzero(logits >= low[:, None]), vocab)
    else:
        row, col = np.divmod(np.arange(rows * vocab), vocab)
    scores = log_softmax_at(logits, row, col) + beam_scores[row]
    sentence, flat = np.divmod(row, k)
    flat = flat * vocab + col
    order = np.lexsort((flat, -scores, sentence))
    sentence, flat, scores = sentence[order], flat[order], scores[order]
    starts = np.searchsorted(sentence, np.arange(rows // k + 1))
    return Candidates(starts.astype(np.int64), flat.astype(np.int64), scores)


def length_normalised(score: float, length: int, alpha: float) -> float:
    """``score / length ** alpha``.

    ``length`` counts generated tokens including EOS, so a hypothesis that ends at once (EOS as its
    first token) has length 1, never 0: the division is defined for every alpha, and alpha = 0
    ranks by raw log-probability.
    """
    return float(score / (length**alpha))


@dataclass
class _Hypotheses:
    """Finished hypotheses of one sentence: at most ``num_beams``, best first."""

    num_beams: int
    items: list[tuple[float, TokenIds]]

    def add(self, score: float, tokens: TokenIds) -> None:
        self.items.append((score, tokens))
        self.items.sort(key=lambda item: -item[0])
        del self.items[self.num_beams :]

    def is_done(self, best_running: float, length: int, config: SearchConfig) -> bool:
        if len(self.items) < self.num_beams:
            return False
        if config.early_stopping:
            return True
        # The usual heuristic (HF's early_stopping=False): stop once the best running beam,
        # normalised at its current length, cannot beat the worst kept finished hypothesis.
        bound = length_normalised(best_running, length, config.length_penalty)
        return self.items[-1][0] >= bound


def _beam_search(
    backend: Seq2SeqBackend,
    memory: Memory,
    bos_id: TokenId,
    eos_id: TokenId,
    config: SearchConfig,
    should_stop: StopCheck | None = None,
) -> list[_Hypotheses]:
    """Every sentence's ``num_beams`` best finished hypotheses, best first.

    Row ``i*k + j`` is beam ``j`` of the ``i``-th sentence still searching (``sentences[i]``): a
    sentence whose search is done leaves the batch, its rows dropped in the same take that
    reorders the beams (rule 4), so later steps decode only sentences still searching."""
    batch, k = memory.src_mask.shape[0], config.num_beams
    memory = memory.take(np.repeat(np.arange(batch), k))
    cache = backend.init_cache(batch * k)
    tokens = np.full((batch * k,), bos_id, dtype=np.int64)
    # Only the first beam of each sentence is live at the start: the others are copies of it.
    beam_scores = np.tile(np.array([0.0] + [-1e9] * (k - 1)), batch)
    prefixes: list[TokenIds] = [[] for _ in range(batch * k)]
    finished = [_Hypotheses(k, []) for _ in range(batch)]
    sentences = np.arange(batch)

    for pos in range(_max_length(config)):
        _check_stop(should_stop, pos)
        logits, cache = backend.decode_step(tokens, pos, memory, cache)
        _check_logits(logits, pos)
        vocab = logits.shape[-1]
        found = beam_candidates(logits, beam_scores, k, 2 * k)
        length = pos + 1  # generated tokens including the one chosen now
        keep: list[int] = []  # positions in ``sentences`` of those still searching
        next_rows: list[int] = []
        next_tokens: TokenIds = []
        next_scores: list[float] = []
        next_prefixes: list[TokenIds] = []
        for i, r in enumerate(sentences.tolist()):
            slots: list[tuple[int, TokenId, float, TokenIds]] = []
            lo = int(found.starts[i])
            hi = min(int(found.starts[i + 1]), lo + 2 * k)
            beams, cand = np.divmod(found.flat[lo:hi], vocab)
            picked = zip(
                beams.tolist(), as_token_ids(cand), found.scores[lo:hi].tolist(), strict=True
            )
            for beam, token, score in picked:
                src_row = i * k + beam
                if token == eos_id:
                    normed = length_normalised(score, length, config.length_penalty)
                    finished[r].add(normed, prefixes[src_row])
                    continue
                slots.append((src_row, token, score, [*prefixes[src_row], token]))
                if len(slots) == k:
                    break
            best_running = slots[0][2] if slots else -1e9
            if finished[r].is_done(best_running, length, config):
                continue
            keep.append(i)
            slots += [(i * k, eos_id, -1e9, [])] * (k - len(slots))  # only when V < 2
            for src_row, token, score, prefix in slots:
                next_rows.append(src_row)
                next_tokens.append(token)
                next_scores.append(score)
                next_prefixes.append(prefix)
        if not keep:
            break
        if len(keep) < len(sentences):
            sentences = sentences[keep]
            memory = memory.take(np.repeat(np.array(keep) * k, k))
        reorder = np.array(next_rows, dtype=np.int64)
        if not np.array_equal(reorder, np.arange(len(beam_scores))):  # else rows keep their cache
            cache = take_rows(cache, reorder)
        tokens = np.array(next_tokens, dtype=np.int64)
        beam_scores = np.array(next_scores)
        prefixes = next_prefixes

    else:  # ran out of length: running beams compete with finished ones
        for i, r in enumerate(sentences.tolist()):
            for j in range(k):
                score, prefix = float(beam_scores[i * k + j]), prefixes[i * k + j]
                finished[r].add(
                    length_normalised(score, len(prefix), config.length_penalty), prefix
                )
    return finished
