"""Benchmark every LingoLite backend on the same inputs in one run, with CTranslate2 as the peer.

``python -m benchmarks.run --size small [--checkpoint DIR] [--quick] [--out DIR] [--data DIR]
[--threads N] [--seed N]``, or ``python -m benchmarks.run --marian HF_DIR [--quick] ...``

Modules: :mod:`benchmarks.measure` (runners, timers, every figure of one backend),
:mod:`benchmarks.profiling` (cProfile, the runtimes' operator profilers, the bandwidth floor),
:mod:`benchmarks.report` (ratios, targets, ``results.md`` from ``templates/results.md``),
:mod:`benchmarks.charts`; this module builds the exports and runs them in order.

Backends: eager PyTorch fp32 (the baseline of every ratio), ONNX Runtime fp32 and int8 with the
static-cache decoder (the mobile/web contract), ONNX Runtime int8 and int4 with the growing-cache
decoder (``grow``, what desktop and server decoding use), ExecuTorch fp32, 8da8w and 8da4w,
CTranslate2 int8. The run builds every export it needs with the exporters
(``export.onnx.export_onnx``, ``export.executorch.export_executorch``,
``export.ctranslate2``, each with its own parity gate) in a temporary folder that is
deleted at the end; only ``results.json``, ``results.md`` and the PNG charts land in ``--out``.

With ``--marian HF_DIR`` (a local Hugging Face Marian / OPUS-MT folder) the model is that folder
imported by ``lingolite import-marian``, and its peers run the same weights through their own
converters and searches: CTranslate2 int8 from ``ct2-transformers-converter`` (the peer of the
ratios), Optimum's ``optimum-cli export onnx`` folder (fp32, and int8 from ``optimum-cli
onnxruntime quantize --avx512``) run by ``ORTModelForSeq2SeqLM.generate``, and transformers'
``MarianMTModel.generate``; LingoLite runs ONNX Runtime fp32/int8 (static and growing cache) and
ExecuTorch 8da4w. Without ``--data`` the decoding is forced (fixed work, below): an offline-built
model has random weights.

Measured per backend, in this process, one backend after the other, on the same token ids:

- encoder latency and decoder per-step latency at batch 1 (:meth:`benchmarks.measure.Runner.
  encoder_and_step_ms`; CTranslate2's are derived from translations of two lengths);
- sentence latency p50/p90 at batch 1, greedy and beam 4, and greedy milliseconds per generated
  token (the per-token figure of the targets);
- throughput in generated target tokens per second at batch 32, greedy and beam 4;
- peak resident memory, each backend in its own process (``benchmarks.memory_probe``);
- size on disk; with a trained ``--checkpoint`` and ``--data``, sacreBLEU BLEU and chrF on
  ``test_2016_flickr`` (en-de, the full set, batch 32) for greedy and beam 4;
- greedy parity: every backend's tokens against eager's, at batch 1 and batch 32.

Fixed work. Without ``--checkpoint`` the model is the preset's seeded, untrained initialisation,
whose EOS comes at arbitrary steps; every search then generates exactly ``forced_length`` tokens
(EOS suppressed; see :mod:`benchmarks.measure`), so all backends do the same work. A trained
model decodes naturally up to ``max_tgt_len`` and times are normalised per generated token.
An untrained model's tokenizer is the exporters' built-in one padded with unused pieces to the
model's vocabulary (:func:`padded_tokenizer`): CTranslate2 needs one token string per embedding
row, and the graphs keep the preset's real vocabulary cost.

All runtimes use ``--threads`` intra-op threads (default 1: on a small machine shared with other
work, one thread per backend gives stable, comparable numbers; the count is reported). Timings
are medians of repeated runs after a warm-up. ``--quick`` (the test suite's mode) uses the
``tiny`` preset with 32-token static lengths, few repeats and a few sentences.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import importlib.metadata
import logging
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.measure import (
    BATCH_SIZE,
    BEAM,
    FULL,
    OPTIMUM_FILES,
    QUICK,
    BackendSpec,
    Inputs,
    SearchRunner,
    Settings,
    SpecialIds,
    machine,
    measure_backend,
    memory_bandwidth,
    open_runner,
    parity,
    quality,
    set_threads,
    thread_counts,
    timed,
)
from benchmarks.memory_probe import run_probe
from benchmarks.profiling import (
    executorch_op_profile,
    onnx_op_profile,
    search_profile,
    weight_floor,
)
from benchmarks.report import BASELINE, OPTIMUM, PEER, ratios, targets, write_outputs
from lingolite.config import PRESETS, ModelConfig
from lingolite.tokenizer import Tokenizer
from lingolite.tokenizers import TextTokenizer, load_tokenizer

log = logging.getLogger("benchmarks.run")

BLEU_DIRECTION = ("en", "de")
BLEU_SPLIT = "test_2016_flickr"


class BenchmarkError(ValueError):
    """Invalid benchmark options; the message lists every problem."""


@dataclass(frozen=True)
class BenchOptions:
    out: Path
    size: str | None = None
    checkpoint: Path | None = None
    data: Path | None = None
    quick: bool = False
    threads: int = 1
    seed: int = 0
    command: str = ""
    marian: Path | None = None

    @property
    def settings(self) -> Settings:
        return QUICK if self.quick else FULL

    def problems(self) -> list[str]:
        found = []
        if self.size is None and self.checkpoint is None and self.marian is None and not self.quick:
            found.append("give --size (untrained model), --checkpoint DIR, --marian DIR or --quick")
        if self.marian is not None and (self.size is not None or self.checkpoint is not None):
            found.append("--marian takes the model from its folder: drop --size and --checkpoint")
        if self.marian is not None and not (self.marian / "config.json").is_file():
            found.append(f"--marian {self.marian} has no config.json")
        if self.size is not None and self.size not in PRESETS:
            found.append(f"--size {self.size!r} is not one of {sorted(PRESETS)}")
        if self.checkpoint is not None and not (self.checkpoint / "config.json").is_file():
            found.append(f"--checkpoint {self.checkpoint} has no config.json")
        if self.data is not None and not self.data.is_dir():
            found.append(f"--data {self.data} is not a folder")
        if self.threads < 1:
            found.append(f"--threads must be >= 1, got {self.threads}")
        if self.out.exists() and not self.out.is_dir():
            found.append(f"--out {self.out} exists and is not a folder")
        return found


@dataclass(frozen=True)
class Source:
    """The model under test: a checkpoint folder (eager and CTranslate2 read it) and its
    tokenizer; ``tokenizer_dir`` is what an untrained export is given."""

    config: ModelConfig
    checkpoint: Path
    tokenizer: TextTokenizer
    tokenizer_dir: Path | None
    trained: bool
    parameters: int


# ---------------------------------------------------------------------- model and exports


def padded_tokenizer(tokenizer: Tokenizer, vocab_size: int) -> Tokenizer:
    """``tokenizer`` with SentencePiece ``UNUSED`` pieces appended up to ``vocab_size``.

    Unused pieces are never produced by encoding, so the ids of every text are unchanged; they
    only give each embedding row of an untrained model a token string, which CTranslate2 needs.
    """
    from sentencepiece import sentencepiece_model_pb2

    spm_pb: Any = sentencepiece_model_pb2  # generated code, out of mypy's sight
    proto = spm_pb.ModelProto()
    proto.ParseFromString(tokenizer.model_proto)
    if len(proto.pieces) > vocab_size:
        raise BenchmarkError(f"tokenizer has {len(proto.pieces)} pieces > vocab {vocab_size}")
    for i in range(len(proto.pieces), vocab_size):
        piece = proto.pieces.add()
        piece.piece, piece.score = f"<unused{i}>", 0.0
        piece.type = spm_pb.ModelProto.SentencePiece.UNUSED
    return Tokenizer(proto.SerializeToString(), tokenizer.languages)


def prepare_source(options: BenchOptions, work: Path) -> Source:
    """The checkpoint to benchmark: ``--checkpoint``, or the seeded preset saved into ``work``."""
    from export.parity import reference_model
    from export.sample import builtin_tokenizer
    from lingolite.checkpoint import read_config, save_pretrained

    if options.marian is not None:
        from lingolite.import_marian import import_marian

        max_len = options.settings.max_len
        checkpoint = import_marian(
            options.marian, work / "checkpoint", max_src_len=max_len, max_tgt_len=max_len
        )
        config, _ = read_config(checkpoint)
        model = reference_model(config, checkpoint, options.seed)
        trained = options.data is not None  # an offline-built folder has random weights
        tokenizer = load_tokenizer(checkpoint)
        return Source(config, checkpoint, tokenizer, None, trained, model.num_parameters())
    if options.checkpoint is not None:
        config, data = read_config(options.checkpoint)
        tokenizer = load_tokenizer(options.checkpoint)
        model = reference_model(config, options.checkpoint, options.seed)
        return Source(
            config, options.checkpoint, tokenizer, None, "training" in data, model.num_parameters()
        )
    size = options.size or "tiny"
    max_len = options.settings.max_len
    lengths = {} if max_len is None else {"max_src_len": max_len, "max_tgt_len": max_len}
    config = ModelConfig.from_name(size, **lengths)
    model = reference_model(config, None, options.seed)
    tokenizer = padded_tokenizer(builtin_tokenizer(), config.vocab_size)
    tokenizer_dir = tokenizer.save(work / "tokenizer")
    checkpoint = save_pretrained(model, work / "checkpoint")
    tokenizer.save(checkpoint)
    return Source(config, checkpoint, tokenizer, tokenizer_dir, False, model.num_parameters())


# The backend whose beam-4 batch-32 search is profiled: what desktop and server decoding use.
BEAM_PROFILED = "onnxruntime int8 grow"


def build_exports(options: BenchOptions, source: Source, work: Path) -> list[BackendSpec]:
    """Export to ONNX, ExecuTorch and CTranslate2 int8 into ``work``; the backends to measure."""
    from export.common import ExportOptions
    from export.ctranslate2 import export_ctranslate2
    from export.executorch import export_executorch, quantization_problems
    from export.onnx import export_onnx

    c, settings = source.config, options.settings
    data = options.data if source.trained else None
    common: dict[str, Any] = dict(data=data, seed=options.seed)
    if options.marian is not None:
        return build_marian_exports(options, source, work, common)
    if options.checkpoint is not None:
        common["checkpoint"] = options.checkpoint
    else:
        common.update(size=options.size or "tiny", tokenizer=source.tokenizer_dir)
        if settings.max_len is not None:
            common.update(max_src_len=settings.max_len, max_tgt_len=settings.max_len)
    log.info("[exports 1/3] ONNX fp32 + int8 + int4 (with its parity gate)")
    onnx_dir = export_onnx(ExportOptions(out=work / "onnx", **common), quantize="all")
    precisions = [p for p in settings.executorch if not quantization_problems(c, [p])]
    log.info("[exports 2/3] ExecuTorch %s (with its parity gate)", ", ".join(precisions))
    et_dir = export_executorch(ExportOptions(out=work / "executorch", **common), precisions)
    log.info("[exports 3/3] CTranslate2 int8 (with its parity gate)")
    ct2_dir = export_ctranslate2(ExportOptions(out=work / "ctranslate2", **common), quantize="int8")
    specs = [BackendSpec(BASELINE, "eager", str(source.checkpoint), "fp32")]
    specs += [
        BackendSpec(name, "onnxruntime", str(onnx_dir), precision, cache)
        for name, precision, cache in ONNX_ROWS
    ]
    specs += [BackendSpec(f"executorch {p}", "executorch", str(et_dir), p) for p in precisions]
    specs.append(BackendSpec(PEER, "ctranslate2", str(ct2_dir), "int8"))
    return specs


def build_marian_exports(
    options: BenchOptions, source: Source, work: Path, common: dict[str, Any]
) -> list[BackendSpec]:
    """LingoLite's exports of the imported model and the peers' own conversions of the same
    Hugging Face folder (see the module docstring); the backends to measure."""
    from export.common import ExportOptions
    from export.executorch import export_executorch
    from export.onnx import export_onnx

    assert options.marian is not None
    common["checkpoint"] = source.checkpoint
    log.info("[exports 1/4] ONNX fp32 + int8 (with its parity gate)")
    onnx_dir = export_onnx(ExportOptions(out=work / "onnx", **common), quantize="both")
    log.info("[exports 2/4] ExecuTorch 8da4w (with its parity gate)")
    et_dir = export_executorch(ExportOptions(out=work / "executorch", **common), ["8da4w"])
    log.info("[exports 3/4] CTranslate2 int8 by ct2-transformers-converter")
    ct2_dir = work / "ct2-converter"
    hf = str(options.marian)
    run_tool(["ct2-transformers-converter", "--model", hf, "--output_dir", str(ct2_dir),
              "--quantization", "int8"])  # fmt: skip
    log.info("[exports 4/4] Optimum: optimum-cli export onnx, then onnxruntime quantize")
    optimum_dir, optimum_int8 = work / "optimum", work / "optimum-int8"
    run_tool(["optimum-cli", "export", "onnx", "--model", hf, "--task",
              "text2text-generation-with-past", str(optimum_dir)])  # fmt: skip
    run_tool(["optimum-cli", "onnxruntime", "quantize", "--onnx_model", str(optimum_dir),
              "--avx512", "-o", str(optimum_int8)])  # fmt: skip
    return [
        BackendSpec(BASELINE, "eager", str(source.checkpoint), "fp32"),
        *(BackendSpec(name, "onnxruntime", str(onnx_dir), precision, cache)
          for name, precision, cache in ONNX_ROWS if precision != "int4"),
        BackendSpec("executorch 8da4w", "executorch", str(et_dir), "8da4w"),
        BackendSpec(PEER, "ctranslate2-hf", str(ct2_dir), "int8"),
        BackendSpec(OPTIMUM, "optimum", str(optimum_dir), "fp32"),
        BackendSpec(f"{OPTIMUM.removesuffix(' fp32')} int8", "optimum", str(optimum_int8), "int8"),
        BackendSpec("transformers fp32", "transformers", hf, "fp32"),
    ]  # fmt: skip


def run_tool(command: list[str]) -> None:
    """Run a peer's converter (a console script of this environment); its output goes to the
    log, and a failure names the command."""
    import shutil
    import subprocess

    executable = shutil.which(command[0]) or str(Path(sys.executable).parent / command[0])
    done = subprocess.run([executable, *command[1:]], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchmarkError(
            f"{shlex.join(command)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}"
        )


# ONNX Runtime rows: (name, precision, cache).
ONNX_ROWS = (
    ("onnxruntime fp32", "fp32", "static"),
    ("onnxruntime int8", "int8", "static"),
    ("onnxruntime int8 grow", "int8", "grow"),
    ("onnxruntime int4 grow", "int4", "grow"),
)


def size_on_disk(spec: BackendSpec) -> int:
    """Bytes of the files that hold the backend's weights and programs (for ONNX Runtime, the
    encoder and the decoder it runs)."""
    path = Path(spec.path)
    if spec.kind == "eager":
        return (path / "model.safetensors").stat().st_size
    if spec.kind == "ctranslate2-hf":
        return (path / "model.bin").stat().st_size
    if spec.kind == "optimum":  # the encoder and the merged decoder it runs
        return sum((path / name).stat().st_size for name in OPTIMUM_FILES[spec.precision])
    if spec.kind == "transformers":
        return (path / "model.safetensors").stat().st_size
    from runtime.manifest import load_manifest

    manifest = load_manifest(path, verify_hashes=False)
    variant = manifest.variant(spec.kind, spec.precision)
    if spec.kind == "ctranslate2":  # the weights, without CTranslate2's config and vocabulary
        return variant.files["model"].stat().st_size
    if spec.kind == "onnxruntime":
        from lingolite.signatures import GROW_DECODER, model_config
        from runtime.onnx_backend import choose_cache

        layers = model_config(manifest.model).n_decoder_layers
        grow = choose_cache(variant, spec.cache, layers) == "grow"
        roles = ("encoder", GROW_DECODER if grow else "decoder")
        return sum(variant.files[role].stat().st_size for role in roles)
    return sum(f.stat().st_size for f in variant.files.values())


# ---------------------------------------------------------------------- inputs


def load_inputs(options: BenchOptions, source: Source) -> Inputs:
    """Trained with ``--data``: test_2016_flickr en-de (all of it for throughput and BLEU).
    Otherwise: the exporters' built-in sample sentences, sent to every other language in turn."""
    from export.parity import parity_sentences

    s, c, tok = options.settings, source.config, source.tokenizer
    if options.marian is not None and not source.trained:  # Marian: one language pair
        n = max(s.latency_sentences, s.throughput_sentences)
        src_lang, tgt = tok.directions[0].split("-")
        texts = [text for text, _ in parity_sentences([(src_lang, tgt)], n)]
        sources = [tok.encode_source(t, tgt, max_len=c.max_src_len) for t in texts]
        return Inputs(
            sources[: s.latency_sentences],
            sources[: s.throughput_sentences],
            [],
            f"built-in sample sentences ({n}, export.parity.parity_sentences, {src_lang})",
        )
    if source.trained and options.data is not None:
        from export.parity import load_bleu_sets

        bleu = load_bleu_sets(options.data, [BLEU_DIRECTION], max_sentences=10**9)[0]
        sources = [tok.encode_source(t, bleu.tgt, max_len=c.max_src_len) for t in bleu.sources]
        return Inputs(
            sources[: s.latency_sentences],
            sources,
            bleu.references,
            f"{bleu.name} ({len(sources)} sentences)",
        )
    n = max(s.latency_sentences, s.throughput_sentences)
    languages = tok.languages
    pairs = parity_sentences([(a, b) for a in languages for b in languages if a != b], n)
    sources = [tok.encode_source(text, tgt, max_len=c.max_src_len) for text, tgt in pairs]
    return Inputs(
        sources[: s.latency_sentences],
        sources[: s.throughput_sentences],
        [],
        f"built-in sample sentences ({n}, export.parity.parity_sentences)",
    )


