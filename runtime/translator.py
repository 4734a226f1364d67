"""Text in, text out over any runtime backend: tokenizer + backend + the shared search code.

PyTorch-free. A :class:`Translator` is built from an artifact folder with
:meth:`Translator.from_artifacts` (or from a tokenizer and any
:class:`~lingolite.search.Seq2SeqBackend`); backends are looked up by name in :data:`BACKENDS`,
a dict of factories ``(manifest, precision, threads) -> backend`` whose modules are imported only
when used (``runtime.onnx_backend.OnnxBackend``, ``runtime.executorch_backend.ExecuTorchBackend``,
``runtime.ctranslate2_backend.CT2Backend``, which runs its own search: a
:class:`~lingolite.search.SentenceBackend`).
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, TypedDict, Unpack, cast

from lingolite.search import (
    SearchConfig,
    SentenceBackend,
    Seq2SeqBackend,
    StopCheck,
    TokenIds,
    as_token_ids,
    decode_batch_nbest,
    generate_stream,
    pad_batch,
)
from lingolite.segment import Segment, join, segment, split_long
from lingolite.tokenizers import TextTokenizer, load_tokenizer
from runtime.manifest import ArtifactError, Manifest, load_manifest

log = logging.getLogger(__name__)

# The search code's backend, or a runtime that runs its own search (CTranslate2).
Backend = Seq2SeqBackend | SentenceBackend
# (manifest, precision, threads) -> backend; threads None means the runtime's default.
BackendFactory = Callable[[Manifest, str, int | None], Backend]


# Beam search holds num_beams copies of every cache row: more beams than this buy nothing and
# only cost memory (``--beams 100000`` would try to allocate terabytes).
MAX_BEAMS = 64


class TranslatorError(ValueError):
    """Invalid translation request; the message names the value and what is allowed."""


def text_problems(texts: Sequence[object], what: str = "text", start: int = 0) -> list[str]:
    """Every text that is not a string of valid Unicode without NUL, named by its index
    (counted from ``start``).

    Lone surrogates (``"a\\udc80"``, e.g. from invalid UTF-8 decoded with ``surrogateescape``)
    cannot be encoded as UTF-8, and NUL is a C string terminator in native tokenizers: both are
    refused here instead of failing deep inside SentencePiece.
    """
    problems = []
    for i, text in enumerate(texts, start):
        if not isinstance(text, str):
            problems.append(f"{what} {i} must be a string, got {type(text).__name__}")
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            problems.append(
                f"{what} {i} is not valid Unicode: {exc.object[exc.start : exc.end]!r} at "
                f"character {exc.start} (a lone surrogate; invalid UTF-8 input?)"
            )
            continue
        if "\x00" in text:
            problems.append(f"{what} {i} contains a NUL character at {text.index(chr(0))}")
    return problems


def _onnxruntime(manifest: Manifest, precision: str, threads: int | None) -> Seq2SeqBackend:
    from runtime.onnx_backend import OnnxBackend

    return OnnxBackend(manifest, precision, threads=threads)


def _executorch(manifest: Manifest, precision: str, threads: int | None) -> Seq2SeqBackend:
    # ExecuTorch's XNNPACK threadpool is process-wide and sized by the runtime, so ``threads``
    # is not applied per backend.
    module = importlib.import_module("runtime.executorch_backend")
    return cast(Seq2SeqBackend, module.ExecuTorchBackend(manifest, precision))


def _ctranslate2(manifest: Manifest, precision: str, threads: int | None) -> Backend:
    from runtime.ctranslate2_backend import CT2Backend

    return CT2Backend(manifest, precision, threads=threads)


BACKENDS: dict[str, BackendFactory] = {
    "onnxruntime": _onnxruntime,
    "executorch": _executorch,
    "ctranslate2": _ctranslate2,
}


def create_backend(
    manifest: Manifest,
    backend: str,
    precision: str,
    threads: int | None = None,
    *,
    cache: str = "auto",
) -> Backend:
    """The ``backend`` runtime for the ``precision`` variant of ``manifest``.

    ``cache`` forces the ONNX Runtime decoder (``"static"`` or ``"grow"``, see
    :mod:`runtime.onnx_backend`); ``"auto"`` lets the backend choose.
    """
    if backend not in BACKENDS:
        raise TranslatorError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    if threads is not None and threads < 1:
        raise TranslatorError(f"threads must be >= 1, got {threads}")
    if cache != "auto":
        if backend != "onnxruntime":
            raise TranslatorError(
                f"cache {cache!r} chooses an ONNX Runtime decoder; backend {backend!r} has none "
                "(use 'auto')"
            )
        from runtime.onnx_backend import OnnxBackend

        return OnnxBackend(manifest, precision, threads=threads, cache=cache)
    return BACKENDS[backend](manifest, precision, threads)


# Precisions with int8 weights, as each exporter names them; ``--int8`` picks the first found.
INT8_PRECISIONS = ("int8", "8da8w")


def quantized_precision(manifest: Manifest, backend: str) -> str:
    """The int8 precision (:data:`INT8_PRECISIONS`) of ``backend`` in ``manifest``."""
    have = {(v.backend, v.precision) for v in manifest.variants.values()}
    for precision in INT8_PRECISIONS:
        if (backend, precision) in have:
            return precision
    raise ArtifactError(
        f"{manifest.folder} has no int8 {backend} variant ({' or '.join(INT8_PRECISIONS)}); "
        f"it has {sorted(f'{b}/{p}' for b, p in have)}"
    )


# What to do with a sentence longer than the model's max_src_len: cut it into clauses or word
# windows that fit ("split"), or refuse the request naming it ("error").
LongInputPolicy = Literal["split", "error"]
LONG_INPUT_POLICIES: tuple[LongInputPolicy, ...] = ("split", "error")


class ScoredText(NamedTuple):
    """An alternative translation and its score (see :attr:`Translation.score`)."""

    text: str
    score: float


@dataclass(frozen=True)
class Translation:
    """One translated text: its ``text``, how many ``sentences`` it had, and whether any of them
    stopped at the length limit without an end-of-sentence token (``truncated``).

    ``score`` is the sum over the text's sentences (and pieces) of the search's score
    (:class:`lingolite.search.Hypothesis`: log-probability / length ** length_penalty; with
    ``length_penalty=0`` the text's exact log-probability); NaN from a backend that reports no
    scores (CTranslate2), 0 for a blank text. ``alternatives`` holds the next
    ``num_hypotheses - 1`` translations, best first: alternative ``j`` puts together the
    ``j + 1``-th best hypothesis of every sentence, so scores never increase along them.
    ``tokens`` counts the generated tokens of ``text`` (EOS excluded)."""

    text: str
    sentences: int
    truncated: bool
    score: float = 0.0
    alternatives: tuple[ScoredText, ...] = ()
    tokens: int = 0


class Unit(NamedTuple):
    """What the decoder translates: a sentence, or a piece of one too long for the model."""

    text: int  # index of its text in the request
    sentence: int  # index of its sentence within the text
    ids: TokenIds  # [<2tgt>] + pieces + [eos]: the target language travels in the source


class ScoredHyp(NamedTuple):
    """One decoded hypothesis of a unit: its text, score and generated tokens (EOS excluded)."""

    text: str
    score: float
    tokens: int


class UnitResult(NamedTuple):
    """A unit's hypotheses, best first, and whether the best stopped at ``max_length``."""

    hypotheses: tuple[ScoredHyp, ...]
    truncated: bool


@dataclass(frozen=True)
class Plan:
    """A checked request cut into :class:`Unit` s (:meth:`Translator.plan`).

    ``order`` lists the unit indices longest source first (the order to batch them in, so that
    a batch pads little); ``config`` is resolved (``max_length`` set). Units of plans with equal
    ``config`` can be decoded in one batch whatever their language pair, since each unit's
    first token names its target language; ``num_hypotheses`` only trims what the search keeps.
    """

    segmented: tuple[tuple[Segment, ...], ...]
    units: tuple[Unit, ...]
    order: tuple[int, ...]
    config: SearchConfig
    num_hypotheses: int = 1


class PlanOptions(TypedDict, total=False):
    """The search options of :meth:`Translator.plan` (its signature holds the defaults)."""

    num_beams: int
    num_hypotheses: int
    max_length: int | None
    length_penalty: float
    do_sample: bool
    temperature: float
    top_k: int
    top_p: float
    seed: int | None
    on_long_input: LongInputPolicy


class TranslateOptions(PlanOptions, total=False):
    """The keyword options of :meth:`Translator.translate_detailed`."""

    batch_size: int
    should_stop: StopCheck | None


class Translator:
    """Batched translation of texts with one backend, in the directions the model was trained on.

    Each text is split into sentences (:mod:`lingolite.segment`); all sentences of all texts are
    translated as one batch and put back between the original spaces and line breaks. A sentence
    longer than the model's ``max_src_len`` (tag and eos included) is cut into clauses or word
    windows that fit, never truncated. ``directions`` (``"en-de"``, ...) are the only pairs served;
    ``None`` serves the tokenizer's ``directions`` (all pairs of a joint tokenizer's languages).

    :meth:`from_artifacts` opens an exported folder; any backend of the search interface works,
    the eager model included:

    >>> from lingolite.checkpoint import load_pretrained
    >>> from lingolite.generate import EagerBackend
    >>> folder = "pretrained/lingolite-tiny-multi30k"
    >>> model = load_pretrained(folder)
    >>> translator = Translator(load_tokenizer(folder), EagerBackend(model),
    ...                         max_src_len=model.config.max_src_len)
    >>> translator.translate(["Two dogs play in the snow.", ""], src="en", tgt="fr")
    ['Deux chiens jouent dans la neige.', '']

    Options (all through :mod:`lingolite.search`): beam search with ``num_hypotheses`` scored
    alternatives, sampling (``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``seed``),
    ``length_penalty``, ``max_length``, ``on_long_input`` (``"split"`` or ``"error"``), and
    :meth:`translate_stream`, which yields the text as it is decoded.
    """

    def __init__(
        self,
        tokenizer: TextTokenizer,
        backend: Backend,
        *,
        max_src_len: int,
        directions: Sequence[str] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.backend = backend
        self.max_src_len = max_src_len
        self.directions: tuple[str, ...] = (
            tuple(directions) if directions is not None else tokenizer.directions
        )
        self._warned_unknown = False

    @classmethod
    def from_artifacts(
        cls,
        folder: Path | str,
        backend: str = "onnxruntime",
        precision: str = "fp32",
        *,
        threads: int | None = None,
        cache: str = "auto",
    ) -> Translator:
        """Load, verify (format version, hashes) and open an artifact folder (``cache``: see
        :func:`create_backend`)."""
        return cls.from_manifest(
            load_manifest(folder), backend, precision, threads=threads, cache=cache
        )

    @classmethod
    def from_manifest(
        cls,
        manifest: Manifest,
        backend: str,
        precision: str,
        *,
        threads: int | None = None,
        cache: str = "auto",
    ) -> Translator:
        tokenizer = load_tokenizer(manifest.tokenizer_dir)
        problems = [
            f"{name}_id is {manifest.special_id(name)} in the manifest but "
            f"{getattr(tokenizer, f'{name}_id')} in the tokenizer"
            for name in ("pad", "bos", "eos", "unk")
            if manifest.special_id(name) != getattr(tokenizer, f"{name}_id")
        ]
        if manifest.lang_ids != tokenizer.lang_ids:
            problems.append(
                f"language tags {manifest.lang_ids} in the manifest differ from the tokenizer's"
            )
        if problems:
            raise ArtifactError(f"refusing {manifest.folder}: " + "; ".join(problems))
        runtime = create_backend(manifest, backend, precision, threads, cache=cache)
        return cls(
            tokenizer,
            runtime,
            max_src_len=int(manifest.model["max_src_len"]),
            directions=manifest.directions,
        )

    @property
    def languages(self) -> tuple[str, ...]:
        return self.tokenizer.languages

    @property
    def max_tgt_len(self) -> int:
        """The model's limit on generated tokens (the default ``max_length``)."""
        return self.backend.max_tgt_len

    def translate(
        self, texts: Sequence[str], src: str, tgt: str, **options: Unpack[TranslateOptions]
    ) -> list[str]:
        """Translate ``texts`` from ``src`` into ``tgt``; one output per text, in order.

        See :meth:`translate_detailed` for the options; it also gives scores, alternatives and
        which outputs were truncated.
        """
        return [t.text for t in self.translate_detailed(texts, src, tgt, **options)]

    def translate_detailed(
        self,
        texts: Sequence[str],
        src: str,
        tgt: str,
        *,
        batch_size: int = 32,
        should_stop: StopCheck | None = None,
        **options: Unpack[PlanOptions],
    ) -> list[Translation]:
        """Translate ``texts`` sentence by sentence; one :class:`Translation` per text, in order.

        The search options (``num_beams=1``, ``num_hypotheses=1``, ``max_length``, ...) are
        :meth:`plan`'s, with its defaults. Sentences of all texts are batched by token length
        (longest first), ``batch_size`` at a time; blank texts translate to themselves without
        running the model. ``max_length`` (generated tokens per sentence) defaults to the model's
        ``max_tgt_len``; a sentence that reaches it without an end-of-sentence token marks its text
        ``truncated``. ``num_hypotheses`` (at most ``num_beams``) asks beam search for scored
        alternatives; ``do_sample`` samples instead of searching (``seed`` makes a call
        reproducible). A sentence longer than the model's ``max_src_len`` is cut to fit
        (``on_long_input="split"``) or refused with :class:`TranslatorError` (``"error"``).
        ``should_stop`` (e.g. :func:`lingolite.search.deadline_check`) is polled before every
        decoder step; once it returns True, :class:`lingolite.search.SearchCancelled` is raised.

        The three steps, :meth:`plan`, :meth:`decode_units` and :func:`assemble`, are public so
        that a caller can decode the units of several requests together (the server does).
        """
        # Every problem at once, batch_size included (plan checks the rest again; it is cheap).
        self._check_request(
            texts, src, tgt, batch_size,
            options.get("num_beams", 1), options.get("on_long_input", "split"),
        )  # fmt: skip
        plan = self.plan(texts, src, tgt, **options)
        results: list[UnitResult | None] = [None] * len(plan.units)
        for start in range(0, len(plan.order), batch_size):
            rows = plan.order[start : start + batch_size]
            decoded = self.decode_units(
                [plan.units[u].ids for u in rows],
                plan.config,
                num_hypotheses=plan.num_hypotheses,
                should_stop=should_stop,
            )
            for u, result in zip(rows, decoded, strict=True):
                results[u] = result
        return assemble(plan, [r for r in results if r is not None])

    def plan(
        self,
        texts: Sequence[str],
        src: str,
        tgt: str,
        *,
        num_beams: int = 1,
        num_hypotheses: int = 1,
        max_length: int | None = None,
        length_penalty: float = 1.0,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        on_long_input: LongInputPolicy = "split",
    ) -> Plan:
        """Check a request and cut it into units ready for the decoder (the options as in
        :meth:`translate_detailed`); :class:`TranslatorError` names every problem. No model
        runs here."""
        self._check_request(texts, src, tgt, 1, num_beams, on_long_input)
        length = self.backend.max_tgt_len if max_length is None else max_length
        config = SearchConfig(
            max_length=length, num_beams=num_beams, length_penalty=length_penalty,
            do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
        )  # fmt: skip
        config.validate(self.backend.max_tgt_len)
        if not 1 <= num_hypotheses <= num_beams:
            raise TranslatorError(
                f"num_hypotheses must be in [1, num_beams = {num_beams}], got {num_hypotheses}"
            )
        if num_hypotheses > 1 and isinstance(self.backend, SentenceBackend):
            raise TranslatorError(
                f"num_hypotheses {num_hypotheses} needs the search code's beam search; "
                f"{type(self.backend).__name__} returns one hypothesis"
            )
        segmented = tuple(tuple(segment(text, src)) for text in texts)
        units = tuple(self._units(segmented, tgt, on_long_input))
        order = tuple(sorted(range(len(units)), key=lambda u: -len(units[u].ids)))
        return Plan(segmented, units, order, config, num_hypotheses)

    def decode_units(
        self,
        sources: Sequence[TokenIds],
        config: SearchConfig,
        *,
        num_hypotheses: int = 1,
        should_stop: StopCheck | None = None,
    ) -> list[UnitResult]:
        """Decode ``sources`` (units' ids, of any requests and target languages: the target tag
        is each source's first token) as one batch with ``config``; one :class:`UnitResult` per
        source, in order. ``should_stop`` as in :meth:`translate_detailed`."""
        tok = self.tokenizer
        length = self.backend.max_tgt_len if config.max_length is None else config.max_length
        nbest = decode_batch_nbest(
            self.backend, sources, bos_id=tok.bos_id, eos_id=tok.eos_id, pad_id=tok.pad_id,
            config=config, num_hypotheses=num_hypotheses, should_stop=should_stop,
        )  # fmt: skip
        return [
            UnitResult(
                tuple(ScoredHyp(self._decode(h.tokens), h.score, len(h.tokens)) for h in found),
                # Finished hypotheses hold at most length - 1 tokens (eos took the last step).
                len(found[0].tokens) >= length,
            )
            for found in nbest
        ]

    def translate_stream(
        self,
        text: str,
        src: str,
        tgt: str,
        *,
        max_length: int | None = None,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        on_long_input: LongInputPolicy = "split",
        should_stop: StopCheck | None = None,
    ) -> Iterator[str]:
        """Translate one ``text``, yielding its translation in pieces as they are decoded: the
        separators between sentences verbatim, and each sentence's text as its tokens arrive
        (greedy search or sampling, :func:`lingolite.search.generate_stream`). The pieces join to
        :meth:`translate`'s output for the same greedy options; sampling seeds every sentence
        with ``seed``, so a sampled stream is reproducible but differs from a batched call. A
        backend with its own search (CTranslate2) yields whole sentences.
        """
        self._check_request([text], src, tgt, 1, 1, on_long_input)
        config = SearchConfig(
            max_length=max_length, do_sample=do_sample, temperature=temperature, top_k=top_k,
            top_p=top_p, seed=seed,
        )  # fmt: skip
        config.validate(self.backend.max_tgt_len)
        segments = segment(text, src)
        units = self._units([segments], tgt, on_long_input)
        k = 0
        for part in segments:
            if not part.is_sentence:
                yield part.text
                continue
            pieces = [ids for _, sentence, ids in units if sentence == k]
            for i, ids in enumerate(pieces):
                if i:
                    yield " "
                yield from self._stream_unit(ids, config, should_stop)
            k += 1

    def _stream_unit(
        self, ids: TokenIds, config: SearchConfig, should_stop: StopCheck | None
    ) -> Iterator[str]:
        tok = self.tokenizer
        if isinstance(self.backend, SentenceBackend):
            (found,) = decode_batch_nbest(
                self.backend, [ids], bos_id=tok.bos_id, eos_id=tok.eos_id, pad_id=tok.pad_id,
                config=config, should_stop=should_stop,
            )  # fmt: skip
            yield self._decode(found[0].tokens)
            return
        src_ids, src_mask = pad_batch([ids], tok.pad_id)
        out: TokenIds = []
        emitted = ""
        steps = generate_stream(
            self.backend, src_ids, src_mask, bos_id=tok.bos_id, eos_id=tok.eos_id,
            pad_id=tok.pad_id, config=config, should_stop=should_stop,
        )  # fmt: skip
        for step in steps:
            (token,) = as_token_ids(step.tokens)
            if token == tok.eos_id:
                break
            out.append(token)
            # Hold back what the next piece may still change: an incomplete UTF-8 byte sequence
            # (U+FFFD) and trailing spaces.
            text = self._decode(out).rstrip(" \ufffd")
            if len(text) > len(emitted) and text.startswith(emitted):
                yield text[len(emitted) :]
                emitted = text
        final = self._decode(out)
        if not final.startswith(emitted):  # pragma: no cover (SentencePiece prefixes are stable)
            raise RuntimeError(f"streamed {emitted!r} is not a prefix of the output {final!r}")
        if len(final) > len(emitted):
            yield final[len(emitted) :]

    def _units(
        self, segmented: Sequence[Sequence[Segment]], tgt: str, on_long_input: LongInputPolicy
    ) -> list[Unit]:
        """``(text index, sentence index within the text, source ids)`` of every piece to
        translate; a sentence over ``max_src_len`` is cut (``"split"``) or refused, all such
        sentences named at once (``"error"``)."""
        units: list[Unit] = []
        too_long: list[str] = []
        for t, segments in enumerate(segmented):
            sentences = [s.text for s in segments if s.is_sentence]
            for k, sentence in enumerate(sentences):
                if on_long_input == "error":
                    ids = self.tokenizer.encode_source(sentence, tgt)
                    if len(ids) > self.max_src_len:
                        too_long.append(f"text {t} sentence {k} has {len(ids)}")
                    units.append(Unit(t, k, ids))
                    continue
                for piece in self._fit(sentence, tgt):
                    units.append(Unit(t, k, self.tokenizer.encode_source(piece, tgt)))
        if too_long:
            raise TranslatorError(
                f"{', '.join(too_long[:10])} tokens; the model reads at most {self.max_src_len} "
                "(language tag and end of sentence included): shorten them or use "
                "on_long_input='split'"
            )
        return units

    def _fit(self, sentence: str, tgt: str) -> list[str]:
        """``sentence``, or its clauses/word windows when it is longer than ``max_src_len``."""

        def fits(text: str) -> bool:
            return len(self.tokenizer.encode_source(text, tgt)) <= self.max_src_len

        pieces = split_long(sentence, fits)
        if len(pieces) > 1:
            log.info(
                "a sentence of %d characters exceeds max_src_len %d tokens: translated in %d "
                "pieces",
                len(sentence),
                self.max_src_len,
                len(pieces),
            )
        return pieces

    def _check_request(
        self,
        texts: Sequence[str],
        src: str,
        tgt: str,
        batch_size: int,
        num_beams: int,
        on_long_input: str = "split",
    ) -> None:
        problems = []
        if isinstance(texts, str):
            problems.append("texts must be a sequence of strings, not one string")
        else:
            problems += text_problems(texts)
        supported = list(self.languages)
        for role, lang in (("source", src), ("target", tgt)):
            if lang not in self.languages:
                problems.append(f"unknown {role} language {lang!r}; supported: {supported}")
        if src == tgt:
            problems.append(f"source and target language are both {src!r}")
        elif not problems and f"{src}-{tgt}" not in self.directions:
            problems.append(
                f"direction {src}-{tgt} was not trained; this model translates "
                f"{', '.join(self.directions)}"
            )
        if batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {batch_size}")
        if not 1 <= num_beams <= MAX_BEAMS:
            problems.append(f"num_beams must be in [1, {MAX_BEAMS}], got {num_beams}")
        if on_long_input not in LONG_INPUT_POLICIES:
            problems.append(
                f"on_long_input must be one of {LONG_INPUT_POLICIES}, got {on_long_input!r}"
            )
        if problems:
            raise TranslatorError("; ".join(problems))

    def _decode(self, ids: TokenIds) -> str:
        vocab = self.tokenizer.vocab_size
        if any(i >= vocab for i in ids):
            # Only a model with more outputs than tokenizer pieces (an untrained export) gets here.
            if not self._warned_unknown:
                log.warning(
                    "the model emitted ids >= the tokenizer's %d pieces (an untrained "
                    "export?); they decode as <unk>",
                    vocab,
                )
                self._warned_unknown = True
            ids = [i if i < vocab else self.tokenizer.unk_id for i in ids]
        return self.tokenizer.decode(ids)


def assemble(plan: Plan, results: Sequence[UnitResult]) -> list[Translation]:
    """One :class:`Translation` per text of ``plan`` from its units' results (``results[u]``
    for ``plan.units[u]``); each unit's hypotheses beyond ``plan.num_hypotheses`` are ignored,
    so a unit decoded with more (beside a request that asked for more) gives the same answer."""
    if len(results) != len(plan.units):
        raise ValueError(f"{len(results)} results for a plan of {len(plan.units)} units")
    per_text: list[list[tuple[int, Sequence[ScoredHyp], bool]]] = [[] for _ in plan.segmented]
    for unit, result in zip(plan.units, results, strict=True):
        found = result.hypotheses[: plan.num_hypotheses]
        per_text[unit.text].append((unit.sentence, found, result.truncated))
    return [_assemble(segments, per_text[t]) for t, segments in enumerate(plan.segmented)]


def _assemble(
    segments: Sequence[Segment], units: Sequence[tuple[int, Sequence[ScoredHyp], bool]]
) -> Translation:
    """One text's :class:`Translation` from its units, in order: ``(sentence index, hypotheses
    best first, truncated)``."""
    sentences = sum(1 for s in segments if s.is_sentence)
    if not units:
        return Translation(join(segments, []), sentences, False)
    texts, scores = [], []
    for j in range(min(len(found) for _, found, _ in units)):
        per_sentence: list[list[str]] = [[] for _ in range(sentences)]
        for k, found, _ in units:
            per_sentence[k].append(found[j][0])
        texts.append(join(segments, (" ".join(p) for p in per_sentence)))
        scores.append(math.fsum(found[j][1] for _, found, _ in units))
    return Translation(
        text=texts[0],
        sentences=sentences,
        truncated=any(was_cut for _, _, was_cut in units),
        score=scores[0],
        alternatives=tuple(ScoredText(t, sc) for t, sc in zip(texts[1:], scores[1:], strict=True)),
        tokens=sum(found[0][2] for _, found, _ in units),
    )
