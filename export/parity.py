"""Parity: proof that an exported program set translates like the eager PyTorch model.

:func:`check_parity` compares any :class:`~lingolite.search.Seq2SeqBackend` with
:class:`~lingolite.generate.EagerBackend` through the same :func:`lingolite.search.generate`
(a :class:`~lingolite.search.SentenceBackend` such as CTranslate2, which runs its own search and
has no single-step call, gets every check but the step-level ones):

- encoder outputs (``cross_k``/``cross_v``) and per-step decoder logits, on random inputs
  (random ids, ragged padding, a full ``max_src_len`` row, every cache position
  ``0 .. max_tgt_len - 1``) and on real inputs (tokenized sentences, teacher-forced with the
  eager greedy output): max abs difference;
- greedy token sequences on a set of sentences: share of sentences whose tokens are identical,
  and positional token agreement;
- for quantized programs of a trained model, given test sets (``--data``): the sacreBLEU
  difference between eager (fp32) and the backend.

Gates. An *exact* program set (precision ``fp32``) must reproduce eager: every max abs
difference <= :data:`FP32_ATOL` and 100% identical greedy sentences. A quantized one is
compared, not matched: its differences are reported; for a *trained* model at least
:data:`QUANTIZED_MIN_IDENTICAL` of the greedy sentences must be identical to eager and its BLEU
may be at most :data:`MAX_BLEU_DROP` below eager's (eager stands for fp32: the fp32 gate proves
them token-identical). For an untrained model the agreement says nothing about quantization
(a seeded init mostly repeats one token), so it is reported only.

Why 50%: identical sentences are a breakage alarm, not a quality measure. Dynamic int8 moves
every logit a little (max abs 0.2 to 1.3 on the shipped tiny model); greedy output changes
wherever the model hesitates between near-equal candidates, and the rest of that sentence then
changes too, usually into an equally good translation. Measured on the shipped
lingolite-tiny-multi30k (ONNX int8, 400 test_2016_flickr sentences over its four directions):
76% of sentences identical, BLEU 45.06 vs 44.62 for fp32. Broken quantization (wrong scales,
a layer left garbled) drops identity towards 0%, so the floor catches it; whether the int8
model translates worse is the BLEU gate's call (:data:`MAX_BLEU_DROP`, with ``--data``).
Thresholds are module constants read at call time.

The eager reference (:func:`reference_model`) and the parity inputs (:func:`parity_inputs`: the
built-in sample sentences of :mod:`export.sample`, plus a test set with ``--data``) live here too:
parity is an export stage, and the runtimes never import this module (nor torch).

``python -m export.parity --artifacts DIR [--checkpoint DIR] [--data DIR]`` runs the checks on
any artifact folder (untrained exports are rebuilt from their recorded seed).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export.sample import SAMPLE_LANGUAGES, sample_texts
from lingolite.checkpoint import (
    check_finite,
    check_header,
    check_state_dict,
    load_state,
    read_config,
)
from lingolite.config import ModelConfig
from lingolite.data import DataError, MissingCorpusError, parse_pairs, read_parallel
from lingolite.generate import EagerBackend
from lingolite.model import LingoLite
from lingolite.search import (
    BoolArray,
    IntArray,
    SearchConfig,
    SentenceBackend,
    Seq2SeqBackend,
    TokenIds,
    decode_batch,
    pad_batch,
)
from lingolite.signatures import GROW_DECODER
from lingolite.tokenizers import TextTokenizer, load_tokenizer
from lingolite.utils import add_quiet_argument, progress, set_seed
from runtime.manifest import ArtifactError, Manifest, load_manifest
from runtime.translator import Backend, Translator, create_backend

log = logging.getLogger(__name__)

FP32_ATOL = 1e-4
QUANTIZED_MIN_IDENTICAL = 0.50
MAX_BLEU_DROP = 1.0
# Block-wise int4 weights (``export.onnx --quantize int4``) trade some quality for size: their
# pooled BLEU may drop this much below eager's, twice the int8 limit (README, "4-bit weights").
MAX_BLEU_DROP_INT4 = 2.0
BLEU_SPLIT = "test_2016_flickr"
# Sentences per direction of the BLEU gate (eager and every quantized program translate them).
BLEU_MAX_SENTENCES = 500
BATCH_SIZE = 32
# Real sentences compared step by step (teacher-forced).
REAL_ROWS = 8
# Random-input batch: a full-length row, a ragged one and a one-token one.
RANDOM_ROWS = 3
# Greedy mismatches quoted in a report.
MAX_EXAMPLES = 3
# Sample sentences every parity run translates.
PARITY_SENTENCES = 24
# Source lines of --data's test set added to the parity sentences.
PARITY_DATA_SENTENCES = 16


@dataclass(frozen=True)
class Check:
    """One measured quantity; ``limit`` is None for report-only numbers."""

    name: str
    value: float
    limit: float | None = None
    # "max": value must be <= limit; "min": value must be >= limit.
    kind: str = "max"
    gated: bool = False
    detail: str = ""

    @property
    def ok(self) -> bool:
        if self.limit is None:
            return True
        return self.value <= self.limit if self.kind == "max" else self.value >= self.limit

    def line(self) -> str:
        status = ("PASS" if self.ok else "FAIL") if self.gated else "info"
        bound = (
            ""
            if self.limit is None
            else f" ({'<=' if self.kind == 'max' else '>='} {self.limit:.3g})"
        )
        detail = f"  {self.detail}" if self.detail else ""
        return f"  {status}  {self.name}: {self.value:.4g}{bound}{detail}"


@dataclass
class ParityReport:
    """Every check of one backend against eager; ``passed`` when all gated checks pass."""

    variant: str
    exact: bool
    trained: bool
    checks: list[Check] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks if c.gated)

    def failures(self) -> list[str]:
        return [c.line().strip() for c in self.checks if c.gated and not c.ok]

    def summary(self) -> str:
        kind = "exact (fp32)" if self.exact else "quantized"
        head = f"parity {self.variant} [{kind}]: {'PASSED' if self.passed else 'FAILED'}"
        lines = [head, *(c.line() for c in self.checks)]
        if not self.passed or not self.exact:
            lines += [line for e in self.examples for line in example_lines(e)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "exact": self.exact,
            "trained": self.trained,
            "passed": self.passed,
            "checks": [{**asdict(c), "ok": c.ok} for c in self.checks],
            "examples": self.examples,
        }


def example_lines(example: dict[str, Any]) -> list[str]:
    """A sentence whose greedy output differs: its text, both translations, their first ids."""
    return [
        f"  differs ({example['tgt']}): {example['sentence']!r}",
        f"    eager:   {example.get('eager_text', '')!r}  ids {example['eager']}",
        f"    backend: {example.get('backend_text', '')!r}  ids {example['backend']}",
    ]


@dataclass(frozen=True)
class BleuSet:
    """A test set for the BLEU gate: source texts, one reference each, the direction."""

    name: str
    src: str
    tgt: str
    sources: list[str]
    references: list[str]


def load_bleu_sets(
    data_dir: Path,
    directions: Sequence[tuple[str, str]],
    split: str = BLEU_SPLIT,
    max_sentences: int = BLEU_MAX_SENTENCES,
) -> list[BleuSet]:
    """The test sets of ``split`` in ``data_dir`` for those of ``directions`` it has.

    ``split`` may be in any corpus form (see :func:`lingolite.data.find_corpus_files`); each set
    is its first ``max_sentences`` pairs with both sides non-empty. A direction without files is
    skipped (and logged); none at all is an error naming the directions and the split.
    """
    sets, missing = [], []
    for src, tgt in directions:
        try:
            pairs = [(s, t) for s, t in read_parallel(data_dir, split, src, tgt) if s and t]
        except MissingCorpusError:
            missing.append(f"{src}-{tgt}")
            continue
        pairs = pairs[:max_sentences]
        sets.append(
            BleuSet(f"{split} {src}-{tgt}", src, tgt, [s for s, _ in pairs], [t for _, t in pairs])
        )
    if not sets:
        wanted = ", ".join(f"{s}-{t}" for s, t in directions)
        raise DataError(f"{data_dir} has no {split!r} test set for any of the directions {wanted}")
    if missing:
        log.info("%s has no %r test set for %s; BLEU gate without them", data_dir, split, missing)
    return sets


def _max_diff(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: eager {a.shape}, backend {b.shape}")
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def compare_steps(
    ref: Seq2SeqBackend,
    cand: Seq2SeqBackend,
    src_ids: IntArray,
    src_mask: BoolArray,
    steps: IntArray,
) -> tuple[float, float, int]:
    """Run both backends on the same inputs; ``steps`` ``(n, b)`` are the tokens fed at
    positions ``0 .. n-1``. Returns the max abs diff of the encoder outputs, of the logits, and
    the position of the worst logits."""
    mem_ref, mem_cand = ref.encode(src_ids, src_mask), cand.encode(src_ids, src_mask)
    enc = max(
        _max_diff(mem_ref.cross_k, mem_cand.cross_k), _max_diff(mem_ref.cross_v, mem_cand.cross_v)
    )
    cache_ref, cache_cand = ref.init_cache(len(src_ids)), cand.init_cache(len(src_ids))
    worst, worst_pos = 0.0, 0
    for pos, tokens in enumerate(steps):
        logits_ref, cache_ref = ref.decode_step(tokens, pos, mem_ref, cache_ref)
        logits_cand, cache_cand = cand.decode_step(tokens, pos, mem_cand, cache_cand)
        diff = _max_diff(logits_ref, logits_cand)
        if diff > worst:
            worst, worst_pos = diff, pos
    return enc, worst, worst_pos


def _random_inputs(
    vocab: int, max_src: int, max_tgt: int, pad: int, rng: np.random.Generator
) -> tuple[IntArray, BoolArray, IntArray]:
    lengths = [max_src, int(rng.integers(1, max_src + 1)), 1][:RANDOM_ROWS]
    src_ids = rng.integers(1, vocab, (RANDOM_ROWS, max_src)).astype(np.int64)
    src_mask = np.arange(max_src)[None, :] < np.array(lengths)[:, None]
    src_ids = np.where(src_mask, src_ids, pad).astype(np.int64)
    steps = rng.integers(0, vocab, (max_tgt, RANDOM_ROWS)).astype(np.int64)
    return src_ids, src_mask, steps


def _teacher_steps(outputs: Sequence[TokenIds], bos: int, pad: int, max_tgt: int) -> IntArray:
    """``(n, b)`` decoder inputs ``[bos] + output`` (pad-filled), at most ``max_tgt`` steps."""
    n = min(max_tgt, 1 + max(len(o) for o in outputs))
    steps = np.full((n, len(outputs)), pad, dtype=np.int64)
    steps[0] = bos
    for row, out in enumerate(outputs):
        seq = out[: n - 1]
        steps[1 : 1 + len(seq), row] = seq
    return steps


def _greedy(
    backend: Backend,
    sources: Sequence[TokenIds],
    tokenizer: TextTokenizer,
    max_length: int,
    desc: str = "greedy",
) -> list[TokenIds]:
    out: list[TokenIds] = []
    for start in progress(range(0, len(sources), BATCH_SIZE), desc, unit="batch"):
        out += decode_batch(
            backend,
            sources[start : start + BATCH_SIZE],
            bos_id=tokenizer.bos_id,
            eos_id=tokenizer.eos_id,
            pad_id=tokenizer.pad_id,
            config=SearchConfig(max_length=max_length),
        )
    return out


def check_parity(
    model: LingoLite,
    tokenizer: TextTokenizer,
    backend: Backend,
    sentences: Sequence[tuple[str, str]],
    *,
    exact: bool,
    trained: bool,
    bleu_sets: Sequence[BleuSet] = (),
    variant: str = "backend",
    seed: int = 0,
    max_bleu_drop: float | None = None,
) -> ParityReport:
    """Compare ``backend`` with eager ``model`` (see the module docstring for what and why).

    ``sentences`` are ``(text, tgt_lang)`` pairs. ``exact`` selects the fp32 gates; ``trained``
    turns the quantized agreement and BLEU checks into gates. BLEU is computed for quantized
    programs of trained models only, gated at ``max_bleu_drop`` (None:
    :data:`MAX_BLEU_DROP`).
    """
    if not sentences:
        raise ValueError("check_parity needs at least one sentence")
    c = model.config
    atol = FP32_ATOL
    ref = EagerBackend(model)
    report = ParityReport(variant, exact, trained)

    def diff_check(name: str, value: float, detail: str = "") -> Check:
        return Check(name, value, atol if exact else None, "max", exact, detail)

    rng = np.random.default_rng(seed)
    src_ids, src_mask, steps = _random_inputs(
        c.vocab_size, c.max_src_len, c.max_tgt_len, c.pad_id, rng
    )
    if not isinstance(backend, SentenceBackend):  # CTranslate2 has no single-step call
        enc, logits, pos = compare_steps(ref, backend, src_ids, src_mask, steps)
        report.checks += [
            diff_check(
                "encoder max abs diff (random)",
                enc,
                f"batch {RANDOM_ROWS}, src_len {c.max_src_len}, ragged padding",
            ),
            diff_check(
                "decoder logits max abs diff (random)",
                logits,
                f"positions 0..{c.max_tgt_len - 1}, worst at {pos}",
            ),
        ]

    sources = [tokenizer.encode_source(text, tgt, max_len=c.max_src_len) for text, tgt in sentences]
    expected = _greedy(ref, sources, tokenizer, c.max_tgt_len, f"{variant}: eager")
    got = _greedy(backend, sources, tokenizer, c.max_tgt_len, f"{variant}: backend")

    if not isinstance(backend, SentenceBackend):
        real = sources[:REAL_ROWS]
        real_ids, real_mask = pad_batch(real, c.pad_id)
        teacher = _teacher_steps(expected[: len(real)], c.bos_id, c.pad_id, c.max_tgt_len)
        enc, logits, pos = compare_steps(ref, backend, real_ids, real_mask, teacher)
        report.checks += [
            diff_check("encoder max abs diff (real)", enc, f"{len(real)} sentences"),
            diff_check(
                "decoder logits max abs diff (real)",
                logits,
                f"teacher-forced eager greedy output, worst at position {pos}",
            ),
        ]

    identical = sum(e == g for e, g in zip(expected, got, strict=True))
    total = sum(max(len(e), len(g)) for e, g in zip(expected, got, strict=True))
    matched = sum(
        a == b for e, g in zip(expected, got, strict=True) for a, b in zip(e, g, strict=False)
    )
    gated = exact or trained
    limit = (1.0 if exact else QUANTIZED_MIN_IDENTICAL) if gated else None
    report.checks += [
        Check(
            "greedy sentences identical to eager",
            identical / len(sentences),
            limit,
            "min",
            gated,
            f"{identical}/{len(sentences)} sentences",
        ),
        Check(
            "greedy token agreement",
            matched / max(total, 1),
            detail=f"{matched}/{total} tokens, position by position",
        ),
    ]
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        if e != g and len(report.examples) < MAX_EXAMPLES:
            report.examples.append(
                {
                    "sentence": sentences[i][0],
                    "tgt": sentences[i][1],
                    "eager_text": tokenizer.decode(e),
                    "backend_text": tokenizer.decode(g),
                    "eager": e[:20],
                    "backend": g[:20],
                }
            )

    if not exact and trained and bleu_sets:
        limit = MAX_BLEU_DROP if max_bleu_drop is None else max_bleu_drop
        report.checks += _bleu_checks(ref, backend, tokenizer, c.max_src_len, bleu_sets, limit)
    return report


def _bleu_checks(
    ref: Seq2SeqBackend,
    cand: Backend,
    tokenizer: TextTokenizer,
    max_src_len: int,
    bleu_sets: Sequence[BleuSet],
    max_drop: float,
) -> list[Check]:
    """BLEU of eager and of the backend on every set (reported) and pooled over all (gated).

    The gate reads the pooled corpus BLEU of all sets' sentences: per direction, a few hundred
    sentences move BLEU by about a point when a handful of greedy outputs change, which would
    make a per-set gate of ``max_drop`` flaky.
    """
    import sacrebleu

    hyps: dict[str, list[list[str]]] = {"eager": [], "backend": []}
    checks = []
    for bleu_set in progress(bleu_sets, "BLEU sets", unit="set"):
        log.info(
            "BLEU on %s: %d sentences, eager then backend", bleu_set.name, len(bleu_set.sources)
        )
        scores = []
        for name, backend in (("eager", ref), ("backend", cand)):
            translator = Translator(tokenizer, backend, max_src_len=max_src_len)
            out = translator.translate(bleu_set.sources, bleu_set.src, bleu_set.tgt)
            hyps[name].append(out)
            scores.append(float(sacrebleu.corpus_bleu(out, [bleu_set.references]).score))
        checks.append(
            Check(
                f"BLEU drop on {bleu_set.name}",
                scores[0] - scores[1],
                detail=f"eager {scores[0]:.2f}, backend {scores[1]:.2f}, "
                f"{len(bleu_set.sources)} sentences, greedy",
            )
        )
    references = [r for bleu_set in bleu_sets for r in bleu_set.references]
    pooled = [
        float(sacrebleu.corpus_bleu([h for part in hyps[n] for h in part], [references]).score)
        for n in ("eager", "backend")
    ]
    checks.append(
        Check(
            f"BLEU drop pooled over {len(bleu_sets)} test set(s)",
            pooled[0] - pooled[1],
            max_drop,
            "max",
            True,
            f"eager {pooled[0]:.2f}, backend {pooled[1]:.2f}, {len(references)} sentences, greedy",
        )
    )
    return checks


def check_artifacts(
    model: LingoLite,
    tokenizer: TextTokenizer,
    manifest: Manifest,
    *,
    trained: bool,
    sentences: Sequence[tuple[str, str]],
    bleu_sets: Sequence[BleuSet] = (),
    seed: int = 0,
) -> dict[str, ParityReport]:
    """:func:`check_parity` for every variant of ``manifest`` (fp32 ones are exact; int4 ones
    have their own BLEU limit, :data:`MAX_BLEU_DROP_INT4`). An ONNX variant with the
    growing-cache decoder is checked twice, by the same gates: with its static ``decoder``
    (report ``name``) and with ``decoder_grow`` (report ``name:grow``)."""
    runs = []
    for name, variant in manifest.variants.items():
        if variant.backend == "onnxruntime" and GROW_DECODER in variant.files:
            runs += [(name, variant, "static"), (f"{name}:grow", variant, "grow")]
        else:
            runs.append((name, variant, "auto"))
    reports = {}
    for name, variant, cache in progress(runs, "parity", unit="variant"):
        log.info("parity: %s (%s, %s)", name, variant.backend, variant.precision)
        backend = create_backend(manifest, variant.backend, variant.precision, cache=cache)
        reports[name] = check_parity(
            model,
            tokenizer,
            backend,
            sentences,
            exact=variant.precision == "fp32",
            trained=trained,
            bleu_sets=bleu_sets,
            variant=name,
            seed=seed,
            max_bleu_drop=MAX_BLEU_DROP_INT4 if variant.precision == "int4" else None,
        )
    return reports


def reference_model(config: ModelConfig, checkpoint: Path | None, seed: int) -> LingoLite:
    """The eager model: seeded init of ``config``, then the checkpoint's weights if given.

    ``config`` may differ from the checkpoint's in ``max_src_len``/``max_tgt_len`` only: those
    size non-persistent buffers (rotary tables, causal mask), never weights.
    """
    if checkpoint is not None:
        check_header(config, checkpoint, read_config(checkpoint)[1]["weights"])
    set_seed(seed)
    model = LingoLite(config)
    if checkpoint is not None:
        _, data = read_config(checkpoint)
        state = load_state(checkpoint, data["weights"])
        check_finite(state, str(checkpoint / data["weights"]))
        check_state_dict(model.state_dict(), state, str(checkpoint / data["weights"]))
        model.load_state_dict(state)
    return model.eval()


def parity_sentences(
    directions: Sequence[tuple[str, str]], n: int = PARITY_SENTENCES
) -> list[tuple[str, str]]:
    """``n`` ``(text, tgt_lang)`` pairs from the built-in sample, cycling through ``directions``.

    A direction whose source language the sample lacks (:data:`SAMPLE_LANGUAGES`) takes sample
    text of another language: parity compares two runtimes of one function, which needs no
    well-formed input, only the right target tag.
    """
    if not directions:
        raise ValueError("parity needs at least one direction")
    texts = sample_texts()
    pairs = []
    for i in range(n):
        src, tgt = directions[i % len(directions)]
        lang = src if src in texts else SAMPLE_LANGUAGES[i % len(SAMPLE_LANGUAGES)]
        pairs.append((texts[lang][i], tgt))
    return pairs


def parity_inputs(
    directions: Sequence[tuple[str, str]],
    data: Path | None,
    split: str = BLEU_SPLIT,
) -> tuple[list[tuple[str, str]], tuple[BleuSet, ...]]:
    """The parity sentences and BLEU sets of ``directions``: the sample, plus ``data``'s
    ``split`` test sets if given (their first lines join the parity sentences)."""
    sentences = parity_sentences(directions)
    bleu_sets = tuple(load_bleu_sets(data, directions, split)) if data is not None else ()
    for s in bleu_sets:
        sentences += [(text, s.tgt) for text in s.sources[:PARITY_DATA_SENTENCES]]
    return sentences, bleu_sets


def main(argv: list[str] | None = None, prog: str = "python -m export.parity") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="Check an artifact folder against eager PyTorch."
    )
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument(
        "--checkpoint", type=Path, help="the trained checkpoint it was exported from"
    )
    parser.add_argument(
        "--data", type=Path, help="folder with test sets of the model's directions (--data-split)"
    )
    parser.add_argument(
        "--data-split",
        default=BLEU_SPLIT,
        help=f"the test set's name in --data, any corpus form (default {BLEU_SPLIT})",
    )
    add_quiet_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        manifest = load_manifest(args.artifacts)
        trained = bool(manifest.data.get("trained"))
        if trained and args.checkpoint is None:
            raise ArtifactError(
                f"{args.artifacts} was exported from a trained checkpoint "
                f"({manifest.data.get('source')}); pass --checkpoint DIR"
            )
        seed = int(manifest.data.get("export", {}).get("seed", 0))
        config = ModelConfig.from_dict(manifest.model)
        model = reference_model(config, args.checkpoint if trained else None, seed)
        tokenizer = load_tokenizer(manifest.tokenizer_dir)
        directions = parse_pairs(",".join(manifest.directions))
        sentences, bleu_sets = parity_inputs(directions, args.data, args.data_split)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reports = check_artifacts(
        model,
        tokenizer,
        manifest,
        trained=trained,
        sentences=sentences,
        bleu_sets=bleu_sets,
        seed=seed,
    )
    for report in reports.values():
        print(report.summary())
    return 0 if all(r.passed for r in reports.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
