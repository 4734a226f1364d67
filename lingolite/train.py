"""Train a LingoLite model on a parallel corpus.

``python -m lingolite.train --data DIR --pairs en-de,de-en --size tiny --out runs/NAME [--resume]``

Several corpora are mixed by repeating ``--data``, each ``DIR[,key=value,...]`` with the keys of
:func:`lingolite.data.parse_corpus_spec` (``train``, ``valid``, ``pairs``, ``weight``,
``valid_max``); ``--init-from MODEL_DIR`` starts from a trained model's weights and tokenizer::

    python -m lingolite.train --pairs en-de,de-en --init-from pretrained/lingolite-tiny-multi30k \
      --data ../shared/data/multi30k \
      --data ../shared/data/general,train=news,valid=newstest2018,valid_max=500 \
      --data ../shared/data/general,train=tatoeba,valid=tatoeba-dev,weight=2 ...

and, unchanged, ``torchrun --nproc-per-node N -m lingolite.train ...`` for DistributedDataParallel.

Output folder (every folder is written to a temporary name and renamed into place, so a
half-written one never appears; only JSON, safetensors, the SentencePiece model and a PNG)::

    OUT/tokenizer/                 tokenizer.json + spm.model
    OUT/checkpoints/step-000500/   a self-contained model folder (config.json, model.safetensors,
                                   tokenizer.json, spm.model) plus the resumable trainer state:
                                   trainer_state.safetensors (optimizer moments "opt.{param}.{key}",
                                   torch RNG states) and trainer_state.json (step, batcher position,
                                   scheduler, numpy/python RNG, best validation loss, train args)
    OUT/best/                      model folder of the lowest validation loss (no trainer state)
    OUT/latest                     text file naming the newest checkpoint folder
    OUT/metrics.jsonl              one JSON object per event: "start"; "train" (mean train loss
                                   since the previous log, lr, real target tokens/s); "val" (loss,
                                   perplexity, target tokens)
    OUT/curves.png                 train and validation loss against step

Optimisation: AdamW (no weight decay on norm weights), linear warmup then inverse-square-root or
cosine decay, label-smoothed cross entropy over real target tokens (pad is ignored; bos is never a
target). One *step* is one optimizer update over ``grad_accum`` batches; the loss of a step is the
sum over its batches divided by the real target tokens of all of them (per process). Gradients
are clipped by their global L2 norm over all parameters: ``g <- g * min(1, c / (||g||_2 + 1e-6))``
with ``c = --clip-norm`` (0 disables clipping).

Speed options (``--amp``/``--no-amp`` bf16 autocast, ``--adamw-impl``, ``--compile``,
``--num-threads``) leave the algorithm as it is; ``python -m benchmarks.train_speed`` measures what
each pays on a machine (results under ``benchmarks/results/train_speed*``). bf16 autocast is on by
default where the device computes bf16 natively (:func:`native_bf16`: a CUDA GPU with bf16, a CPU
with ``avx512_bf16``/``amx_bf16`` and oneDNN) and off elsewhere (a CPU without it emulates bf16);
on CPU it gave fp32's loss within 3e-4 over 600 steps of a general-model stage
(``benchmarks/results/train_speed-bf16-stage``).

Batches (``--max-tokens``) are *per process*: each batch holds at most ``max_tokens`` padded tokens
on its longer side (``batch_size * max(src_len, tgt_len)``), so with N processes an optimizer step
sees about ``N * grad_accum * max_tokens`` tokens. Under torchrun each process takes every N-th
batch (:class:`lingolite.data.TokenBudgetBatcher`), gradients are averaged by DDP (per-process
token normalisation, then the mean over processes), and only rank 0 writes files and logs.

Resuming (``--resume``) restores model, optimizer, scheduler, RNG states and data position from
the newest checkpoint, so on CPU a resumed run's losses equal an uninterrupted run's bit for bit.
Under DDP only rank 0's RNG state is saved; other ranks reseed their dropout from
``(seed, rank, step)``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from lingolite.checkpoint import (
    check_state_dict,
    load_state,
    read_config,
    write_model_files,
)
from lingolite.config import PRESETS, ConfigError, ModelConfig
from lingolite.data import (
    Batch,
    Example,
    PairFilter,
    TokenBudgetBatcher,
    build_training_set,
    build_validation_sets,
    check_corpora,
    collate,
    example_lengths,
    iter_corpus_pairs,
    parse_corpus_spec,
    parse_pairs,
)
from lingolite.model import LingoLite
from lingolite.plotting import plot_curves, read_metrics
from lingolite.tokenizer import TokenId, Tokenizer
from lingolite.utils import atomic_directory, set_seed

log = logging.getLogger(__name__)

SCHEDULES = ("inverse_sqrt", "cosine")
DEVICES = ("auto", "cpu", "cuda")
# AdamW implementations: "auto" is "fused" on CUDA and "for-loop" (PyTorch's CPU default) on CPU.
ADAMW_IMPLS = ("auto", "for-loop", "foreach", "fused")
STATE_FORMAT_VERSION = 1
TRAINER_STATE_JSON = "trainer_state.json"
TRAINER_STATE_TENSORS = "trainer_state.safetensors"
CHECKPOINTS = "checkpoints"
BEST = "best"
TOKENIZER = "tokenizer"
LATEST = "latest"
METRICS = "metrics.jsonl"
CURVES = "curves.png"
# What --force removes from OUT (and nothing else).
OUTPUTS = (TOKENIZER, CHECKPOINTS, BEST, LATEST, METRICS, CURVES)
# Train args that fix the run's trajectory: a resumed run must be given the same values.
RESUME_MUST_MATCH = (
    "pairs", "size", "vocab_size", "max_src_len", "max_tgt_len", "max_tokens", "grad_accum", "lr",
    "warmup_steps", "schedule", "label_smoothing", "clip_norm", "weight_decay", "dropout", "seed",
    "train_split", "model_overrides", "data", "init_from", "max_length_ratio", "skip_bad_lines",
)  # fmt: skip


class TrainError(ValueError):
    """Invalid training options or output folder; the message lists every problem."""


@dataclass
class TrainConfig:
    """Every option of a training run (the CLI flags, with the same names)."""

    # Corpora: one ``DIR[,key=value,...]`` per corpus (see lingolite.data.parse_corpus_spec).
    data: list[str] | str | Path
    pairs: str
    out: Path
    size: str = "tiny"
    # Start from this model folder's weights, config and tokenizer (fine-tuning) instead of a
    # fresh preset model; --size, --vocab-size and --tokenizer are then not used.
    init_from: Path | None = None
    # Drop training pairs whose longer side has more than this many times the tokens of the
    # shorter (0: keep all); pairs with a bad line stop the run unless skip_bad_lines.
    max_length_ratio: float = 3.0
    skip_bad_lines: bool = False
    # Reuse this tokenizer folder; otherwise train one on the train split of every language.
    tokenizer: Path | None = None
    vocab_size: int = 8000
    max_src_len: int = 128
    max_tgt_len: int = 128
    # Per process: padded tokens of a batch's longer side (batch_size * max(src_len, tgt_len)).
    max_tokens: int = 4096
    grad_accum: int = 1
    lr: float = 1e-3
    warmup_steps: int = 500
    schedule: str = "inverse_sqrt"
    # Stop at whichever comes first; at least one of the three is needed.
    max_steps: int | None = None
    epochs: float | None = None
    time_budget_min: float | None = None
    label_smoothing: float = 0.1
    clip_norm: float = 1.0
    weight_decay: float = 0.01
    dropout: float = 0.1
    seed: int = 0
    eval_every: int = 500
    save_every: int = 1000
    # Checkpoints kept under OUT/checkpoints (0 keeps all).
    keep_last: int = 3
    log_every: int = 50
    device: str = "auto"
    # bf16 autocast: True, False, or None (auto: on where the device has native bf16).
    amp: bool | None = None
    num_threads: int | None = None
    # How AdamW updates the parameters (same algorithm, different kernels; see ADAMW_IMPLS).
    adamw_impl: str = "auto"
    # torch.compile the training forward (dynamic shapes); the first steps pay the compilation.
    compile: bool = False
    resume: bool = False
    force: bool = False
    train_split: str = "train"
    val_split: str = "val"
    # ModelConfig fields overriding the preset (API only; tests shrink the model with it).
    model_overrides: dict[str, Any] = field(default_factory=dict)

    def problems(self) -> list[str]:
        """Every invalid option, with its value."""
        p: list[str] = []
        if self.size not in PRESETS:
            p.append(f"size must be one of {sorted(PRESETS)}, got {self.size!r}")
        if self.schedule not in SCHEDULES:
            p.append(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if self.device not in DEVICES:
            p.append(f"device must be one of {list(DEVICES)}, got {self.device!r}")
        if self.adamw_impl not in ADAMW_IMPLS:
            p.append(f"adamw_impl must be one of {list(ADAMW_IMPLS)}, got {self.adamw_impl!r}")
        positive = ("vocab_size", "max_src_len", "max_tgt_len", "max_tokens", "grad_accum",
                    "eval_every", "save_every", "log_every")  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                p.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_tokens < max(self.max_src_len, self.max_tgt_len):
            p.append(
                f"max_tokens ({self.max_tokens}) must be >= max(max_src_len, max_tgt_len) "
                f"({max(self.max_src_len, self.max_tgt_len)}) so that every example fits a batch"
            )
        if not (self.lr > 0 and math.isfinite(self.lr)):
            p.append(f"lr must be finite and > 0, got {self.lr}")
        for name in ("warmup_steps", "keep_last"):
            if getattr(self, name) < 0:
                p.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.label_smoothing < 1:
            p.append(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.dropout < 1:
            p.append(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("clip_norm", "weight_decay"):
            if getattr(self, name) < 0:
                p.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            p.append(f"max_steps must be >= 1, got {self.max_steps}")
        if self.epochs is not None and not self.epochs > 0:
            p.append(f"epochs must be > 0, got {self.epochs}")
        if self.time_budget_min is not None and not self.time_budget_min > 0:
            p.append(f"time_budget_min must be > 0, got {self.time_budget_min}")
        if self.max_steps is None and self.epochs is None and self.time_budget_min is None:
            p.append("give at least one of max_steps, epochs, time_budget_min")
        if self.schedule == "cosine" and self.max_steps is None and self.epochs is None:
            p.append("the cosine schedule needs max_steps or epochs to know its length")
        if self.num_threads is not None and self.num_threads < 1:
            p.append(f"num_threads must be >= 1, got {self.num_threads}")
        if not (self.max_length_ratio == 0 or self.max_length_ratio >= 1):
            p.append(f"max_length_ratio must be 0 (off) or >= 1, got {self.max_length_ratio}")
        if self.init_from is not None and self.tokenizer is not None:
            p.append("init_from brings its own tokenizer: do not give tokenizer as well")
        if not self.data_specs():
            p.append("give at least one data folder")
        if self.resume and self.force:
            p.append("resume and force exclude each other (force clears the run to resume)")
        try:
            parse_pairs(self.pairs)
        except ValueError as exc:
            p.append(str(exc))
        return p

    def data_specs(self) -> list[str]:
        """The ``--data`` values as a list (one string per corpus)."""
        return (
            [str(self.data)] if isinstance(self.data, str | Path) else [str(d) for d in self.data]
        )

    def to_json(self) -> dict[str, Any]:
        values = {
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()
        }
        values["data"] = self.data_specs()
        return values


@dataclass
class TrainResult:
    """What a run did. ``losses[i]`` is the train loss of step ``start_step + i + 1``."""

    out: Path
    start_step: int
    final_step: int
    losses: list[float]
    val_losses: list[tuple[int, float]]
    best_val_loss: float | None
    best_dir: Path | None
    last_checkpoint: Path | None
    tokens_per_s: float
    stopped_by: str  # "max_steps", "time_budget" or "done" (a resumed run already finished)
    model: LingoLite


@dataclass(frozen=True)
class ValLoss:
    """Validation negative log-likelihood per real target token (no label smoothing)."""

    loss: float
    ppl: float
    tokens: int


# ---------------------------------------------------------------------- pieces tests call


class LRSchedule:
    """Multiplier of the peak learning rate after ``step`` optimizer updates (LambdaLR's lambda).

    Linear warmup over ``warmup`` steps to 1, then ``inverse_sqrt``: ``sqrt(warmup / n)``, or
    ``cosine``: ``0.5 * (1 + cos(pi * progress))`` falling to 0 at ``total`` steps. ``n = step + 1``
    is the number of the update the rate is used for.
    """

    def __init__(self, kind: str, warmup: int, total: int | None) -> None:
        if kind not in SCHEDULES:
            raise TrainError(f"schedule must be one of {list(SCHEDULES)}, got {kind!r}")
        if kind == "cosine" and total is None:
            raise TrainError("the cosine schedule needs a total number of steps")
        self.kind, self.warmup, self.total = kind, warmup, total

    def __call__(self, step: int) -> float:
        n = step + 1
        if n <= self.warmup:
            return n / self.warmup
        if self.kind == "inverse_sqrt":
            return math.sqrt(max(self.warmup, 1) / n)
        assert self.total is not None
        progress = min(1.0, (n - self.warmup) / max(1, self.total - self.warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def clip_gradients(parameters: Sequence[nn.Parameter], max_norm: float) -> Tensor:
    """Scale all gradients by ``min(1, max_norm / (||g||_2 + 1e-6))``; return ``||g||_2`` before.

    ``||g||_2`` is the L2 norm of all gradients concatenated. ``max_norm = 0`` only measures.
    Stays on the device (no host sync).
    """
    grads = [p for p in parameters if p.grad is not None]
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(grads, max_norm, foreach=True)
    return torch.nn.utils.get_total_norm([p.grad for p in grads if p.grad is not None])


def token_loss_sum(logits: Tensor, target: Tensor, pad_id: TokenId, smoothing: float) -> Tensor:
    """Sum over real target tokens of the (label-smoothed) cross entropy, in float32.

    logits ``(b, t, V)``, target ``(b, t)``; positions whose target is ``pad_id`` count nothing.
    Label smoothing spreads ``smoothing`` uniformly over all ``V`` classes (PyTorch's definition).
    """
    return F.cross_entropy(
        logits.flatten(0, 1).float(), target.flatten(), ignore_index=pad_id,
        label_smoothing=smoothing, reduction="sum",
    )  # fmt: skip


def validation_loss(
    model: nn.Module, examples: Sequence[Example], *, max_tokens: int, pad_id: TokenId,
    bos_id: TokenId, device: torch.device, amp: bool = False,
) -> ValLoss:  # fmt: skip
    """NLL per real target token (``tgt_out != pad``) over every example, in eval mode."""
    if not examples:
        raise TrainError("no validation examples")
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    tokens = 0
    batcher = TokenBudgetBatcher(example_lengths(examples), max_tokens, shuffle=False)
    with torch.no_grad():
        for indices in batcher.epoch_batches(0):
            batch = collate([examples[i] for i in indices], pad_id, bos_id)
            tokens += int((batch.tgt_out != pad_id).sum())
            batch = to_device(batch, device)
            with autocast(device, amp):
                logits = model(batch.src_ids, batch.src_mask, batch.tgt_in)  # (b, t, V)
            total += token_loss_sum(logits, batch.tgt_out, pad_id, 0.0)
    model.train(was_training)
    loss = float(total) / tokens
    return ValLoss(loss=loss, ppl=math.exp(min(loss, 700.0)), tokens=tokens)


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Move a batch; on CUDA through pinned memory so the copy overlaps compute."""
    if device.type != "cuda":
        return batch
    src_ids, src_mask, tgt_in, tgt_out, num_tgt_tokens = batch
    pinned = Batch(
        src_ids.pin_memory(), src_mask.pin_memory(), tgt_in.pin_memory(), tgt_out.pin_memory(),
        num_tgt_tokens,
    )  # fmt: skip
    return pinned.to(device, non_blocking=True)


def cpu_bf16(info: Path = Path("/proc/cpuinfo")) -> tuple[bool, str]:
    """Whether this CPU runs bf16 matrix products natively (its ``info`` flags), and the
    evidence."""
    flags: set[str] = set()
    if info.is_file():
        for line in info.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "flags":
                flags = set(value.split())
                break
    found = sorted(flags & {"avx512_bf16", "amx_bf16"})
    if not torch.backends.mkldnn.is_available():  # type: ignore[no-untyped-call]
        return False, "torch built without oneDNN (mkldnn)"
    if not found:
        return False, f"no avx512_bf16 or amx_bf16 in {info}"
    return True, f"oneDNN with {', '.join(found)}"


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether ``device`` computes bf16 natively (where auto ``amp`` turns autocast on), and why."""
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return True, f"{torch.cuda.get_device_name(device)} supports bf16"
        return False, f"{torch.cuda.get_device_name(device)} has no bf16"
    if device.type == "cpu":
        return cpu_bf16()
    return False, f"no bf16 autocast rule for device {device.type!r}"


def resolve_amp(amp: bool | None, device: torch.device) -> tuple[bool, str]:
    """``TrainConfig.amp`` made definite on ``device``, and why (None: :func:`native_bf16`)."""
    if amp is not None:
        return amp, "--amp" if amp else "--no-amp"
    native, why = native_bf16(device)
    return native, f"auto: {why}"


def autocast(device: torch.device, amp: bool) -> torch.autocast:
    """bf16 autocast on ``device`` when ``amp``; a disabled context otherwise."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)


def adamw_kernels(impl: str, device: torch.device) -> dict[str, bool]:
    """``torch.optim.AdamW`` keyword arguments of an :data:`ADAMW_IMPLS` choice on ``device``."""
    if impl not in ADAMW_IMPLS:
        raise TrainError(f"adamw_impl must be one of {list(ADAMW_IMPLS)}, got {impl!r}")
    if impl == "auto":
        impl = "fused" if device.type == "cuda" else "for-loop"
    if impl == "fused":
        return {"fused": True}
    return {"foreach": impl == "foreach"}


def find_checkpoints(out: Path) -> list[Path]:
    """Complete checkpoint folders under ``out/checkpoints``, oldest first."""
    folder = out / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("step-*") if p.is_dir() and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]))