# ---------------------------------------------------------------------- the run


def run_benchmark(options: BenchOptions) -> dict[str, Any]:
    """Build the exports, measure every backend, write ``results.json``, ``results.md`` and the
    charts into ``options.out``; returns the results."""
    problems = options.problems()
    if problems:
        raise BenchmarkError("cannot benchmark: " + "; ".join(problems))
    settings = options.settings
    started = time.perf_counter()
    set_threads(options.threads)
    log.info("machine: measuring memory bandwidth")
    bandwidth = memory_bandwidth()
    with tempfile.TemporaryDirectory(prefix="lingolite-bench-") as tmp:
        work = Path(tmp)
        source = prepare_source(options, work)
        specs = build_exports(options, source, work)
        inputs = load_inputs(options, source)
        forced = not source.trained
        max_length = settings.forced_length if forced else source.config.max_tgt_len
        ids = SpecialIds(source.config.bos_id, source.config.eos_id, source.config.pad_id)
        results: dict[str, dict[str, Any]] = {}
        profiles: dict[str, Any] = {}
        threads: dict[str, int] = {}
        for spec in tqdm(specs, desc="backends", unit="backend", disable=None):
            log.info("measuring %s", spec.name)
            load_ms, runner = timed(lambda: open_runner(spec, options.threads, ids))  # noqa: B023
            threads = thread_counts(options.threads)
            measured = measure_backend(runner, inputs, settings, forced, max_length)
            entry: dict[str, Any] = {
                **spec.to_dict(),
                "load_s": round(load_ms / 1e3, 2),
                "metrics": measured.metrics,
                "details": measured.details,
                "outputs": measured.outputs,
            }
            entry["metrics"]["size_mib"] = size_on_disk(spec) / 2**20
            if isinstance(runner, SearchRunner):
                entry["search_profile"] = search_profile(
                    runner, spec.kind, [[x] for x in inputs.latency[:3]], 1, max_length, forced
                )
                if spec.name == BEAM_PROFILED:
                    entry["search_profile_beam4_b32"] = search_profile(
                        runner,
                        spec.kind,
                        [inputs.throughput[:BATCH_SIZE]],
                        BEAM,
                        max_length,
                        forced,
                    )
            if inputs.references:
                for key in ("greedy", "beam4"):
                    q = quality(source.tokenizer, measured.outputs[f"{key}_b32"], inputs.references)
                    entry[f"quality_{key}"] = q
                    entry["metrics"][f"bleu_{key}"] = q["bleu"]
                    entry["metrics"][f"chrf_{key}"] = q["chrf"]
            results[spec.name] = entry
            del runner
            gc.collect()
        if any(s.kind == "onnxruntime" for s in specs):
            log.info("profiling the ONNX Runtime int8 decoder step")
            onnx_dir = Path(next(s.path for s in specs if s.kind == "onnxruntime"))
            profiles["onnxruntime_int8_ops"] = onnx_op_profile(
                onnx_dir, "int8", options.threads, settings.forced_length
            )
        et_int8 = [s for s in specs if s.kind == "executorch" and s.precision != "fp32"]
        if et_int8:
            log.info("profiling the ExecuTorch %s decoder step (ETDump)", et_int8[0].precision)
            profiles[f"executorch_{et_int8[0].precision}_ops"] = executorch_op_profile(
                Path(et_int8[0].path), et_int8[0].precision, options.threads, settings.repeats * 4
            )
        for spec in tqdm(specs, desc="memory probes", unit="backend", disable=None):
            log.info("memory probe: %s (own process)", spec.name)
            request = {
                "spec": spec.to_dict(),
                "threads": options.threads,
                "ids": dataclasses.asdict(ids),
                "sources": inputs.throughput[:BATCH_SIZE],
                "batch_size": BATCH_SIZE,
                "num_beams": [BEAM],
                "max_length": max_length,
                "forced": forced,
            }
            memory = run_probe(request, work)
            results[spec.name]["memory"] = memory
            results[spec.name]["metrics"]["peak_rss_mib"] = memory["peak_rss_mib"]
    reference = results[BASELINE]["outputs"]
    for entry in results.values():
        entry["parity"] = {
            key: parity(reference[key], entry["outputs"][key])
            for key in ("greedy_b1", "greedy_b32")
        }
        entry["ratios"] = ratios(entry["metrics"], results[BASELINE]["metrics"])
        entry["outputs"] = {k: v[:4] for k, v in entry["outputs"].items()}  # a sample only
    floor = weight_floor(source.config, bandwidth["best_gb_s"])
    report = {
        "command": options.command,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "threads": {"requested": options.threads, **threads},
        "versions": versions(),
        "model": {
            **source.config.to_dict(),
            "trained": source.trained,
            "checkpoint": str(options.checkpoint) if options.checkpoint else None,
            "parameters": source.parameters,
        },
        "settings": {
            **dataclasses.asdict(settings),
            "quick": options.quick,
            "forced": forced,
            "max_length": max_length,
            "batch_size": BATCH_SIZE,
            "beam": BEAM,
            "inputs": inputs.description,
            "latency_sentences": len(inputs.latency),
            "throughput_sentences": len(inputs.throughput),
        },
        "bandwidth": bandwidth,
        "floor": floor,
        "backends": results,
        "profiles": profiles,
        "targets": targets(results, options.size or source.config.name, floor),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_outputs(report, options.out)
    return report


def versions() -> dict[str, str]:
    import platform

    found = {"python": platform.python_version()}
    for name in (
        "lingolite",
        "torch",
        "onnxruntime",
        "executorch",
        "torchao",
        "ctranslate2",
        "transformers",
        "optimum-onnx",
        "numpy",
        "sacrebleu",
    ):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def main(argv: list[str] | None = None, prog: str = "python -m benchmarks.run") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(PRESETS), help="preset (seeded, untrained)")
    parser.add_argument("--checkpoint", type=Path, help="trained checkpoint folder")
    parser.add_argument(
        "--marian", type=Path,
        help="Hugging Face Marian (OPUS-MT) folder: imported, and side by side with Optimum "
        "and CTranslate2 on the same weights",
    )  # fmt: skip
    parser.add_argument(
        "--data", type=Path, help=f"corpus folder with {BLEU_SPLIT}.{{en,de}}[.gz] (BLEU, chrF)"
    )
    parser.add_argument("--out", type=Path, help="results folder (default benchmarks/results/NAME)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny preset, 32-token lengths, few repeats and sentences (CI)",
    )
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of every runtime")
    parser.add_argument("--seed", type=int, default=0, help="seed of the untrained init")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    named = args.marian or args.checkpoint
    name = named.resolve().name if named else (args.size or "tiny")
    out = args.out or Path("benchmarks/results") / (f"{name}-quick" if args.quick else name)
    command = "python -m benchmarks.run " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    options = BenchOptions(
        out=out,
        size=args.size,
        checkpoint=args.checkpoint,
        data=args.data,
        quick=args.quick,
        threads=args.threads,
        seed=args.seed,
        command=command,
        marian=args.marian,
    )
    try:
        report = run_benchmark(options)
    except (BenchmarkError, FileExistsError) as exc:
        log.error("%s", exc)
        return 2
    log.info("wrote %s (%.0f s)", out, report["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
