"""What ``benchmarks.run`` measures with: one runner interface over every backend, timers, the
fixed-work search, the machine's memory bandwidth and a description of the machine.

A :class:`Runner` translates token ids and times its encoder and one decoder step at batch 1:

- :class:`SearchRunner` drives any :class:`~lingolite.search.Seq2SeqBackend` (eager PyTorch, ONNX
  Runtime, ExecuTorch) through the one search implementation, :func:`lingolite.search.generate`.
- :class:`CT2Runner` drives a CTranslate2 folder (``export.ctranslate2``, or
  ``ct2-transformers-converter``'s for an imported Marian model) through
  ``ctranslate2.Translator.translate_batch``, which runs its own search in C++.
- :class:`GenerateRunner` drives a Hugging Face model's own ``generate`` (Optimum's
  ``ORTModelForSeq2SeqLM`` on ``optimum-cli export onnx``'s folder, or transformers'
  ``MarianMTModel``): the peers of an imported Marian model, on the same weights.

Fixed work. An untrained model rarely says EOS, and when it does, each backend may say it at a
different step, so sentence times would compare different amounts of work. With ``forced=True``
every backend generates exactly ``max_length`` tokens: our backends are wrapped in
:class:`SuppressEos` (the EOS logit is set to ``-inf`` before the search sees it, so greedy and
beam search run all ``max_length`` steps), CTranslate2 gets ``min_decoding_length =
max_decoding_length``, which is how it suppresses EOS, and ``generate`` gets ``min_new_tokens``
one past ``max_new_tokens`` (EOS is then banned at every step it takes). A trained model decodes
naturally (``forced=False``); figures are then normalised per generated token.

PyTorch is not imported here: the memory probe of a torch-free backend must not pay for it.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lingolite.search import (
    BoolArray,
    Cache,
    FloatArray,
    IntArray,
    Memory,
    SearchConfig,
    Seq2SeqBackend,
    TokenIds,
    generate,
    pad_batch,
)
from lingolite.tokenizer import TokenId
from lingolite.tokenizers import TextTokenizer


@dataclass(frozen=True)
class Stats:
    """Summary of repeated timings in milliseconds."""

    median: float
    p90: float
    best: float
    n: int

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Stats:
        if not samples_ms:
            raise ValueError("no samples to summarise")
        values = [float(v) for v in samples_ms]
        return cls(statistics.median(values), percentile(values, 90), min(values), len(values))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (linear interpolation, numpy's default)."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Milliseconds ``fn()`` took, and what it returned."""
    start = time.perf_counter()
    out = fn()
    return 1e3 * (time.perf_counter() - start), out


def decode_steps(outputs: Sequence[TokenIds], max_length: int) -> int:
    """Decoder steps that produced ``outputs``: one per token, plus the EOS step when a
    hypothesis ended before ``max_length``."""
    return sum(len(o) + (1 if len(o) < max_length else 0) for o in outputs)


class SuppressEos:
    """A :class:`Seq2SeqBackend` whose EOS logit is ``-inf``: searches run ``max_length`` steps."""

    def __init__(self, backend: Seq2SeqBackend, eos_id: int) -> None:
        self.backend = backend
        self.eos_id = eos_id

    @property
    def max_tgt_len(self) -> int:
        return self.backend.max_tgt_len

    def encode(self, src_ids: IntArray, src_mask: BoolArray) -> Memory:
        return self.backend.encode(src_ids, src_mask)

    def init_cache(self, batch: int) -> Cache:
        return self.backend.init_cache(batch)

    def decode_step(
        self, tokens: IntArray, pos: int, memory: Memory, cache: Cache
    ) -> tuple[FloatArray, Cache]:
        logits, cache = self.backend.decode_step(tokens, pos, memory, cache)
        if not logits.flags.writeable:
            logits = logits.copy()
        logits[:, self.eos_id] = -np.inf
        return logits, cache


class Runner(Protocol):
    """What the benchmark needs from a backend."""

    def translate(
        self, sources: Sequence[TokenIds], num_beams: int, max_length: int, forced: bool
    ) -> list[TokenIds]:
        """One batch of source id lists -> one token list per source (no BOS/EOS)."""
        ...

    def encoder_and_step_ms(
        self, source: TokenIds, steps: int, repeats: int
    ) -> tuple[list[float], list[float]]:
        """Samples (ms) of the encoder and of one decoder step at batch 1."""
        ...


@dataclass(frozen=True)
class SpecialIds:
    bos: TokenId
    eos: TokenId
    pad: TokenId


class SearchRunner:
    """A :class:`Seq2SeqBackend` behind :func:`lingolite.search.generate`."""

    def __init__(self, backend: Seq2SeqBackend, ids: SpecialIds) -> None:
        self.backend = backend
        self.ids = ids

    def translate(
        self, sources: Sequence[TokenIds], num_beams: int, max_length: int, forced: bool
    ) -> list[TokenIds]:
        src_ids, src_mask = pad_batch(sources, self.ids.pad)
        backend = SuppressEos(self.backend, self.ids.eos) if forced else self.backend
        config = SearchConfig(max_length=max_length, num_beams=num_beams)
        return generate(
            backend,
            src_ids,
            src_mask,
            bos_id=self.ids.bos,
            eos_id=self.ids.eos,
            pad_id=self.ids.pad,
            config=config,
        )

    def encoder_and_step_ms(
        self, source: TokenIds, steps: int, repeats: int
    ) -> tuple[list[float], list[float]]:
        """Encoder: ``repeats`` runs. Step: ``repeats`` sentences of ``steps`` decode_step calls
        (positions ``0..steps-1``, each fed the previous argmax), every call timed."""
        src_ids, src_mask = pad_batch([source], self.ids.pad)
        encoder = [timed(lambda: self.backend.encode(src_ids, src_mask))[0] for _ in range(repeats)]
        memory = self.backend.encode(src_ids, src_mask)
        step_ms = []
        for _ in range(repeats):
            cache = self.backend.init_cache(1)
            tokens = np.array([self.ids.bos], dtype=np.int64)
            for pos in range(steps):
                ms, (logits, cache) = timed(
                    lambda: self.backend.decode_step(tokens, pos, memory, cache)  # noqa: B023
                )
                step_ms.append(ms)
                tokens = logits.argmax(axis=-1).astype(np.int64)
        return encoder, step_ms


def derived_encoder_and_step_ms(
    translate: Callable[[Sequence[TokenIds], int, int, bool], list[TokenIds]],
    source: TokenIds, steps: int, repeats: int,
) -> tuple[list[float], list[float]]:  # fmt: skip
    """Encoder and step times of a runtime with no encoder-only or single-step call, from whole
    greedy translations forced to ``n1 = 2`` and ``n2 = steps`` tokens: step = (T(n2) - T(n1)) /
    (n2 - n1), encoder = T(n1) - n1 * step (one pair per repeat)."""
    n1, n2 = 2, max(steps, 4)
    encoder, step = [], []
    for _ in range(repeats):
        t1 = timed(lambda: translate([source], 1, n1, True))[0]
        t2 = timed(lambda: translate([source], 1, n2, True))[0]
        per_step = max(t2 - t1, 0.0) / (n2 - n1)
        step.append(per_step)
        encoder.append(max(t1 - n1 * per_step, 0.0))
    return encoder, step


class CT2Runner:
    """A ``ctranslate2`` variant of an artifact folder (``export.ctranslate2``), spoken to in our
    token ids.

    The vocabulary (``shared_vocabulary.json``) maps ids to the token strings CTranslate2 takes;
    options mirror :meth:`runtime.ctranslate2_backend.CT2Backend.translate_ids` (no source
    truncation, length penalty 1, patience 1) plus ``min_decoding_length`` for fixed work.
    """

    def __init__(
        self, artifacts: Path, precision: str, threads: int, converted: bool = False
    ) -> None:
        """``artifacts``: an artifact folder, or with ``converted`` a folder written by
        ``ct2-transformers-converter`` from a Marian model, whose vocabulary is Marian's in id
        order without the final ``<pad>`` (so its ids are ours)."""
        import ctranslate2

        from runtime.ctranslate2_backend import FILES, model_folder, read_vocabulary
        from runtime.manifest import load_manifest

        folder = artifacts if converted else model_folder(load_manifest(artifacts), precision)
        self.pieces = read_vocabulary(folder / FILES["vocabulary"])
        self.ids = {piece: TokenId(i) for i, piece in enumerate(self.pieces)}
        self.translator = ctranslate2.Translator(
            str(folder),
            device="cpu",
            compute_type="default",
            intra_threads=threads,
            inter_threads=1,
        )

    def translate(
        self, sources: Sequence[TokenIds], num_beams: int, max_length: int, forced: bool
    ) -> list[TokenIds]:
        results = self.translator.translate_batch(
            [[self.pieces[t] for t in s] for s in sources],
            beam_size=num_beams,
            num_hypotheses=1,
            length_penalty=1.0,
            patience=1.0,
            max_decoding_length=max_length,
            min_decoding_length=max_length if forced else 0,
            max_input_length=0,
            max_batch_size=0,
        )
        return [[self.ids[p] for p in r.hypotheses[0]] for r in results]

    def encoder_and_step_ms(
        self, source: TokenIds, steps: int, repeats: int
    ) -> tuple[list[float], list[float]]:
        """CTranslate2 has no encoder-only or single-step call for a translator: both are
        :func:`derived_encoder_and_step_ms`."""
        return derived_encoder_and_step_ms(self.translate, source, steps, repeats)


