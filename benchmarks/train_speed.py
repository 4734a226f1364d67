"""Training throughput of the CPU levers against fp32 training, interleaved in one run.

``python -m benchmarks.train_speed --data DIR [--data ...] --pairs en-de,de-en --size tiny
--steps N [--warmup N] [--options baseline,bf16,...] [--max-tokens N] --out FOLDER``

Every option is a set of :class:`lingolite.train.TrainConfig` changes (:data:`LEVERS`); the
``baseline`` is fp32 with every other default, and every option starts from it (:data:`FP32`:
TrainConfig's default ``amp`` is auto, bf16 where the CPU has it natively). Each option gets its own
run of the real training code (:class:`lingolite.train.Trainer`, same seed, so the same initial
weights and the same batches), all set up first and then stepped in turn, one step each per round,
so that load from other work on a shared machine falls on every option alike. Each option keeps its
own torch RNG state (its dropout masks do not depend on the interleaving).

Measured per option, over the ``--steps`` steps after its ``--warmup`` (compilation and first-touch
costs fall in the warm-up; the first step's seconds are reported):

- real target tokens per second (the trainer's own count, summed tokens over summed step time);
- padding share: padded tokens / all tokens of the trained batches, source and target together
  (the batcher sorts the whole training set by length, so no lever changes it; it is reported
  to show what tighter bucketing could still win);
- mean train loss over the measured steps and, after the last step, the validation loss per target
  token of the first ``--val-max`` validation examples (quality at equal steps: "equal loss per
  token" compares these with the baseline's).

Then the ``best`` combination: every measured lever whose speed ratio is at least ``1 +
--min-gain`` and whose mean train loss is within ``--loss-tol`` of the baseline's (of exclusive
levers, such as two AdamW kernels, the faster), measured in a second interleaved phase together
with the baseline again. Every ratio is against the baseline's steps interleaved with that
option: the first phase's for the single levers, the second phase's for the best. Collation
(``lingolite.data.collate``) is timed on its own: its share of a step is the most a background
data-loading thread could save. ``bf16`` is reported as skipped on a CPU without bf16 support
(``avx512_bf16`` or ``amx_bf16``); ``compile`` is opt-in (``--options``): its first step
compiles for minutes on a small machine.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.resources
import json
import logging
import math
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import torch

from benchmarks.measure import machine
from benchmarks.report import table
from lingolite.data import Example, collate
from lingolite.tokenizer import Tokenizer
from lingolite.train import (
    TOKENIZER,
    TrainConfig,
    Trainer,
    cpu_bf16,
    init_distributed,
    validation_loss,
)

log = logging.getLogger("benchmarks.train_speed")


@dataclass(frozen=True)
class Lever:
    """One option of the benchmark: TrainConfig changes and what they do."""

    name: str
    changes: dict[str, Any]
    what: str
    # Levers of one group exclude each other in the best combination (the faster one is kept).
    group: str = ""


# Every option starts from fp32 (TrainConfig's auto amp would differ between hosts).
FP32: dict[str, Any] = {"amp": False}
LEVERS: dict[str, Lever] = {
    lever.name: lever
    for lever in (
        Lever("baseline", {}, "fp32 (--no-amp), the other TrainConfig defaults"),
        Lever("bf16", {"amp": True}, "bf16 autocast (amp)"),
        Lever("fused_adamw", {"adamw_impl": "fused"}, "fused AdamW kernel", "adamw"),
        Lever("foreach_adamw", {"adamw_impl": "foreach"}, "foreach (multi-tensor) AdamW", "adamw"),
        Lever("threads_1", {"num_threads": 1}, "one torch thread", "threads"),
        Lever("compile", {"compile": True}, "torch.compile (dynamic shapes)"),
    )
}
DEFAULT_OPTIONS = ("baseline", "bf16", "fused_adamw", "foreach_adamw", "threads_1")
BEST = "best"
# Issue #37's aim: this many times the baseline's target tokens/s at equal loss.
AIM = 2.0


@dataclass
class Step:
    tokens: int
    seconds: float
    loss: float
    real: int  # real source + target tokens of the step's batches
    padded: int  # padded source + target tokens (batch * (s + t) summed)


@dataclass
class Option:
    """A measured option: its run, its RNG state and its steps."""

    name: str
    changes: dict[str, Any]
    what: str
    run: Trainer | None = None
    rng: torch.Tensor | None = None
    batches: Iterator[list[int]] | None = None
    steps: list[Step] = field(default_factory=list)
    # (real, padded) source + target tokens of every batch handed to the run.
    batch_tokens: list[tuple[int, int]] = field(default_factory=list)
    skipped: str = ""
    val_loss: float | None = None


def _recording(run: Trainer, sink: list[tuple[int, int]]) -> Iterator[list[int]]:
    """The run's batches, appending ``(real, padded)`` token counts of each to ``sink``."""
    examples = run.train_examples
    for indices in run.batcher:
        src = [len(examples[i].src) for i in indices]
        tgt = [len(examples[i].tgt) for i in indices]
        sink.append((sum(src) + sum(tgt), len(indices) * (max(src) + max(tgt))))
        yield indices


