"""Average the weights of a run's last N checkpoints into one model folder.

``python -m lingolite.average --run runs/NAME --last 5 --out runs/NAME/avg5``
(or ``--checkpoints A B C``). Checkpoint averaging (Vaswani et al. 2017; fairseq's
``average_checkpoints.py``) smooths the noise of the last updates and often gains a little BLEU
for free; compare the result's validation loss or BLEU with ``best/`` before shipping it.

Every checkpoint must have the same model config and tokenizer; the output folder (written to a
temporary name and renamed) holds the averaged ``model.safetensors``, the newest checkpoint's
``config.json`` with an ``averaged`` note naming the sources, and the tokenizer files.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from lingolite.checkpoint import CheckpointError, load_pretrained, read_config, write_model_files
from lingolite.tokenizer import Tokenizer
from lingolite.utils import atomic_directory

log = logging.getLogger(__name__)


def last_checkpoints(run: Path, n: int) -> list[Path]:
    """The newest ``n`` checkpoint folders of a training run (``RUN/checkpoints/step-*``)."""
    folder = Path(run) / "checkpoints"
    found = sorted(
        (p for p in folder.glob("step-*") if p.is_dir() and p.name[5:].isdigit()),
        key=lambda p: int(p.name[5:]),
    )
    if n < 1 or len(found) < n:
        raise CheckpointError(f"asked for the last {n} checkpoints of {run}; it has {len(found)}")
    return found[-n:]


def average_checkpoints(checkpoints: Sequence[Path], out: Path, *, force: bool = False) -> Path:
    """Write the element-wise mean of ``checkpoints``' weights as a model folder at ``out``."""
    if not checkpoints:
        raise CheckpointError("no checkpoints to average")
    out = Path(out)
    if force and out.is_dir() and any(out.iterdir()) and not (out / "config.json").is_file():
        raise CheckpointError(f"--force replaces only a model folder; {out} has no config.json")
    configs = [read_config(c) for c in checkpoints]
    tokenizers = [Tokenizer.from_pretrained(c) for c in checkpoints]
    problems = [
        f"{c} differs from {checkpoints[0]} in its {what}"
        for c, (config, _), tok in zip(checkpoints, configs, tokenizers, strict=True)
        for what, same in (
            ("model config", config == configs[0][0]),
            ("tokenizer", tok.model_proto == tokenizers[0].model_proto),
        )
        if not same
    ]
    if problems:
        raise CheckpointError("cannot average: " + "; ".join(problems))
    model = load_pretrained(checkpoints[0])
    total = {k: v.to(torch.float64) for k, v in model.state_dict().items()}
    for checkpoint in checkpoints[1:]:
        for key, value in load_pretrained(checkpoint).state_dict().items():
            total[key] += value.to(torch.float64)
    model.load_state_dict({k: (v / len(checkpoints)).to(torch.float32) for k, v in total.items()})
    extra = {k: v for k, v in configs[-1][1].items() if k not in ("format_version", "model")}
    extra.pop("weights", None)
    extra["averaged"] = [str(c) for c in checkpoints]
    with atomic_directory(out, force=force) as tmp:
        write_model_files(model, tmp, extra=extra)
        tokenizers[-1].save(tmp)
    log.info("averaged %d checkpoints into %s", len(checkpoints), out)
    return out


def main(argv: list[str] | None = None, prog: str = "python -m lingolite.average") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="training run folder (with --last)")
    source.add_argument("--checkpoints", type=Path, nargs="+", help="model folders to average")
    p.add_argument("--last", type=int, default=5, help="with --run: how many newest checkpoints")
    p.add_argument("--out", type=Path, required=True, help="output model folder")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        checkpoints = args.checkpoints or last_checkpoints(args.run, args.last)
        average_checkpoints(checkpoints, args.out, force=args.force)
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