class GenerateRunner:
    """A Hugging Face seq2seq model's own search, ``model.generate``: Optimum's
    ``ORTModelForSeq2SeqLM`` (``kind="optimum"``, an ``optimum-cli export onnx`` folder; int8
    files are those of ``optimum-cli onnxruntime quantize``) or transformers' ``MarianMTModel``
    (``kind="transformers"``). Sources are our (Marian) ids; options mirror our search: length
    penalty 1, ``early_stopping=False``, pad banned (Marian's generation config), no forced
    EOS."""

    def __init__(self, kind: str, folder: Path, precision: str, threads: int, ids: SpecialIds):
        import torch

        self.ids = ids
        torch.set_num_threads(threads)
        if kind == "transformers":
            import transformers

            self.model: Any = transformers.MarianMTModel.from_pretrained(str(folder)).eval()
            return
        import onnxruntime as ort
        from optimum.onnxruntime import ORTModelForSeq2SeqLM

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        names = OPTIMUM_FILES[precision]
        self.model = ORTModelForSeq2SeqLM.from_pretrained(
            str(folder), session_options=options, provider="CPUExecutionProvider",
            encoder_file_name=names[0], decoder_file_name=names[1],
        )  # fmt: skip

    def translate(
        self, sources: Sequence[TokenIds], num_beams: int, max_length: int, forced: bool
    ) -> list[TokenIds]:
        import torch

        src_ids, src_mask = pad_batch(sources, self.ids.pad)
        with torch.no_grad():
            out = self.model.generate(
                input_ids=torch.from_numpy(src_ids),
                attention_mask=torch.from_numpy(src_mask).long(),
                num_beams=num_beams, max_new_tokens=max_length,
                min_new_tokens=max_length + 1 if forced else 0, do_sample=False,
                length_penalty=1.0, early_stopping=False, bad_words_ids=[[int(self.ids.pad)]],
                forced_eos_token_id=None, num_return_sequences=1,
            )  # fmt: skip
        rows: list[TokenIds] = []
        for row in out[:, 1:].tolist():  # without the decoder start token
            row = row[: row.index(self.ids.eos)] if self.ids.eos in row else row
            rows.append([TokenId(t) for t in row if t != self.ids.pad])
        return rows

    def encoder_and_step_ms(
        self, source: TokenIds, steps: int, repeats: int
    ) -> tuple[list[float], list[float]]:
        """Derived from whole forced translations, as :meth:`CT2Runner.encoder_and_step_ms`."""
        return derived_encoder_and_step_ms(self.translate, source, steps, repeats)


# Optimum's encoder and merged decoder files per precision.
OPTIMUM_FILES = {
    "fp32": ("encoder_model.onnx", "decoder_model_merged.onnx"),
    "int8": ("encoder_model_quantized.onnx", "decoder_model_merged_quantized.onnx"),
}


@dataclass(frozen=True)
class BackendSpec:
    """Where a backend's files are and how to open it.

    ``kind``: ``eager`` (``path`` = checkpoint folder), ``onnxruntime``, ``executorch`` or
    ``ctranslate2`` (``path`` = artifact folder, ``precision`` = a variant of its manifest); the
    peers of an imported Marian model: ``ctranslate2-hf`` (a ``ct2-transformers-converter``
    folder), ``optimum`` (an ``optimum-cli export onnx`` folder), ``transformers`` (the Hugging
    Face folder).
    ``cache``: the ONNX Runtime decoder (``auto``, ``static`` or ``grow``; see
    :mod:`runtime.onnx_backend`), ``auto`` for the other kinds.
    """

    name: str
    kind: str
    path: str
    precision: str
    cache: str = "auto"

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "kind": self.kind,
            "path": self.path,
            "precision": self.precision,
            "cache": self.cache,
        }


KINDS = ("eager", "onnxruntime", "executorch", "ctranslate2", "ctranslate2-hf", "optimum",
         "transformers")  # fmt: skip


