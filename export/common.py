"""Plumbing shared by the exporters (``export.onnx``, ``export.executorch``).

An exporter is a thin sequence of stages over these pieces:

1. :func:`add_common_arguments` / :meth:`ExportOptions.from_args`: the flags every exporter takes
   (``--size``, ``--checkpoint``, ``--tokenizer``, ``--out``, ``--max-src-len``,
   ``--max-tgt-len``, ``--data``, ``--seed``, ``--force``); :meth:`ExportOptions.problems` lists
   every invalid option at once, before any work starts.
2. :func:`load_source`: the model to export and its tokenizer. With ``--checkpoint`` both come
   from the checkpoint folder (``config.json`` + ``model.safetensors`` + ``tokenizer.json`` +
   ``spm.model``) and the export is marked trained. Without it, the model is the preset's
   seeded initialisation, logged as UNTRAINED and marked ``"trained": false``, so the pipeline
   and latency work need no training. An untrained model keeps the preset's vocabulary size
   (24000), so its graphs have the real cost; its tokenizer is ``--tokenizer DIR`` or, by
   default, a small tokenizer trained on the deterministic built-in sample of
   :func:`export.sample.sample_texts` (256 short sentences in each of cs, de, en, fr), so the
   folder is self-contained on a fresh machine without data. Ids beyond the tokenizer's
   vocabulary, which only an untrained model emits, decode as ``<unk>`` (see
   ``runtime.translator``).
3. :func:`export_folder`: build everything in a temporary folder beside ``--out`` and rename it
   into place at the end; a failed parity gate moves the build to ``<out>.failed`` instead.
4. :func:`write_tokenizer` and :func:`manifest_base`: the shared part of ``manifest.json``.
5. :func:`parity_gate`: run :func:`export.parity.check_artifacts` over every variant, write
   ``parity.json`` (before the manifest, so it is hashed too) and raise :class:`ParityError`
   when a gated check fails.

:class:`Progress` logs the stages as ``[i/n] ...`` with their durations.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import logging
import os
import platform
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from export.parity import (
    BLEU_SPLIT,
    BleuSet,
    ParityReport,
    check_artifacts,
    parity_inputs,
    reference_model,
)
from export.sample import builtin_tokenizer
from export.vocab import vocab_for, write_vocab
from lingolite.checkpoint import read_config
from lingolite.config import PRESETS, ModelConfig
from lingolite.data import parse_pairs
from lingolite.marian_tokenizer import SOURCE_MODEL_FILE, MarianTokenizer
from lingolite.model import LingoLite
from lingolite.tokenizer import CONFIG_FILE, MODEL_FILE, Tokenizer
from lingolite.tokenizers import TextTokenizer, load_tokenizer
from lingolite.utils import (
    EXPORT_MARKERS,
    add_quiet_argument,
    atomic_directory,
    replace_refusal,
)
from runtime.manifest import Manifest

log = logging.getLogger(__name__)

PARITY_FILE = "parity.json"
FAILED_SUFFIX = ".failed"


class ExportError(ValueError):
    """Invalid export options or inputs; the message lists every problem."""


class ParityError(RuntimeError):
    """The exported programs do not translate like eager PyTorch; carries the reports."""

    def __init__(self, reports: dict[str, ParityReport]) -> None:
        failed = {name: r for name, r in reports.items() if not r.passed}
        lines = [f"{name}: {problem}" for name, r in failed.items() for problem in r.failures()]
        super().__init__("parity failed: " + "; ".join(lines))
        self.reports = reports


# ---------------------------------------------------------------------- options


def add_common_arguments(parser: argparse.ArgumentParser, suffix: str) -> None:
    """Add the flags shared by every exporter; ``suffix`` names the default out folder."""
    parser.add_argument(
        "--size",
        choices=sorted(PRESETS),
        help="preset to export (seeded, untrained init unless --checkpoint)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="trained checkpoint folder; its config.json decides the model",
    )
    parser.add_argument(
        "--tokenizer",
        type=Path,
        help="tokenizer folder for an untrained export (default: a small "
        "tokenizer trained on a built-in sample text)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=f"artifact folder (default artifacts/<size>-{suffix} or "
        f"artifacts/<checkpoint-name>-{suffix})",
    )
    parser.add_argument("--max-src-len", type=int, help="override the config's max_src_len")
    parser.add_argument(
        "--max-tgt-len",
        type=int,
        help="override the config's max_tgt_len (the static KV-cache length)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="folder with test sets (--data-split) of the model's directions: real parity "
        "sentences, and the BLEU gate of quantized programs",
    )
    parser.add_argument(
        "--data-split",
        default=BLEU_SPLIT,
        help=f"the test set's name in --data, in any corpus form (default {BLEU_SPLIT}); "
        "directions without one are left out of the gate",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the untrained init")
    parser.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    add_quiet_argument(parser)


@dataclass(frozen=True)
class ExportOptions:
    """What every exporter needs to know; ``out`` is resolved to its default when omitted."""

    out: Path
    size: str | None = None
    checkpoint: Path | None = None
    tokenizer: Path | None = None
    max_src_len: int | None = None
    max_tgt_len: int | None = None
    data: Path | None = None
    data_split: str = BLEU_SPLIT
    seed: int = 0
    force: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace, suffix: str) -> ExportOptions:
        out = args.out
        if out is None:
            name = args.checkpoint.resolve().name if args.checkpoint else args.size
            out = Path("artifacts") / f"{name}-{suffix}"
        return cls(
            out=out,
            size=args.size,
            checkpoint=args.checkpoint,
            tokenizer=args.tokenizer,
            max_src_len=args.max_src_len,
            max_tgt_len=args.max_tgt_len,
            data=args.data,
            data_split=args.data_split,
            seed=args.seed,
            force=args.force,
        )

    def problems(self) -> list[str]:
        """Every invalid option (empty when the options are usable)."""
        found = []
        if self.size is None and self.checkpoint is None:
            found.append("give --size (untrained export) or --checkpoint DIR")
        if self.size is not None and self.size not in PRESETS:
            found.append(f"--size {self.size!r} is not one of {sorted(PRESETS)}")
        if self.checkpoint is not None and not (self.checkpoint / "config.json").is_file():
            found.append(
                f"--checkpoint {self.checkpoint} is not a checkpoint folder (no config.json)"
            )
        if self.checkpoint is not None and self.tokenizer is not None:
            found.append(
                "--tokenizer is only for untrained exports: a checkpoint carries its own tokenizer"
            )
        if self.tokenizer is not None and not (self.tokenizer / CONFIG_FILE).is_file():
            found.append(f"--tokenizer {self.tokenizer} has no {CONFIG_FILE}")
        for flag, value in (
            ("--max-src-len", self.max_src_len),
            ("--max-tgt-len", self.max_tgt_len),
        ):
            if value is not None and value < 2:
                found.append(f"{flag} must be >= 2, got {value}")
        if self.data is not None and not self.data.is_dir():
            found.append(f"--data {self.data} is not a folder")
        refusal = replace_refusal(self.out, force=self.force, markers=EXPORT_MARKERS)
        if refusal is not None:
            found.append(f"--out: {refusal}")
        return found

    def check(self) -> None:
        problems = self.problems()
        if problems:
            raise ExportError("cannot export: " + "; ".join(problems))

    def overrides(self) -> dict[str, int]:
        given = {"max_src_len": self.max_src_len, "max_tgt_len": self.max_tgt_len}
        return {k: v for k, v in given.items() if v is not None}


# ---------------------------------------------------------------------- model and tokenizer


@dataclass(frozen=True)
class ExportSource:
    """The eager model being exported (eval mode) and what the manifest says about it."""

    model: LingoLite
    tokenizer: TextTokenizer
    trained: bool
    source: str
    seed: int
    sentences: list[tuple[str, str]]
    bleu_sets: tuple[BleuSet, ...]
    # The directions the model was trained on ("en-de", ...): the manifest's language-pair
    # contract. A checkpoint without a training record serves every pair of its languages.
    directions: tuple[str, ...] = ()

    @property
    def config(self) -> ModelConfig:
        return self.model.config


def load_source(options: ExportOptions) -> ExportSource:
    """Build the model and tokenizer to export (see the module docstring)."""
    overrides = options.overrides()
    if options.checkpoint is not None:
        trained_config, checkpoint_data = read_config(options.checkpoint)
        config = trained_config.replace(**overrides)
        problems = _preset_mismatches(options.size, config) if options.size else []
        for key, value in overrides.items():
            if value > getattr(trained_config, key):
                log.warning(
                    "%s %d exceeds the checkpoint's %d: positions beyond it were never trained",
                    key,
                    value,
                    getattr(trained_config, key),
                )
        tokenizer = load_tokenizer(options.checkpoint)
        trained, source = True, str(options.checkpoint)
        directions, direction_problems = trained_directions(checkpoint_data, tokenizer)
        problems += direction_problems
    else:
        assert options.size is not None  # ExportOptions.check
        config = ModelConfig.from_name(options.size, **overrides)
        problems = []
        if options.tokenizer is not None:
            tokenizer = load_tokenizer(options.tokenizer)
        else:
            tokenizer = builtin_tokenizer()
        trained, source = False, f"seeded init (seed {options.seed})"
        directions = tokenizer.directions
    problems += _tokenizer_mismatches(config, tokenizer)
    sentences: list[tuple[str, str]] = []
    bleu_sets: tuple[BleuSet, ...] = ()
    if directions:  # none: the direction problems above already say why
        try:
            sentences, bleu_sets = parity_inputs(
                parse_pairs(",".join(directions)), options.data, options.data_split
            )
        except ValueError as exc:
            problems.append(f"--data {options.data}: {exc}")
    if problems:
        raise ExportError("cannot export: " + "; ".join(problems))
    model = reference_model(config, options.checkpoint, options.seed)
    if not trained:
        log.warning(
            "UNTRAINED export: %s preset with seeded random weights (seed %d); its "
            "translations are meaningless, use it for pipeline and latency work only",
            options.size,
            options.seed,
        )
    log.info(
        "model: %s, %.2fM parameters, vocab %d (tokenizer %d), max_src_len %d, max_tgt_len %d",
        source,
        model.num_parameters() / 1e6,
        config.vocab_size,
        tokenizer.vocab_size,
        config.max_src_len,
        config.max_tgt_len,
    )
    log.info("directions: %s", ", ".join(directions))
    return ExportSource(
        model, tokenizer, trained, source, options.seed, sentences, bleu_sets, directions
    )


def trained_directions(
    checkpoint_data: dict[str, Any], tokenizer: TextTokenizer
) -> tuple[tuple[str, ...], list[str]]:
    """The checkpoint's trained directions (its ``training.pairs``) and any problems with them.

    A checkpoint without a training record (made by other tools) serves its tokenizer's
    ``directions`` (every pair of a LingoLite tokenizer's languages), with a warning.
    """
    training = checkpoint_data.get("training")
    pairs = training.get("pairs") if isinstance(training, dict) else None
    if pairs is None:
        log.warning(
            "the checkpoint records no trained directions; serving the tokenizer's: %s",
            ", ".join(tokenizer.directions),
        )
        return tokenizer.directions, []
    if not isinstance(pairs, list) or not all(isinstance(p, str) for p in pairs):
        return (), [f"training.pairs must be a list of 'src-tgt' strings, got {pairs!r}"]
    try:
        directions = parse_pairs(",".join(pairs))
    except ValueError as exc:
        return (), [f"training.pairs: {exc}"]
    unknown = sorted({lang for d in directions for lang in d} - set(tokenizer.languages))
    if unknown:
        return (), [f"training.pairs {pairs} name languages {unknown} the tokenizer lacks"]
    return tuple(map(str, directions)), []


def _preset_mismatches(size: str, config: ModelConfig) -> list[str]:
    diffs = {
        k: (v, getattr(config, k)) for k, v in PRESETS[size].items() if getattr(config, k) != v
    }
    return [
        f"--size {size} has {k}={want} but the checkpoint has {got}"
        for k, (want, got) in diffs.items()
    ]


def _tokenizer_mismatches(config: ModelConfig, tokenizer: TextTokenizer) -> list[str]:
    problems = []
    if tokenizer.vocab_size > config.vocab_size:
        problems.append(
            f"the tokenizer has {tokenizer.vocab_size} pieces but the model's "
            f"vocab_size is {config.vocab_size}"
        )
    for name in ("pad", "bos", "eos", "unk"):
        want, got = getattr(config, f"{name}_id"), getattr(tokenizer, f"{name}_id")
        if want != got:
            problems.append(f"{name}_id is {want} in the model config but {got} in the tokenizer")
    return problems


# ---------------------------------------------------------------------- folder and manifest


@contextlib.contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit`` inside the block (main thread only), so that cleanup
    (removing a temporary export folder) runs when the export is terminated; SIGKILL cannot be
    caught, and the next export removes what it leaves (``remove_stale_temporaries``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, _: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def export_folder(out: Path, *, force: bool) -> Iterator[Path]:
    """Yield a temporary folder beside ``out`` that becomes ``out`` when the block succeeds.

    Any exception removes the temporary folder, except :class:`ParityError`, which moves it to
    ``<out>.failed`` for inspection (it has no ``manifest.json``, so no runtime loads it). ``out``
    itself is untouched by a failure. A success removes a stale ``<out>.failed``.
    """
    failed = out.with_name(out.name + FAILED_SUFFIX)
    with exit_on_sigterm(), atomic_directory(out, force=force, markers=EXPORT_MARKERS) as tmp:
        try:
            yield tmp
        except ParityError:
            shutil.rmtree(failed, ignore_errors=True)
            os.replace(tmp, failed)
            log.error(
                "parity FAILED; the unfinished export is kept in %s (no manifest.json)", failed
            )
            raise
    shutil.rmtree(failed, ignore_errors=True)


def write_tokenizer(tokenizer: TextTokenizer, folder: Path) -> dict[str, Any]:
    """Save the tokenizer files into ``folder``; returns the manifest's ``tokenizer`` section.

    Besides the tokenizer's own files, ``vocab.json`` (export/vocab.py: pieces, scores, types and
    the normaliser's compiled rules; for a :class:`MarianTokenizer` those of ``source.spm`` plus
    Marian's id map, special and language-code ids) lets the Android demo's pure-Java tokenizer
    and the browser demo's JavaScript one reproduce the same ids. The manifest's ``model`` is
    ``spm.model``, or ``source.spm`` for a Marian tokenizer (the model that encodes sources).
    """
    tokenizer.save(folder)
    if isinstance(tokenizer, Tokenizer):
        model = MODEL_FILE
    elif isinstance(tokenizer, MarianTokenizer):
        model = SOURCE_MODEL_FILE
    else:
        raise TypeError(f"cannot export a {type(tokenizer).__name__}")
    vocab = write_vocab(vocab_for(tokenizer), folder).name
    return {
        "config": CONFIG_FILE,
        "type": tokenizer.config()["type"],
        "model": model,
        "vocab": vocab,
        "languages": list(tokenizer.languages),
        "lang_ids": tokenizer.lang_ids,
        "pad_id": tokenizer.pad_id,
        "bos_id": tokenizer.bos_id,
        "eos_id": tokenizer.eos_id,
        "unk_id": tokenizer.unk_id,
        "vocab_size": tokenizer.vocab_size,
    }


def package_versions(*packages: str) -> dict[str, str]:
    """Installed versions of lingolite, torch, python and ``packages``."""
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("lingolite", *packages):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def manifest_base(src: ExportSource, folder: Path, exporter: str, **export: Any) -> dict[str, Any]:
    """The exporter-independent part of ``manifest.json``; writes the tokenizer into ``folder``.

    Adds to the schema of ``runtime/manifest.py``: ``tokenizer.vocab_size`` and ``export``
    (the exporter module, the init seed and exporter options such as the quantization).
    """
    return {
        "model": src.config.to_dict(),
        "trained": src.trained,
        "source": src.source,
        "tokenizer": write_tokenizer(src.tokenizer, folder),
        "directions": list(src.directions),
        "export": {"exporter": exporter, "seed": src.seed, **export},
        "variants": {},
    }


def parity_gate(src: ExportSource, manifest: Manifest) -> dict[str, ParityReport]:
    """Check every variant of ``manifest`` against the eager model; write ``parity.json``.

    Raises :class:`ParityError` (after writing the file) when a gated check fails.
    """
    reports = check_artifacts(
        src.model,
        src.tokenizer,
        manifest,
        trained=src.trained,
        sentences=src.sentences,
        bleu_sets=src.bleu_sets,
        seed=src.seed,
    )
    for report in reports.values():
        for line in report.summary().splitlines():
            log.info("%s", line)
    data = {
        "passed": all(r.passed for r in reports.values()),
        "variants": {name: r.to_dict() for name, r in reports.items()},
    }
    (manifest.folder / PARITY_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if not data["passed"]:
        raise ParityError(reports)
    return reports


class Progress:
    """Stage-by-stage progress: ``[i/n] title ...`` then ``[i/n] done in 1.2 s``."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.index = 0
        self.start = time.perf_counter()

    @contextlib.contextmanager
    def stage(self, title: str) -> Iterator[None]:
        self.index += 1
        tag = f"[{self.index}/{self.total}]"
        log.info("%s %s ...", tag, title)
        start = time.perf_counter()
        yield
        log.info("%s done in %.1f s", tag, time.perf_counter() - start)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start