@dataclass
class Bench:
    """Settings of one benchmark run (the CLI flags)."""

    data: list[str]
    pairs: str
    out: Path
    size: str = "tiny"
    steps: int = 20
    warmup: int = 2
    options: Sequence[str] = DEFAULT_OPTIONS
    max_tokens: int = 4096
    vocab_size: int = 8000
    # Reuse this tokenizer folder; otherwise the baseline's run trains one (vocab_size pieces).
    tokenizer: Path | None = None
    # Start every option from this model folder's weights and tokenizer (TrainConfig.init_from):
    # a trained model's loss moves like a real run's, not like a random init's ln(vocab).
    init_from: Path | None = None
    val_max: int = 200
    min_gain: float = 0.03
    loss_tol: float = 0.02
    seed: int = 0
    # TrainConfig.warmup_steps of every option (None: its default). A short warm-up lets the
    # weights move within a short benchmark, so that the losses compare something.
    lr_warmup_steps: int | None = None
    model_overrides: dict[str, Any] = field(default_factory=dict)
    command: str = ""

    def problems(self) -> list[str]:
        p = [f"unknown option {o!r}; choose from {sorted(LEVERS)}" for o in self.options
             if o not in LEVERS]  # fmt: skip
        if "baseline" not in self.options:
            p.append(f"options must include baseline, got {list(self.options)}")
        if len(set(self.options)) != len(self.options):
            p.append(f"options repeat a name: {list(self.options)}")
        for name in ("steps", "val_max", "max_tokens", "vocab_size"):
            if getattr(self, name) < 1:
                p.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup", "loss_tol"):
            if getattr(self, name) < 0:
                p.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.data:
            p.append("give at least one data folder")
        if self.init_from is not None and self.tokenizer is not None:
            p.append("init_from brings its own tokenizer: do not give tokenizer as well")
        if self.init_from is not None and not (self.init_from / "config.json").is_file():
            p.append(f"init_from {self.init_from} is not a model folder (no config.json)")
        return p


class BenchError(ValueError):
    """Invalid benchmark options; the message lists every problem."""


def _prepare(option: Option, bench: Bench, tokenizer: Path | None, out: Path, threads: int) -> None:
    """Set up the option's run (``tokenizer`` None: train one into ``out/tokenizer``; with
    ``init_from``, the model folder's own)."""
    if bench.init_from is not None:
        tokenizer = None
    changes: dict[str, Any] = {**FP32, **option.changes}
    if bench.lr_warmup_steps is not None:
        changes["warmup_steps"] = bench.lr_warmup_steps
    cfg = TrainConfig(
        data=bench.data, pairs=bench.pairs, out=out, size=bench.size, tokenizer=tokenizer,
        vocab_size=bench.vocab_size, max_tokens=bench.max_tokens,
        max_steps=2 * (bench.warmup + bench.steps), device="cpu", seed=bench.seed,
        model_overrides=bench.model_overrides, init_from=bench.init_from, **changes,
    )  # fmt: skip
    problems = cfg.problems()
    if problems:
        raise BenchError(f"option {option.name}: " + "; ".join(problems))
    run = Trainer(cfg, init_distributed("cpu"))
    run.setup()
    torch.set_num_threads(threads)  # setup sets num_threads globally: each step sets its own
    run.model.train()
    option.run, option.rng = run, torch.get_rng_state()
    option.batches = _recording(run, option.batch_tokens)


def _step(option: Option, threads: int) -> None:
    run = option.run
    assert run is not None and option.batches is not None and option.rng is not None
    torch.set_num_threads(option.changes.get("num_threads", threads))
    torch.set_rng_state(option.rng)
    start = time.perf_counter()
    tokens, loss = run.train_step(option.batches)
    value = float(loss)  # the step's end (CPU ops are synchronous; this reads the result)
    seconds = time.perf_counter() - start
    option.rng = torch.get_rng_state()
    window = option.batch_tokens[-run.cfg.grad_accum :]
    real, padded = sum(w[0] for w in window), sum(w[1] for w in window)
    option.steps.append(Step(tokens, seconds, value, real, padded))