def open_runner(spec: BackendSpec, threads: int, ids: SpecialIds) -> Runner:
    """Load ``spec`` with ``threads`` intra-op threads for its runtime (torch for eager, the
    XNNPACK thread pool for ExecuTorch, ``intra_op_num_threads`` for ONNX Runtime, ``intra_threads``
    for CTranslate2). Only the runtime that ``spec`` needs is imported."""
    if spec.kind == "eager":
        import torch

        from lingolite.checkpoint import load_pretrained
        from lingolite.generate import EagerBackend

        torch.set_num_threads(threads)
        return SearchRunner(EagerBackend(load_pretrained(spec.path).float().eval()), ids)
    if spec.kind == "onnxruntime":
        from runtime.manifest import load_manifest
        from runtime.onnx_backend import OnnxBackend

        manifest = load_manifest(spec.path)
        return SearchRunner(OnnxBackend(manifest, spec.precision, threads, spec.cache), ids)
    if spec.kind == "executorch":
        from executorch.extension.pybindings import portable_lib

        from runtime.executorch_backend import ExecuTorchBackend
        from runtime.manifest import load_manifest

        portable_lib._unsafe_reset_threadpool(threads)
        backend = ExecuTorchBackend(load_manifest(spec.path), spec.precision)
        return SearchRunner(backend, ids)
    if spec.kind in ("ctranslate2", "ctranslate2-hf"):
        return CT2Runner(Path(spec.path), spec.precision, threads, spec.kind == "ctranslate2-hf")
    if spec.kind in ("optimum", "transformers"):
        return GenerateRunner(spec.kind, Path(spec.path), spec.precision, threads, ids)
    raise ValueError(f"unknown backend kind {spec.kind!r}; choose one of {KINDS}")


def set_threads(threads: int) -> None:
    """``threads`` intra-op threads for torch and ExecuTorch's XNNPACK pool in this process (the
    exporters' parity gates run both; one oversubscribed core slows them many times over)."""
    import torch
    from executorch.extension.pybindings import portable_lib

    torch.set_num_threads(threads)
    portable_lib._unsafe_reset_threadpool(threads)


def thread_counts(threads: int) -> dict[str, int]:
    """The intra-op thread count each runtime of this process reports (after :func:`open_runner`
    set them)."""
    import torch
    from executorch.extension.pybindings import portable_lib

    return {
        "torch": torch.get_num_threads(),
        "executorch_xnnpack": int(portable_lib._threadpool_get_thread_count()),
        "onnxruntime_intra_op": threads,
        "ctranslate2_intra": threads,
    }


