"""Tests of lingolite.plotting: a single run's curves, and a lineage's across its stages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import to_hex
from numpy.typing import ArrayLike

from lingolite.lineage import merge_stages
from lingolite.plotting import curves_figure, plot_curves
from tests.test_lineage import PNG, STAGE_A, STAGE_B, write_jsonl

Record = dict[str, Any]


def curves_drawn(records: list[Record]) -> list[tuple[str, str, list[float]]]:
    """(colour, legend label or "", x data) of each loss line drawn, stage boundaries left out."""
    fig = curves_figure(records)
    assert fig is not None
    lines = [line for line in fig.axes[0].get_lines() if line.get_linestyle() != "--"]
    return [
        (to_hex(line.get_color()), _legend(line.get_label()), _floats(line.get_xdata()))
        for line in lines
    ]


def _floats(data: ArrayLike) -> list[float]:
    values: list[float] = np.asarray(data, dtype=float).tolist()
    return values


def _legend(label: object) -> str:
    return "" if str(label).startswith("_") else str(label)


def test_single_run_plots_against_step_as_before(tmp_path: Path) -> None:
    fig = curves_figure(STAGE_A)
    assert fig is not None
    (ax,) = fig.axes  # no stage axis
    assert ax.get_xlabel() == "optimizer step"
    assert tuple(fig.get_size_inches()) == (7, 4)
    assert curves_drawn(STAGE_A) == [
        (to_hex("C0"), "train (label-smoothed)", [50, 100, 150]),
        (to_hex("C1"), "validation (NLL)", [100, 150]),
    ]
    out = tmp_path / "curves.png"
    assert plot_curves(write_jsonl(tmp_path / "metrics.jsonl", STAGE_A), out)
    assert out.read_bytes()[:8] == PNG
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary


def test_lineage_plots_against_lineage_step_with_stage_marks(tmp_path: Path) -> None:
    a, b = write_jsonl(tmp_path / "a.jsonl", STAGE_A), write_jsonl(tmp_path / "b.jsonl", STAGE_B)
    lineage = merge_stages([a, b])
    # One line per stage and curve (the optimizer restarts at a stage), labelled once.
    assert curves_drawn(lineage) == [
        (to_hex("C0"), "train (label-smoothed)", [50, 100, 150]),
        (to_hex("C1"), "validation (NLL)", [100, 150]),
        (to_hex("C0"), "", [200]),
        (to_hex("C1"), "", [230]),
    ]
    fig = curves_figure(lineage)
    assert fig is not None
    ax = fig.axes[0]
    assert ax.get_xlabel() == "optimizer step, counted across the stages"
    boundaries = [
        _floats(line.get_xdata()) for line in ax.get_lines() if line.get_linestyle() == "--"
    ]
    assert boundaries == [[150, 150]]
    (top,) = ax.child_axes
    assert [t.get_text() for t in top.get_xticklabels()] == ["1", "2"]
    assert list(top.get_xticks()) == [75, 190]  # each stage's middle
    out = tmp_path / "curves.png"
    assert plot_curves(write_jsonl(tmp_path / "lineage.jsonl", lineage), out)
    assert out.read_bytes()[:8] == PNG


def test_stage_labels_thin_out_on_a_long_lineage() -> None:
    records = [
        {"stage": k, "lineage_step": 100 * k + s, "event": "train", "step": s, "train_loss": 1.0}
        for k in range(1, 21)
        for s in (0, 100)
    ]
    fig = curves_figure(records)
    assert fig is not None
    (top,) = fig.axes[0].child_axes
    labels = [t.get_text() for t in top.get_xticklabels()]
    assert labels == [str(k) for k in range(1, 21, 2)]  # 20 stages: every second one named


def test_nothing_to_draw_writes_nothing(tmp_path: Path) -> None:
    only_start = [{"event": "start", "step": 0}]
    staged = [{"stage": 1, "lineage_step": 0, "event": "start", "step": 0}]
    assert curves_figure(only_start) is None and curves_figure(staged) is None
    assert not plot_curves(write_jsonl(tmp_path / "m.jsonl", staged), tmp_path / "c.png")
    assert not plot_curves(tmp_path / "missing.jsonl", tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()