def _interleave(options: Sequence[Option], rounds: int, threads: int) -> None:
    for r in range(rounds):
        for option in options:
            _step(option, threads)
        log.info("round %d/%d: %s", r + 1, rounds,
                 ", ".join(f"{o.name} {o.steps[-1].seconds:.2f}s" for o in options))  # fmt: skip


def _validate(option: Option, val_max: int) -> None:
    run = option.run
    assert run is not None
    examples = [e for v in run.val_sets.values() for e in v][:val_max]
    torch.set_rng_state(option.rng)  # type: ignore[arg-type]
    option.val_loss = validation_loss(
        run.model, examples, max_tokens=run.cfg.max_tokens, pad_id=run.tokenizer.pad_id,
        bos_id=run.tokenizer.bos_id, device=run.device, amp=run.amp,
    ).loss  # fmt: skip


def collate_ms(examples: Sequence[Example], batches: Sequence[list[int]], tok: Tokenizer) -> float:
    """Median milliseconds to collate one of ``batches``."""
    times = []
    for indices in batches:
        start = time.perf_counter()
        collate([examples[i] for i in indices], tok.pad_id, tok.bos_id)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def summarize(option: Option, warmup: int, steps: int) -> dict[str, Any]:
    """Figures of one option over its steps ``warmup .. warmup + steps`` (no ratio).

    The baseline's later steps (run again beside the best combination) count only for the best's
    ratio (:func:`add_best_ratio`).
    """
    if option.skipped:
        return {"name": option.name, "what": option.what, "changes": option.changes,
                "status": "skipped", "reason": option.skipped}  # fmt: skip
    timed = option.steps[warmup : warmup + steps]
    seconds = sum(s.seconds for s in timed)
    return {
        "name": option.name,
        "what": option.what,
        "changes": option.changes,
        "status": "measured",
        "steps": len(timed),
        "tokens_per_s": sum(s.tokens for s in timed) / seconds,
        "seconds_per_step": seconds / len(timed),
        "first_step_s": option.steps[0].seconds,
        "padding_share": 1 - sum(s.real for s in timed) / sum(s.padded for s in timed),
        "mean_train_loss": statistics.fmean(s.loss for s in timed),
        "losses": [round(s.loss, 5) for s in option.steps[: warmup + steps]],
        "step_seconds": [round(s.seconds, 4) for s in option.steps[: warmup + steps]],
        "step_tokens": [s.tokens for s in option.steps[: warmup + steps]],
        "val_loss": option.val_loss,
    }


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each measured row against the baseline: ``speed_ratio``, ``loss_delta`` (mean train loss),
    ``max_step_loss_delta`` (largest per-step difference of the loss curves, warm-up included)
    and ``val_loss_delta``."""
    base = next(r for r in rows if r["name"] == "baseline")
    for row in rows:
        if row["status"] != "measured":
            continue
        row["speed_ratio"] = row["tokens_per_s"] / base["tokens_per_s"]
        row["loss_delta"] = row["mean_train_loss"] - base["mean_train_loss"]
        pairs = zip(row["losses"], base["losses"], strict=True)
        row["max_step_loss_delta"] = max(abs(a - b) for a, b in pairs)
        if row["val_loss"] is not None and base["val_loss"] is not None:
            row["val_loss_delta"] = row["val_loss"] - base["val_loss"]


def add_best_ratio(row: dict[str, Any], baseline_steps: Sequence[Step]) -> None:
    """The best's ``speed_ratio`` against the baseline steps interleaved with it (phase two)."""
    speed = sum(s.tokens for s in baseline_steps) / sum(s.seconds for s in baseline_steps)
    row["baseline_tokens_per_s"] = speed
    row["baseline_step_seconds"] = [round(s.seconds, 4) for s in baseline_steps]
    row["speed_ratio"] = row["tokens_per_s"] / speed


def best_changes(rows: Sequence[dict[str, Any]], min_gain: float, loss_tol: float) -> list[str]:
    """Names of the levers that pay (speed and equal loss), one per exclusive group."""
    paying = [
        r for r in rows
        if r["status"] == "measured" and r["name"] not in ("baseline", BEST)
        and r["speed_ratio"] >= 1 + min_gain and abs(r["loss_delta"]) <= loss_tol
    ]  # fmt: skip
    chosen: dict[str, dict[str, Any]] = {}
    for row in sorted(paying, key=lambda r: -r["speed_ratio"]):
        group = LEVERS[row["name"]].group or row["name"]
        chosen.setdefault(group, row)
    return sorted(r["name"] for r in chosen.values())


def run_bench(bench: Bench) -> dict[str, Any]:
    """Measure every option of ``bench`` and write ``results.json`` and ``results.md``."""
    problems = bench.problems()
    if problems:
        raise BenchError("invalid benchmark options: " + "; ".join(problems))
    started = time.monotonic()
    load_start = os.getloadavg()[0]
    threads = torch.get_num_threads()
    bf16_ok, bf16_why = cpu_bf16()
    options = [Option(n, dict(LEVERS[n].changes), LEVERS[n].what) for n in bench.options]
    for option in options:
        if option.changes.get("amp") and not bf16_ok:
            option.skipped = f"no bf16 support: {bf16_why}"
    with tempfile.TemporaryDirectory(prefix="lingolite-train-speed-") as tmp:
        workdir = Path(tmp)
        active = [o for o in options if not o.skipped]
        # The baseline (first) trains the tokenizer unless one is given; the others reuse it.
        tok_dir = workdir / "baseline" / TOKENIZER
        for option in active:
            given = bench.tokenizer if option.name == "baseline" else tok_dir
            _prepare(option, bench, given, workdir / option.name, threads)
        base = active[0]
        assert base.run is not None
        collate_median = collate_ms(
            base.run.train_examples, base.run.batcher.epoch_batches(0)[:20], base.run.tokenizer
        )
        _interleave(active, bench.warmup + bench.steps, threads)
        for option in active:
            _validate(option, bench.val_max)
        rows = [summarize(o, bench.warmup, bench.steps) for o in options]
        add_ratios(rows)
        chosen = best_changes(rows, bench.min_gain, bench.loss_tol)
        best = Option(BEST, {k: v for n in chosen for k, v in LEVERS[n].changes.items()},
                      " + ".join(chosen) or "nothing paid")  # fmt: skip
        if len(chosen) >= 2:
            _prepare(best, bench, tok_dir, workdir / BEST, threads)
            _interleave([base, best], bench.warmup + bench.steps, threads)
            _validate(best, bench.val_max)
            rows.append(summarize(best, bench.warmup, bench.steps))
            add_ratios(rows)
            add_best_ratio(rows[-1], base.steps[bench.warmup + bench.steps :])
        else:
            best.skipped = (
                f"one lever paid ({chosen[0]}): its row is the best" if chosen
                else "no lever paid"
            )  # fmt: skip
            rows.append(summarize(best, bench.warmup, bench.steps))
    step_s = next(r for r in rows if r["name"] == "baseline")["seconds_per_step"]
    report = {
        "command": bench.command,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(time.monotonic() - started, 1),
        "machine": machine(),
        "load_average_1m": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
        "torch": torch.__version__,
        "torch_threads": threads,
        "bf16": {"supported": bf16_ok, "why": bf16_why},
        "settings": {
            "data": bench.data,
            "pairs": bench.pairs,
            "size": bench.size,
            "steps": bench.steps,
            "warmup": bench.warmup,
            "max_tokens": bench.max_tokens,
            "val_max": bench.val_max,
            "lr_warmup_steps": (
                TrainConfig(data=[], pairs="", out=Path()).warmup_steps
                if bench.lr_warmup_steps is None
                else bench.lr_warmup_steps
            ),
            "min_gain": bench.min_gain,
            "loss_tol": bench.loss_tol,
            "seed": bench.seed,
            "model_overrides": bench.model_overrides,
            "init_from": None if bench.init_from is None else str(bench.init_from),
        },
        "collate_ms": collate_median,
        "collate_share": collate_median / 1e3 / step_s,
        "best": chosen,
        "options": rows,
    }
    write_report(report, bench.out)
    return report


# ---------------------------------------------------------------------- report


