"""Loss curves from a training run's ``metrics.jsonl`` (matplotlib, no display needed).

A *lineage* file (:mod:`lingolite.lineage`: the metrics of a model trained in several stages, each
continuing from the previous stage's weights) carries ``stage`` and ``lineage_step`` on every
record; it is drawn against ``lineage_step`` with the stage boundaries marked. A single run's file,
as :mod:`lingolite.train` writes it, is drawn against ``step``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The fields a lineage file adds to every record: the 1-based stage, and the step counted from
# the start of stage 1 (the stage's own step plus the steps of the stages before it).
STAGE = "stage"
LINEAGE_STEP = "lineage_step"
# At most this many stage labels on the top axis (every k-th stage beyond it).
_MAX_STAGE_LABELS = 16
# (event, loss field, legend label, style) of each curve of a lineage, drawn once per stage.
_LINEAGE_CURVES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("train", "train_loss", "train (label-smoothed)", {"linewidth": 1, "color": "C0"}),
    ("val", "val_loss", "validation (NLL)", {"marker": "o", "markersize": 3, "color": "C1"}),
]


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a ``metrics.jsonl`` file, one per non-empty line."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def curves_figure(records: list[dict[str, Any]]) -> Figure | None:
    """Train and validation loss of ``records`` as a figure; None when they hold no loss yet."""
    if any(STAGE in r for r in records):
        return _lineage_figure(records)
    train = [(r["step"], r["train_loss"]) for r in records if r.get("event") == "train"]
    val = [(r["step"], r["val_loss"]) for r in records if r.get("event") == "val"]
    if not train and not val:
        return None
    fig, ax = _new_axes((7, 4))
    if train:
        ax.plot(*zip(*train, strict=True), label="train (label-smoothed)", linewidth=1)
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="validation (NLL)", markersize=3)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss per target token")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_curves(metrics_file: Path, out_file: Path) -> bool:
    """Draw train and validation loss against step into ``out_file`` (PNG, written atomically).

    Returns False (and writes nothing) when the metrics hold no loss yet.
    """
    fig = curves_figure(read_metrics(metrics_file))
    if fig is None:
        return False
    tmp = out_file.with_name(f".{out_file.name}.tmp-{os.getpid()}")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, out_file)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _new_axes(size: tuple[float, float]) -> tuple[Figure, Any]:
    # Figure + the Agg canvas directly: no pyplot global state, no GUI backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _lineage_figure(records: list[dict[str, Any]]) -> Figure | None:
    """Each stage's curves apart (the optimizer restarts there), one colour per curve, a faint
    line at every stage boundary and the stage numbers along the top."""
    stages: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        stages.setdefault(r[STAGE], []).append(r)
    if not any(r.get("event") in ("train", "val") for r in records):
        return None
    fig, ax = _new_axes((10, 4.5))
    labelled: set[str] = set()
    for rows in stages.values():
        for event, key, label, style in _LINEAGE_CURVES:
            points = [(r[LINEAGE_STEP], r[key]) for r in rows if r.get("event") == event]
            if points:
                legend = None if label in labelled else label
                ax.plot(*zip(*points, strict=True), label=legend, **style)
                labelled.add(label)
    steps = [[r[LINEAGE_STEP] for r in rows] for rows in stages.values()]
    spans = [(min(s), max(s)) for s in steps]
    for start, _ in spans[1:]:
        ax.axvline(start, color="0.5", linewidth=0.8, linestyle="--", alpha=0.5)
    every = math.ceil(len(spans) / _MAX_STAGE_LABELS)
    shown = [(n, span) for n, span in zip(stages, spans, strict=True)][::every]
    top = ax.secondary_xaxis("top")
    top.set_xticks([(a + b) / 2 for _, (a, b) in shown], [str(n) for n, _ in shown])
    top.tick_params(length=0, labelsize=8)
    top.set_xlabel("stage (each continues from the previous one's weights, fresh optimizer)")
    ax.set_xlabel("optimizer step, counted across the stages")
    ax.set_ylabel("loss per target token")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig
