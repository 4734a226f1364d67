"""Loss curves from a training run's ``metrics.jsonl`` (matplotlib, no display needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a ``metrics.jsonl`` file, one per non-empty line."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def plot_curves(metrics_file: Path, out_file: Path) -> bool:
    """Draw train and validation loss against step into ``out_file`` (PNG, written atomically).

    Returns False (and writes nothing) when the metrics hold no loss yet.
    """
    records = read_metrics(metrics_file)
    train = [(r["step"], r["train_loss"]) for r in records if r.get("event") == "train"]
    val = [(r["step"], r["val_loss"]) for r in records if r.get("event") == "val"]
    if not train and not val:
        return False
    # Figure + the Agg canvas directly: no pyplot global state, no GUI backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if train:
        ax.plot(*zip(*train, strict=True), label="train (label-smoothed)", linewidth=1)
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="validation (NLL)", markersize=3)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss per target token")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = out_file.with_name(f".{out_file.name}.tmp-{os.getpid()}")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, out_file)
    finally:
        tmp.unlink(missing_ok=True)
    return True