def _f(value: float | None, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def best_ratio(report: dict[str, Any]) -> float:
    """Speed ratio of the best combination (or of the single lever that paid; 1 if none)."""
    rows = {r["name"]: r for r in report["options"]}
    if rows[BEST]["status"] == "measured":
        return float(rows[BEST]["speed_ratio"])
    return float(rows[report["best"][0]]["speed_ratio"]) if report["best"] else 1.0


def markdown(report: dict[str, Any]) -> str:
    rows = []
    for r in report["options"]:
        if r["status"] != "measured":
            rows.append([f"`{r['name']}`", r["what"], f"skipped: {r['reason']}", *["-"] * 8])
            continue
        rows.append(
            [
                f"`{r['name']}`",
                r["what"],
                f"{r['tokens_per_s']:,.0f}",
                f"{r['first_step_s']:.1f}",
                f"**{r['speed_ratio']:.2f}x**",
                f"{100 * r['padding_share']:.1f}%",
                f"{r['mean_train_loss']:.4f}",
                f"{r['loss_delta']:+.4f}",
                f"{r['max_step_loss_delta']:.4f}",
                _f(r["val_loss"], ".4f"),
                _f(r.get("val_loss_delta"), "+.4f"),
            ]
        )
    header = ["option", "what", "target tok/s", "1st step s", "vs baseline", "padding",
              "train loss", "Δ loss", "max step Δ", "val loss", "Δ val"]  # fmt: skip
    aligns = ["---", "---", *["---:"] * 9]
    m, s = report["machine"], report["settings"]
    rows_by_name = {r["name"]: r for r in report["options"]}
    text = importlib.resources.files("benchmarks").joinpath("templates/train_speed.md")
    return Template(text.read_text(encoding="utf-8")).substitute(
        command=report["command"] or "(API call)",
        date=report["date"],
        seconds=f"{report['seconds']:.0f}",
        cpu=m.get("cpu", "?"),
        cores=m.get("usable_cores", "?"),
        load_start=report["load_average_1m"]["start"],
        load_end=report["load_average_1m"]["end"],
        torch=report["torch"],
        threads=report["torch_threads"],
        bf16=report["bf16"]["why"],
        size=s["size"],
        pairs=s["pairs"],
        data=", ".join(f"`{d}`" for d in s["data"]),
        max_tokens=s["max_tokens"],
        lr_warmup=s["lr_warmup_steps"],
        steps=s["steps"],
        warmup=s["warmup"],
        val_max=s["val_max"],
        weights=(
            f"`{s['init_from']}` (--init-from)"
            if s.get("init_from")
            else "the preset's seeded initialisation"
        ),
        min_gain=f"{100 * s['min_gain']:.0f}%",
        loss_tol=s["loss_tol"],
        results_table=table(header, aligns, rows),
        best=" + ".join(f"`{n}`" for n in report["best"]) or "none",
        best_ratio=f"{best_ratio(report):.2f}x",
        best_note=(
            " The best's “vs baseline” is against the baseline run again beside it "
            f"({rows_by_name[BEST]['baseline_tokens_per_s']:,.0f} target tok/s)."
            if rows_by_name[BEST]["status"] == "measured"
            else ""
        ),
        aim=f"{AIM:g}x",
        verdict="met" if best_ratio(report) >= AIM else "not met",
        collate_ms=f"{report['collate_ms']:.1f}",
        collate_share=f"{100 * report['collate_share']:.2f}%",
    )


def write_report(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("results.json", json.dumps(report, indent=1) + "\n"),
                       ("results.md", markdown(report))):  # fmt: skip
        tmp = out / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out / name)


def main(argv: list[str] | None = None, prog: str = "python -m benchmarks.train_speed") -> int:
    d = Bench(data=[], pairs="", out=Path())
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # fmt: skip
    p.add_argument("--data", action="append", required=True, metavar="DIR[,key=value...]")
    p.add_argument("--pairs", required=True, help="directions, e.g. en-de,de-en")
    p.add_argument("--out", type=Path, required=True, help="folder for results.json/.md")
    p.add_argument("--size", default=d.size)
    p.add_argument("--steps", type=int, default=d.steps, help="measured steps per option")
    p.add_argument("--warmup", type=int, default=d.warmup, help="unmeasured first steps")
    p.add_argument("--options", default=",".join(d.options),
                   help=f"comma-separated, from {sorted(LEVERS)}")  # fmt: skip
    p.add_argument("--max-tokens", type=int, default=d.max_tokens)
    p.add_argument("--vocab-size", type=int, default=d.vocab_size)
    p.add_argument("--tokenizer", type=Path, help="reuse this tokenizer folder")
    p.add_argument(
        "--init-from", type=Path, help="start every option from this trained model folder"
    )
    p.add_argument("--val-max", type=int, default=d.val_max, help="validation examples")
    p.add_argument("--min-gain", type=float, default=d.min_gain,
                   help="speed gain a lever needs to join the best combination")  # fmt: skip
    p.add_argument("--loss-tol", type=float, default=d.loss_tol,
                   help="largest |train loss - baseline's| of a lever in the best")  # fmt: skip
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--lr-warmup-steps", type=int, help="TrainConfig.warmup_steps of every option")
    args = vars(p.parse_args(argv))
    args["options"] = [o for o in args["options"].split(",") if o]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    command = "python -m benchmarks.train_speed " + shlex.join(argv or sys.argv[1:])
    try:
        report = run_bench(Bench(**args, command=command))
    except BenchError as exc:
        p.error(str(exc))
    print(markdown(report), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