def memory_bandwidth(megabytes: int = 256, repeats: int = 10) -> dict[str, float]:
    """This machine's memory bandwidth on one thread: a numpy copy of ``megabytes`` (far beyond
    the caches), bytes read + written per second; the best of ``repeats`` and the median."""
    src = np.ones(megabytes * 2**20 // 8)
    dst = np.empty_like(src)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        seconds.append(time.perf_counter() - start)
    moved = 2 * src.nbytes
    return {
        "bytes_per_copy": float(moved),
        "best_gb_s": moved / min(seconds) / 1e9,
        "median_gb_s": moved / statistics.median(seconds) / 1e9,
    }


def machine() -> dict[str, Any]:
    """CPU model and cores (``/proc/cpuinfo``), memory, OS and Python."""
    cpu, flags = platform.processor() or "unknown", ""
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and cpu in ("unknown", platform.processor()):
                cpu = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = value
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "fma")
    out: dict[str, Any] = {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_features": [f for f in wanted if f in flags.split()],
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    try:
        import psutil

        out["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
        out["load_average_1m"] = round(os.getloadavg()[0], 2)
    except ImportError:  # psutil is a dependency; this only guards odd environments
        pass
    return out


# ---------------------------------------------------------------------- one backend, every figure

BATCH_SIZE = 32
BEAM = 4


@dataclass(frozen=True)
class Settings:
    """How much is measured. ``forced_length`` is the fixed number of generated tokens of an
    untrained model (and the decode steps timed per repeat)."""

    repeats: int
    forced_length: int
    latency_sentences: int
    sentence_repeats: int
    throughput_sentences: int
    max_len: int | None = None  # static lengths override (quick mode only)
    executorch: tuple[str, ...] = ("fp32", "8da8w", "8da4w")


FULL = Settings(
    repeats=5,
    forced_length=32,
    latency_sentences=12,
    sentence_repeats=2,
    throughput_sentences=BATCH_SIZE,
)
QUICK = Settings(
    repeats=2,
    forced_length=8,
    latency_sentences=3,
    sentence_repeats=1,
    throughput_sentences=8,
    max_len=32,
    executorch=("fp32", "8da8w"),  # lowering 8da4w too would add most of a minute
)


@dataclass(frozen=True)
class Inputs:
    """Token ids every backend translates; ``references`` only for the BLEU set."""

    latency: list[TokenIds]
    throughput: list[TokenIds]
    references: list[str]
    description: str


@dataclass
class Measured:
    metrics: dict[str, float]
    details: dict[str, Any]
    outputs: dict[str, list[TokenIds]]


def measure_backend(
    runner: Runner, inputs: Inputs, settings: Settings, forced: bool, max_length: int
) -> Measured:
    """Every timing of one backend (see the module docstring); outputs kept for parity/BLEU."""
    warm = inputs.latency[:2]
    runner.translate(warm, 1, max_length, forced)
    runner.translate(warm[:1], BEAM, max_length, forced)
    probe = sorted(inputs.latency, key=len)[len(inputs.latency) // 2]  # the median length
    encoder, step = runner.encoder_and_step_ms(probe, settings.forced_length, settings.repeats)
    metrics = {"encoder_ms": Stats.of(encoder).median, "step_ms": Stats.of(step).median}
    details: dict[str, Any] = {
        "encoder_ms": dataclasses.asdict(Stats.of(encoder)),
        "step_ms": dataclasses.asdict(Stats.of(step)),
        "step_probe_source_tokens": len(probe),
    }
    outputs: dict[str, list[TokenIds]] = {}
    for beams, key in ((1, "greedy"), (BEAM, "beam4")):
        per_sentence: list[list[float]] = [[] for _ in inputs.latency]
        hyps: list[TokenIds] = []
        for _ in range(settings.sentence_repeats):
            hyps = []
            for i, src in enumerate(inputs.latency):
                ms, out = timed(lambda: runner.translate([src], beams, max_length, forced))  # noqa: B023
                per_sentence[i].append(ms)
                hyps += out
        medians = [float(np.median(t)) for t in per_sentence]
        steps = decode_steps(hyps, max_length)
        metrics[f"{key}_p50_ms"] = percentile(medians, 50)
        metrics[f"{key}_p90_ms"] = percentile(medians, 90)
        metrics[f"{key}_ms_per_token"] = sum(medians) / max(steps, 1)
        details[f"{key}_b1"] = {
            "sentences": len(medians),
            "decode_steps": steps,
            "tokens": sum(map(len, hyps)),
            "sentence_ms": medians,
        }
        outputs[f"{key}_b1"] = hyps
    order = sorted(range(len(inputs.throughput)), key=lambda i: -len(inputs.throughput[i]))
    for beams, key in ((1, "greedy"), (BEAM, "beam4")):
        hyps_b32: list[TokenIds] = [[] for _ in inputs.throughput]
        total_ms = 0.0
        for start in range(0, len(order), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            batch = [inputs.throughput[i] for i in rows]
            ms, out = timed(lambda: runner.translate(batch, beams, max_length, forced))  # noqa: B023
            total_ms += ms
            for i, ids in zip(rows, out, strict=True):
                hyps_b32[i] = ids
        tokens = sum(map(len, hyps_b32))
        metrics[f"{key}_b32_tok_s"] = tokens / (total_ms / 1e3)
        details[f"{key}_b32"] = {
            "sentences": len(order),
            "tokens": tokens,
            "seconds": round(total_ms / 1e3, 3),
        }
        outputs[f"{key}_b32"] = hyps_b32
    return Measured(metrics, details, outputs)


def parity(reference: list[TokenIds], candidate: list[TokenIds]) -> dict[str, Any]:
    identical = sum(a == b for a, b in zip(reference, candidate, strict=True))
    total = sum(max(len(a), len(b)) for a, b in zip(reference, candidate, strict=True))
    same = sum(
        x == y
        for a, b in zip(reference, candidate, strict=True)
        for x, y in zip(a, b, strict=False)
    )
    return {
        "identical": identical,
        "sentences": len(reference),
        "equal": identical == len(reference),
        "token_agreement": round(same / max(total, 1), 4),
    }


def quality(
    tokenizer: TextTokenizer, outputs: list[TokenIds], references: list[str]
) -> dict[str, Any]:
    from sacrebleu.metrics.bleu import BLEU
    from sacrebleu.metrics.chrf import CHRF

    hyps = [tokenizer.decode(ids) for ids in outputs]
    bleu, chrf = BLEU(), CHRF()
    return {
        "bleu": round(bleu.corpus_score(hyps, [references]).score, 2),
        "chrf": round(chrf.corpus_score(hyps, [references]).score, 2),
        "signatures": {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())},
    }
