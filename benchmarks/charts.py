"""Bar charts of a benchmark report (matplotlib on an Agg canvas: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

CHARTS = ("latency.png", "throughput.png", "footprint.png", "quality.png")


def write_charts(report: dict[str, Any], out: Path) -> list[str]:
    """Bar charts (matplotlib, Agg canvas, no display): latency, throughput, footprint and, for a
    trained model, quality. Returns the file names written."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    backends = report["backends"]
    names = list(backends)
    x = np.arange(len(names))

    def metric(key: str) -> list[float]:
        return [float(b["metrics"].get(key, 0.0)) for b in backends.values()]

    def panel(ax: Any, series: dict[str, list[float]], title: str, unit: str) -> None:
        width = 0.8 / len(series)
        for i, (label, values) in enumerate(series.items()):
            bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label)
            ax.bar_label(bars, fmt="%.3g", fontsize=6)
        ax.set_xticks(x, [n.replace(" ", "\n", 1) for n in names], fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(unit)
        ax.grid(axis="y", alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=7)

    charts: dict[str, list[tuple[dict[str, list[float]], str, str]]] = {
        "latency.png": [
            (
                {"encoder": metric("encoder_ms"), "decoder step": metric("step_ms")},
                "batch 1: encoder and one decoder step",
                "ms",
            ),
            (
                {"greedy p50": metric("greedy_p50_ms"), "beam 4 p50": metric("beam4_p50_ms")},
                "batch 1 sentence latency (p50)",
                "ms",
            ),
        ],
        "throughput.png": [
            (
                {"greedy": metric("greedy_b32_tok_s"), "beam 4": metric("beam4_b32_tok_s")},
                "batch 32 throughput",
                "target tokens / s",
            ),
        ],
        "footprint.png": [
            (
                {"size on disk": metric("size_mib"), "peak RSS": metric("peak_rss_mib")},
                "size on disk and peak resident memory",
                "MiB",
            ),
        ],
    }
    if any("bleu_greedy" in b["metrics"] for b in backends.values()):
        charts["quality.png"] = [
            (
                {
                    "BLEU greedy": metric("bleu_greedy"),
                    "BLEU beam 4": metric("bleu_beam4"),
                    "chrF greedy": metric("chrf_greedy"),
                },
                "test_2016_flickr en-de",
                "score",
            ),
        ]
    for name, panels in charts.items():
        fig = Figure(figsize=(11, 3.6 * len(panels)), dpi=100)
        FigureCanvasAgg(fig)
        for i, (series, title, unit) in enumerate(panels):
            panel(fig.add_subplot(len(panels), 1, i + 1), series, title, unit)
        fig.suptitle(
            f"LingoLite {report['model']['name']}, {report['threads']['requested']} thread(s)",
            fontsize=10,
        )
        fig.tight_layout()
        fig.savefig(out / name, format="png")
    return list(charts)