# ---------------------------------------------------------------------- distributed


@dataclass(frozen=True)
class DistContext:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index or 0])
            else:
                dist.barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is True on any (a collective: all ranks must call)."""
        if self.world_size == 1:
            return flag
        value = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


def init_distributed(device_choice: str) -> DistContext:
    """Read torchrun's WORLD_SIZE/RANK/LOCAL_RANK and join the process group (nccl or gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device_choice == "cuda" and not torch.cuda.is_available():
        raise TrainError("device 'cuda' requested but torch.cuda.is_available() is False")
    use_cuda = device_choice == "cuda" or (device_choice == "auto" and torch.cuda.is_available())
    device = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            "nccl" if use_cuda else "gloo", device_id=device if use_cuda else None
        )
    return DistContext(rank, local, world, device)


# ---------------------------------------------------------------------- the run


class Trainer:
    """State of one training process; :func:`train` drives it (benchmarks step it directly)."""

    def __init__(self, cfg: TrainConfig, ctx: DistContext) -> None:
        self.cfg, self.ctx, self.out = cfg, ctx, Path(cfg.out)
        self.t_start = time.monotonic()
        self.device = ctx.device
        self.amp, self.amp_why = resolve_amp(cfg.amp, self.device)
        self.best_val_loss: float | None = None
        self.best_step: int | None = None
        self.val_losses: list[tuple[int, float]] = []
        self.losses: list[float] = []
        self._pending: list[Tensor] = []

    # ------------------------------------------------------------------ setup
    def prepare_out(self) -> Path | None:
        """Check OUT on every rank; clear it on ``force``; return the checkpoint to resume."""
        cfg, out = self.cfg, self.out
        resume_from = None
        if cfg.resume:
            found = find_checkpoints(out)
            if not found:
                raise TrainError(
                    f"--resume: no checkpoint under {out / CHECKPOINTS}; start without --resume "
                    "(add --force to clear the folder)"
                )
            resume_from = found[-1]
        elif out.exists() and (not out.is_dir() or any(out.iterdir())) and not cfg.force:
            raise TrainError(
                f"output folder {out} is not empty; pass --resume to continue its run or --force "
                "to start over (which deletes its checkpoints, best model and metrics)"
            )
        self.ctx.barrier()  # every rank has looked before rank 0 changes anything
        if self.ctx.is_main:
            if cfg.force and out.is_dir():
                for name in OUTPUTS:
                    path = out / name
                    if path.is_dir():
                        shutil.rmtree(path)
                    else:
                        path.unlink(missing_ok=True)
            out.mkdir(parents=True, exist_ok=True)
            # Temporary files and folders left by a run killed mid-save.
            for stale in [*out.glob(".*.tmp-*"), *(out / CHECKPOINTS).glob(".*.tmp-*")]:
                if stale.is_dir():
                    shutil.rmtree(stale)
                else:
                    stale.unlink()
        return resume_from

    def load_tokenizer(self, resume_from: Path | None) -> Tokenizer:
        """The checkpoint's tokenizer, ``--init-from``'s, ``--tokenizer``, or a new one.

        A new tokenizer is trained by rank 0 on both sides of every training corpus (each
        language pair of a corpus read once).
        """
        cfg, ctx, folder = self.cfg, self.ctx, self.out / TOKENIZER
        if resume_from is not None:
            return Tokenizer.from_pretrained(resume_from)
        given = cfg.init_from if cfg.init_from is not None else cfg.tokenizer
        if given is not None:
            tokenizer = Tokenizer.from_pretrained(given)
            if ctx.is_main:
                tokenizer.save(folder)
            return tokenizer
        if ctx.is_main:
            texts: dict[str, list[str]] = {}
            for spec in self.corpora:
                for pair in {tuple(sorted(d)) for d in spec.directions}:
                    for raw in iter_corpus_pairs(
                        spec.path, spec.train, (pair[0], pair[1]), skip_bad=cfg.skip_bad_lines
                    ):
                        texts.setdefault(raw.src_lang, []).append(raw.src)
                        texts.setdefault(raw.tgt_lang, []).append(raw.tgt)
            Tokenizer.train(texts, cfg.vocab_size).save(folder)
        ctx.barrier()
        return Tokenizer.from_pretrained(folder)

    def setup(self) -> None:
        cfg, ctx = self.cfg, self.ctx
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        pairs = parse_pairs(cfg.pairs)
        self.pairs = pairs
        self.corpora = [
            parse_corpus_spec(
                text, default_directions=pairs, default_train=cfg.train_split,
                default_valid=cfg.val_split,
            )
            for text in cfg.data_specs()
        ]  # fmt: skip
        outside = sorted(
            {str(d) for c in self.corpora for d in c.directions} - set(map(str, pairs))
        )
        if outside:
            raise TrainError(f"--data directions {outside} are not among --pairs {cfg.pairs!r}")
        check_corpora(self.corpora)
        resume_from = self.prepare_out()
        saved: dict[str, Any] | None = None
        if resume_from is not None:
            saved = self._read_saved_state(resume_from)
        self.tokenizer = self.load_tokenizer(resume_from)
        tok = self.tokenizer
        pair_filter = PairFilter(
            cfg.max_src_len, cfg.max_tgt_len, cfg.max_length_ratio, cfg.skip_bad_lines
        )
        self.train_examples = build_training_set(tok, self.corpora, pair_filter, seed=cfg.seed)
        self.val_sets = {
            name: examples
            for name, examples in build_validation_sets(tok, self.corpora, pair_filter).items()
            if examples
        }
        if not self.train_examples or not self.val_sets:
            raise TrainError(
                f"{len(self.train_examples)} training examples and validation sets "
                f"{sorted(self.val_sets)} from --data {cfg.data_specs()} for {cfg.pairs}: "
                "both must be non-empty (give a corpus a valid=SPLIT)"
            )
        self.batcher = TokenBudgetBatcher(
            example_lengths(self.train_examples), cfg.max_tokens, seed=cfg.seed,
            rank=ctx.rank, world_size=ctx.world_size,
        )  # fmt: skip
        steps_per_epoch = len(self.batcher) / cfg.grad_accum
        limits = []
        if cfg.max_steps is not None:
            limits.append(cfg.max_steps)
        if cfg.epochs is not None:
            limits.append(max(1, math.ceil(cfg.epochs * steps_per_epoch)))
        self.max_steps: int | None = min(limits) if limits else None

        set_seed(cfg.seed)
        if resume_from is not None:
            model_config, _ = read_config(resume_from)
        elif cfg.init_from is not None:
            model_config, _ = read_config(cfg.init_from)
            problems = [
                f"{name} {cfg_value} is longer than the model's {name} {model_value}"
                for name, cfg_value, model_value in (
                    ("max_src_len", cfg.max_src_len, model_config.max_src_len),
                    ("max_tgt_len", cfg.max_tgt_len, model_config.max_tgt_len),
                )
                if cfg_value > model_value
            ]
            if problems:
                raise TrainError(f"--init-from {cfg.init_from}: " + "; ".join(problems))
            model_config = dataclasses.replace(model_config, dropout=cfg.dropout)
        else:
            try:
                model_config = ModelConfig.from_name(
                    cfg.size, vocab_size=tok.vocab_size, max_src_len=cfg.max_src_len,
                    max_tgt_len=cfg.max_tgt_len, dropout=cfg.dropout, pad_id=tok.pad_id,
                    bos_id=tok.bos_id, eos_id=tok.eos_id, unk_id=tok.unk_id,
                    **cfg.model_overrides,
                )  # fmt: skip
            except (ConfigError, TypeError) as exc:
                raise TrainError(str(exc)) from exc
        self.model = LingoLite(model_config)
        if cfg.init_from is not None and resume_from is None:
            weights = load_state(cfg.init_from, "model.safetensors")
            check_state_dict(self.model.state_dict(), weights, str(cfg.init_from))
            self.model.load_state_dict(weights)
            log.info("initialised from %s", cfg.init_from)
        if ctx.world_size > 1:
            torch.manual_seed(cfg.seed + ctx.rank)  # same init, different dropout per rank
        self.model.to(self.device)
        self.names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        params = dict(self.model.named_parameters())
        # Norm weights (1-D) get no weight decay; matrices and the embedding do.
        decay = [n for n in self.names if params[n].ndim >= 2]
        no_decay = [n for n in self.names if params[n].ndim < 2]
        self.opt_names = decay + no_decay  # the optimizer's parameter order
        self.params = [params[n] for n in self.opt_names]
        self.optimizer = torch.optim.AdamW(
            [
                {"params": [params[n] for n in decay], "weight_decay": cfg.weight_decay},
                {"params": [params[n] for n in no_decay], "weight_decay": 0.0},
            ],
            lr=cfg.lr, betas=(0.9, 0.98), eps=1e-8,
            **adamw_kernels(cfg.adamw_impl, self.device),
        )  # fmt: skip
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, LRSchedule(cfg.schedule, cfg.warmup_steps, self.max_steps)
        )
        self.step = 0
        if saved is not None:
            assert resume_from is not None
            self._restore(resume_from, saved)
        self.train_model: nn.Module = self.model
        self.ddp: DistributedDataParallel | None = None
        if ctx.world_size > 1:
            ids = [self.device.index or 0] if self.device.type == "cuda" else None
            # The only buffers (rotary tables, causal mask) are constants: never re-broadcast.
            self.ddp = DistributedDataParallel(self.model, device_ids=ids, broadcast_buffers=False)
            self.train_model = self.ddp
        if cfg.compile:
            # Batches vary in shape: dynamic shapes avoid one compilation per (b, s, t).
            self.train_model = torch.compile(self.train_model, dynamic=True)  # type: ignore[assignment]
        log.info(
            "model %s: %.2fM parameters, %d train / %d val examples, %d batches per epoch per "
            "process, %s steps, device %s, bf16 autocast %s (%s), world size %d",
            cfg.size, self.model.num_parameters() / 1e6, len(self.train_examples),
            sum(map(len, self.val_sets.values())), len(self.batcher), self.max_steps or "unlimited",
            self.device, "on" if self.amp else "off", self.amp_why, ctx.world_size,
        )  # fmt: skip

    # ------------------------------------------------------------------ resume
    def _read_saved_state(self, folder: Path) -> dict[str, Any]:
        path = folder / TRAINER_STATE_JSON
        try:
            saved: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise TrainError(f"cannot read {path}: {exc}") from exc
        if saved.get("format_version") != STATE_FORMAT_VERSION:
            raise TrainError(f"{path}: unsupported format_version {saved.get('format_version')!r}")
        now, then = self.cfg.to_json(), saved["train_args"]
        keys = RESUME_MUST_MATCH + (
            ("max_steps", "epochs") if self.cfg.schedule == "cosine" else ()
        )
        diffs = [
            f"{k}: checkpoint {then.get(k)!r}, now {now[k]!r}"
            for k in keys
            if then.get(k) != now[k]
        ]
        if saved.get("world_size") != self.ctx.world_size:
            diffs.append(
                f"world_size: checkpoint {saved.get('world_size')}, now {self.ctx.world_size}"
            )
        if diffs:
            raise TrainError(f"cannot resume from {folder}, options differ: " + "; ".join(diffs))
        return saved

    def _restore(self, folder: Path, saved: dict[str, Any]) -> None:
        weights = load_state(folder, "model.safetensors")
        check_state_dict(self.model.state_dict(), weights, str(folder / "model.safetensors"))
        self.model.load_state_dict(weights)
        tensors = load_state(folder, TRAINER_STATE_TENSORS)
        state: dict[int, dict[str, Tensor]] = {}
        for index, name in enumerate(self.opt_names):
            prefix = f"opt.{name}."
            entry = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            if entry:
                state[index] = entry
        groups = self.optimizer.state_dict()["param_groups"]
        for group, saved_group in zip(groups, saved["optimizer_param_groups"], strict=True):
            group.update({k: tuple(v) if k == "betas" else v for k, v in saved_group.items()})
        self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        self.scheduler.load_state_dict({**saved["scheduler"], "lr_lambdas": [None, None]})
        self.batcher.load_state_dict(saved["batcher"])
        self.step = int(saved["step"])
        self.best_val_loss = saved["best_val_loss"]
        self.best_step = saved["best_step"]
        if self.ctx.is_main:
            torch.set_rng_state(tensors["rng.torch"])
            if self.device.type == "cuda" and "rng.cuda" in tensors:
                torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
            name, *rest = saved["numpy_rng"]
            np.random.set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), *rest))
            version, gauss_next = saved["python_rng"]
            random.setstate((version, tuple(tensors["rng.python"].tolist()), gauss_next))
        else:
            torch.manual_seed(self.cfg.seed + 1_000_003 * self.step + self.ctx.rank)
        if self.ctx.is_main:  # drop events of the interrupted run after this checkpoint
            records = [r for r in read_metrics(self.out / METRICS) if r.get("step", 0) <= self.step]
            _write_text(self.out / METRICS, "".join(json.dumps(r) + "\n" for r in records))
        log.info("resumed from %s at step %d (epoch %d)", folder, self.step, self.batcher.epoch)

    # ------------------------------------------------------------------ saving
    def _model_extra(self, val_loss: float | None) -> dict[str, Any]:
        pairs = [str(p) for p in self.pairs]
        languages = list(self.tokenizer.languages)
        return {"training": {"step": self.step, "pairs": pairs, "languages": languages,
                             "val_loss": val_loss}}  # fmt: skip

    def _write_model_folder(self, folder: Path, val_loss: float | None) -> None:
        write_model_files(self.model, folder, extra=self._model_extra(val_loss))
        self.tokenizer.save(folder)

    def save_checkpoint(self) -> Path:
        target = self.out / CHECKPOINTS / f"step-{self.step:06d}"
        with atomic_directory(target, force=True) as tmp:
            val = (
                self.val_losses[-1][1]
                if self.val_losses and self.val_losses[-1][0] == self.step
                else None
            )
            self._write_model_folder(tmp, val)
            tensors, meta = self._trainer_state()
            write_trainer_state(tmp, tensors, meta)
        _write_text(self.out / LATEST, f"{CHECKPOINTS}/{target.name}\n")
        if self.cfg.keep_last:
            for old in find_checkpoints(self.out)[: -self.cfg.keep_last]:
                shutil.rmtree(old)
        plot_curves(self.out / METRICS, self.out / CURVES)
        log.info("saved checkpoint %s", target)
        return target

    def _trainer_state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        opt_state = self.optimizer.state_dict()
        tensors: dict[str, Tensor] = {}
        for index, entry in opt_state["state"].items():
            for key, value in entry.items():
                tensors[f"opt.{self.opt_names[index]}.{key}"] = value.detach().cpu().contiguous()
        tensors["rng.torch"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        np_state: tuple[Any, ...] = np.random.get_state(legacy=True)  # type: ignore[assignment]
        py_state = random.getstate()
        tensors["rng.numpy"] = torch.from_numpy(np_state[1].astype(np.int64))
        tensors["rng.python"] = torch.tensor(py_state[1], dtype=torch.int64)
        groups = [
            {k: list(v) if isinstance(v, tuple) else v for k, v in g.items()
             if k not in ("params", "fused", "foreach", "capturable", "differentiable")}
            for g in opt_state["param_groups"]
        ]  # fmt: skip
        meta = {
            "format_version": STATE_FORMAT_VERSION,
            "step": self.step,
            "epoch": self.epoch,
            "world_size": self.ctx.world_size,
            "batcher": self.batcher.state_dict(),
            "scheduler": {
                k: v for k, v in self.scheduler.state_dict().items() if k != "lr_lambdas"
            },
            "optimizer_param_groups": groups,
            # The long key/state vectors of both RNGs are tensors in trainer_state.safetensors.
            "numpy_rng": [np_state[0], *np_state[2:]],
            "python_rng": [py_state[0], py_state[2]],
            "best_val_loss": self.best_val_loss,
            "best_step": self.best_step,
            "train_args": self.cfg.to_json(),
        }
        return tensors, meta

    # ------------------------------------------------------------------ events
    @property
    def epoch(self) -> float:
        state = self.batcher.state_dict()
        return state["epoch"] + state["position"] / len(self.batcher)

    def metric(self, event: str, **values: Any) -> None:
        if not self.ctx.is_main:
            return
        record = {"event": event, "step": self.step, "epoch": round(self.epoch, 4), **values,
                  "elapsed_s": round(time.monotonic() - self.t_start, 2)}  # fmt: skip
        with (self.out / METRICS).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def flush_losses(self) -> list[float]:
        values = torch.stack(self._pending).tolist() if self._pending else []
        self._pending.clear()
        self.losses.extend(values)
        return values

    def validate(self) -> None:
        """Loss per validation set and over all of them (token-weighted); keep the best model."""
        if not self.ctx.is_main:
            return
        per_set = {
            name: validation_loss(
                self.model,
                examples,
                max_tokens=self.cfg.max_tokens,
                pad_id=self.tokenizer.pad_id,
                bos_id=self.tokenizer.bos_id,
                device=self.device,
                amp=self.amp,
            )
            for name, examples in self.val_sets.items()
        }
        tokens = sum(v.tokens for v in per_set.values())
        loss = sum(v.loss * v.tokens for v in per_set.values()) / tokens
        val = ValLoss(loss=loss, ppl=math.exp(min(loss, 700.0)), tokens=tokens)
        self.val_losses.append((self.step, val.loss))
        self.metric("val", val_loss=val.loss, val_ppl=val.ppl, val_tokens=val.tokens,
                    val_sets={name: round(v.loss, 5) for name, v in per_set.items()})  # fmt: skip
        improved = self.best_val_loss is None or val.loss < self.best_val_loss
        log.info("step %d: val loss %.4f, ppl %.2f over %d target tokens%s (%s)", self.step,
                 val.loss, val.ppl, val.tokens, " (best)" if improved else "",
                 ", ".join(f"{n} {v.loss:.3f}" for n, v in per_set.items()))  # fmt: skip
        if improved:
            self.best_val_loss, self.best_step = val.loss, self.step
            with atomic_directory(self.out / BEST, force=True) as tmp:
                self._write_model_folder(tmp, val.loss)

    # ------------------------------------------------------------------ the loop
    def train_step(self, batches: Iterator[list[int]]) -> tuple[int, Tensor]:
        """One optimizer update; returns the step's real target tokens and its loss (on device)."""
        cfg, tok = self.cfg, self.tokenizer
        window = [
            collate([self.train_examples[i] for i in next(batches)], tok.pad_id, tok.bos_id)
            for _ in range(cfg.grad_accum)
        ]
        tokens = sum(b.num_tgt_tokens for b in window)
        step_loss = torch.zeros((), device=self.device)
        for i, batch in enumerate(window):
            batch = to_device(batch, self.device)
            last = i == len(window) - 1
            # Gradients are all-reduced once per step, on its last batch.
            sync = contextlib.nullcontext() if self.ddp is None or last else self.ddp.no_sync()
            with sync:
                with autocast(self.device, self.amp):
                    logits = self.train_model(batch.src_ids, batch.src_mask, batch.tgt_in)
                loss = token_loss_sum(logits, batch.tgt_out, tok.pad_id, cfg.label_smoothing)
                (loss / tokens).backward()  # type: ignore[no-untyped-call]
            step_loss += loss.detach() / tokens
        self.grad_norm = clip_gradients(self.params, cfg.clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return tokens, step_loss

    def run(self) -> TrainResult:
        cfg, ctx = self.cfg, self.ctx
        start_step = self.step
        budget_s = cfg.time_budget_min * 60 if cfg.time_budget_min is not None else math.inf
        self.metric("start", num_parameters=self.model.num_parameters(),
                    world_size=ctx.world_size, args=cfg.to_json())  # fmt: skip
        if self.max_steps is not None and self.step >= self.max_steps:
            log.info(
                "checkpoint at step %d already reached max_steps %d", self.step, self.max_steps
            )
            return self.result(start_step, 0.0, "done")
        self.model.train()
        batches = iter(self.batcher)
        bar = tqdm(total=self.max_steps, initial=self.step, unit="step", dynamic_ncols=True,
                   disable=not (ctx.is_main and sys.stderr.isatty()))  # fmt: skip
        t_train = t_log = time.monotonic()
        tokens_total = tokens_log = 0
        stopped_by = "max_steps"
        while True:
            lr = self.scheduler.get_last_lr()[0]
            tokens, loss = self.train_step(batches)
            self._pending.append(loss)
            tokens_total += tokens
            tokens_log += tokens
            bar.update()
            at_log = self.step % cfg.log_every == 0
            # Under DDP every rank must agree to stop: decided at log steps, where we sync anyway.
            out_of_time = False
            if ctx.world_size == 1 or at_log:
                out_of_time = ctx.any(time.monotonic() - self.t_start > budget_s)
            last = out_of_time or (self.max_steps is not None and self.step >= self.max_steps)
            if at_log or last:
                values = self.flush_losses()
                mean_loss = sum(values) / len(values)  # batches are length-bucketed: noisy alone
                now = time.monotonic()
                speed = tokens_log * ctx.world_size / max(now - t_log, 1e-9)
                t_log, tokens_log = now, 0
                self.metric("train", lr=lr, train_loss=mean_loss, grad_norm=float(self.grad_norm),
                            tokens_per_s=round(speed, 1))  # fmt: skip
                bar.set_postfix(loss=f"{mean_loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{speed:.0f}")
                if bar.disable and ctx.is_main:
                    log.info("step %d epoch %.2f: loss %.4f lr %.3e %.0f tok/s", self.step,
                             self.epoch, mean_loss, lr, speed)  # fmt: skip
            if self.step % cfg.eval_every == 0 or last:
                self.validate()
            if ctx.is_main and (self.step % cfg.save_every == 0 or last):
                self.save_checkpoint()
            if last:
                stopped_by = "time_budget" if out_of_time else "max_steps"
                break
        bar.close()
        self.flush_losses()
        speed = tokens_total * ctx.world_size / max(time.monotonic() - t_train, 1e-9)
        if ctx.is_main:
            plot_curves(self.out / METRICS, self.out / CURVES)
            log.info("stopped at step %d (%s); best val loss %s at step %s; %.0f tok/s", self.step,
                     stopped_by, self.best_val_loss, self.best_step, speed)  # fmt: skip
        ctx.barrier()
        return self.result(start_step, speed, stopped_by)

    def result(self, start_step: int, speed: float, stopped_by: str) -> TrainResult:
        best = self.out / BEST
        return TrainResult(
            out=self.out, start_step=start_step, final_step=self.step, losses=self.losses,
            val_losses=self.val_losses, best_val_loss=self.best_val_loss,
            best_dir=best if best.is_dir() else None,
            last_checkpoint=next(reversed(find_checkpoints(self.out)), None),
            tokens_per_s=speed, stopped_by=stopped_by, model=self.model,
        )  # fmt: skip


def write_trainer_state(folder: Path, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """trainer_state.safetensors (tensors) and trainer_state.json (everything else)."""
    save_file(tensors, str(folder / TRAINER_STATE_TENSORS), metadata={"format": "pt"})
    (folder / TRAINER_STATE_JSON).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) a run as :class:`TrainConfig` says; see the module docstring."""
    problems = cfg.problems()
    if problems:
        raise TrainError("invalid training options: " + "; ".join(problems))
    cfg.out = Path(cfg.out)
    ctx = init_distributed(cfg.device)
    try:
        run = Trainer(cfg, ctx)
        run.setup()
        return run.run()
    finally:
        if ctx.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


# ---------------------------------------------------------------------- CLI


def build_parser(prog: str = "python -m lingolite.train") -> argparse.ArgumentParser:
    d = TrainConfig(data=Path(), pairs="", out=Path())
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )  # fmt: skip
    p.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="DIR[,key=value...]",
        help="a corpus: folder plus train=NAME, valid=NAME|none, pairs=en-de+de-en, weight=W, "
        "valid_max=N (repeat to mix corpora; see lingolite.data)",
    )
    p.add_argument("--init-from", type=Path, help="start from this model folder (fine-tune)")
    p.add_argument("--max-length-ratio", type=float, default=d.max_length_ratio)
    p.add_argument("--skip-bad-lines", action="store_true", help="skip and count bad lines")
    p.add_argument("--pairs", required=True, help="directions, e.g. en-de,de-en")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--size", choices=sorted(PRESETS), default=d.size)
    p.add_argument("--tokenizer", type=Path, help="reuse this tokenizer folder")
    p.add_argument("--vocab-size", type=int, default=d.vocab_size, help="of a new tokenizer")
    p.add_argument("--max-src-len", type=int, default=d.max_src_len)
    p.add_argument("--max-tgt-len", type=int, default=d.max_tgt_len)
    p.add_argument(
        "--max-tokens",
        type=int,
        default=d.max_tokens,
        help="per process: padded tokens per batch (batch size x longer side)",
    )
    p.add_argument("--grad-accum", type=int, default=d.grad_accum)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--epochs", type=float)
    p.add_argument(
        "--time-budget-min",
        type=float,
        help="stop (with a checkpoint and best/) once this many minutes have passed",
    )
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument(
        "--clip-norm",
        type=float,
        default=d.clip_norm,
        help="clip the global L2 norm of the gradients to this (0: off)",
    )
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--save-every", type=int, default=d.save_every)
    p.add_argument("--keep-last", type=int, default=d.keep_last, help="checkpoints kept (0: all)")
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--device", choices=DEVICES, default=d.device)
    p.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=d.amp,
        help="bf16 autocast on (--amp) or off (--no-amp); default: on where the device has "
        "native bf16 (CUDA with bf16, a CPU with avx512_bf16/amx_bf16), off elsewhere",
    )
    p.add_argument("--num-threads", type=int, help="torch CPU threads")
    p.add_argument(
        "--adamw-impl",
        choices=ADAMW_IMPLS,
        default=d.adamw_impl,
        help="AdamW kernels (auto: fused on CUDA, for-loop on CPU)",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the training forward")
    p.add_argument("--train-split", default=d.train_split)
    p.add_argument("--val-split", default=d.val_split)
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument("--force", action="store_true", help="clear OUT's outputs and start over")
    return p


def main(argv: list[str] | None = None, prog: str = "python -m lingolite.train") -> int:
    args = vars(build_parser(prog).parse_args(argv))
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        result = train(TrainConfig(**args))
    except (TrainError, ValueError, FileExistsError) as exc:
        log.error("%s", exc)
        return 2
    log.info("done: step %d, best model %s", result.final_step, result.best_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
