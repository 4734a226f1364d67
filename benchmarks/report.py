"""What the numbers mean, and the files a run writes: ratios to eager, where each target stands,
and ``results.md`` rendered from ``results.json``'s data into ``templates/results.md``.

The report's prose lives in the template (a :class:`string.Template`); this module only formats
values and builds the tables from data, so a report can be re-rendered from any saved
``results.json`` (:func:`markdown`).
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import Any

from benchmarks.charts import CHARTS, write_charts
from lingolite.config import ModelConfig
from lingolite.signatures import CacheGeometry

BASELINE = "eager fp32"
PEER = "ctranslate2 int8"
# The Marian run's other peer (benchmarks.run --marian): Optimum's ONNX export of the same folder.
OPTIMUM = "optimum onnx fp32"
# Runtimes that run their own search (the peers); every other backend is LingoLite's.
PEER_KINDS = ("ctranslate2", "ctranslate2-hf", "optimum", "transformers")
# Issue 35 (an imported opus-mt-en-de-size model, 1 thread), at beam 4 batch 32 and batch 1.
TARGET_BEAM_B32_OF_OPTIMUM = 1.0
TARGET_MARIAN_BEAM_B32_OF_PEER = 0.9
TARGET_MARIAN_B1_OF_PEER = 1.2
# Targets of the small preset (see the issue): speed-ups per token at batch 1 greedy.
TARGET_ORT_INT8 = 4.0
TARGET_ET_INT8 = 3.0
TARGET_BEAM_B32_OF_PEER = 0.8
# Issue 14 (small, 1 thread): ratios to CTranslate2 int8 / ONNX Runtime int8, and a size.
TARGET_GREEDY_B32_OF_PEER = 1.0
TARGET_RSS_OF_PEER = 2.0  # at most
TARGET_ET_ENCODER_OF_ORT = 1.5  # at most
TARGET_ET_4BIT_MIB = 45.0  # at most
TARGET_ET_STEP_OF_FLOOR = 3.0  # at most

# (key, label, unit, higher is better)
METRICS: tuple[tuple[str, str, str, bool], ...] = (
    ("size_mib", "size on disk", "MiB", False),
    ("peak_rss_mib", "peak RSS (own process, b32 beam 4)", "MiB", False),
    ("encoder_ms", "encoder, batch 1", "ms", False),
    ("step_ms", "decoder step, batch 1", "ms", False),
    ("greedy_ms_per_token", "greedy batch 1, per token", "ms", False),
    ("greedy_p50_ms", "greedy batch 1 sentence p50", "ms", False),
    ("greedy_p90_ms", "greedy batch 1 sentence p90", "ms", False),
    ("beam4_p50_ms", "beam 4 batch 1 sentence p50", "ms", False),
    ("beam4_p90_ms", "beam 4 batch 1 sentence p90", "ms", False),
    ("greedy_b32_tok_s", "greedy batch 32 throughput", "tok/s", True),
    ("beam4_b32_tok_s", "beam 4 batch 32 throughput", "tok/s", True),
    ("bleu_greedy", "BLEU greedy (b32)", "", True),
    ("chrf_greedy", "chrF greedy (b32)", "", True),
    ("bleu_beam4", "BLEU beam 4 (b32)", "", True),
    ("chrf_beam4", "chrF beam 4 (b32)", "", True),
)


# ---------------------------------------------------------------------- ratios and targets


def ratios(metrics: dict[str, float], baseline: dict[str, float]) -> dict[str, float]:
    """Each metric as an improvement factor over eager fp32: > 1 is better (faster, smaller,
    more tokens/s, higher BLEU)."""
    out = {}
    for key, _, _, higher in METRICS:
        if key in metrics and baseline.get(key):
            value, base = metrics[key], baseline[key]
            if value > 0:
                out[key] = round(value / base if higher else base / value, 3)
    return out


def targets(
    results: dict[str, dict[str, Any]], size: str, floor: dict[str, Any]
) -> list[dict[str, Any]]:
    """Where each target of the issues stands (they are stated for the ``small`` preset).

    A row is ``value`` against ``needed``: a factor (``x``) or a size (``MiB``), where higher is
    better for speed-ups and lower is better for memory, encoder time and size ratios; a row is
    left out when its backends did not run.
    """

    def metric(name: str | None, key: str) -> float | None:
        value = results.get(name or "", {}).get("metrics", {}).get(key)
        return None if value is None else float(value)

    def speedup(name: str) -> float | None:
        value = results.get(name, {}).get("ratios", {}).get("greedy_ms_per_token")
        return None if value is None else float(value)

    def best(key: str, higher: bool, among: Sequence[str] | None = None) -> str | None:
        have = [n for n in (ours if among is None else among) if metric(n, key)]
        pick = max if higher else min
        return pick(have, key=lambda n: metric(n, key) or 0.0) if have else None

    def share(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a and b else None

    ours = [n for n, r in results.items() if r["kind"] not in PEER_KINDS and n != BASELINE]
    executorch = [n for n in ours if n.startswith("executorch")]
    et_int8 = max((n for n in executorch if "fp32" not in n), key=lambda n: speedup(n) or 0.0,
                  default=None)  # fmt: skip
    et_4bit = next((n for n in executorch if "8da4w" in n), None)
    b1, b32 = best("greedy_ms_per_token", False), best("beam4_b32_tok_s", True)
    g32, rss = best("greedy_b32_tok_s", True), best("peak_rss_mib", False)
    et_enc = best("encoder_ms", False, among=executorch)
    ort_int8 = "onnxruntime int8" if "onnxruntime int8" in results else None
    have_peer = PEER in results
    marian = OPTIMUM in results
    # (target, goal, value, needed, higher is better, unit, backend)
    rows: list[tuple[str, str, float | None, float, bool, str, str | None]] = [
        (
            "ONNX Runtime int8 vs eager, greedy batch 1 per token",
            ">= 4x",
            speedup("onnxruntime int8"),
            TARGET_ORT_INT8,
            True,
            "x",
            "onnxruntime int8",
        ),
    ]
    if et_int8 is not None:
        rows.append(
            (
                "ExecuTorch int8 vs eager, greedy batch 1 per token",
                ">= 3x",
                speedup(et_int8),
                TARGET_ET_INT8,
                True,
                "x",
                et_int8,
            )
        )
    if marian:  # the imported model against its peers on the same weights (issue 35)
        rows += [
            (
                "best LingoLite backend vs Optimum ONNX fp32, beam 4 batch 32 throughput",
                ">= 1x",
                share(metric(b32, "beam4_b32_tok_s"), metric(OPTIMUM, "beam4_b32_tok_s")),
                TARGET_BEAM_B32_OF_OPTIMUM,
                True,
                "x",
                b32,
            ),
            (
                "best LingoLite backend vs CTranslate2 int8 (converter), beam 4 batch 32",
                ">= 0.9x",
                share(metric(b32, "beam4_b32_tok_s"), metric(PEER, "beam4_b32_tok_s")),
                TARGET_MARIAN_BEAM_B32_OF_PEER,
                True,
                "x",
                b32,
            ),
            (
                "best LingoLite backend vs CTranslate2 int8 (converter), greedy batch 1 per token",
                ">= 1.2x",
                share(metric(PEER, "greedy_ms_per_token"), metric(b1, "greedy_ms_per_token")),
                TARGET_MARIAN_B1_OF_PEER,
                True,
                "x",
                b1,
            ),
        ]
    elif have_peer:
        rows += [
            (
                "best backend vs CTranslate2 int8, greedy batch 1 per token",
                ">= 1x (at or above)",
                share(metric(PEER, "greedy_ms_per_token"), metric(b1, "greedy_ms_per_token")),
                1.0,
                True,
                "x",
                b1,
            ),
            (
                "best backend vs CTranslate2 int8, beam 4 batch 32 throughput",
                ">= 0.8x (within 20%)",
                share(metric(b32, "beam4_b32_tok_s"), metric(PEER, "beam4_b32_tok_s")),
                TARGET_BEAM_B32_OF_PEER,
                True,
                "x",
                b32,
            ),
            (
                "best backend vs CTranslate2 int8, greedy batch 32 throughput",
                ">= 1x",
                share(metric(g32, "greedy_b32_tok_s"), metric(PEER, "greedy_b32_tok_s")),
                TARGET_GREEDY_B32_OF_PEER,
                True,
                "x",
                g32,
            ),
            (
                "lowest peak RSS (b32 x beam 4) vs CTranslate2 int8's",
                "<= 2x",
                share(metric(rss, "peak_rss_mib"), metric(PEER, "peak_rss_mib")),
                TARGET_RSS_OF_PEER,
                False,
                "x",
                rss,
            ),
        ]
    if et_enc is not None and ort_int8 is not None:
        rows.append(
            (
                "ExecuTorch encoder vs ONNX Runtime int8 encoder, batch 1",
                "<= 1.5x",
                share(metric(et_enc, "encoder_ms"), metric(ort_int8, "encoder_ms")),
                TARGET_ET_ENCODER_OF_ORT,
                False,
                "x",
                et_enc,
            )
        )
    if et_4bit is not None:
        rows.append(
            (
                "ExecuTorch 8da4w program size",
                "<= 45 MiB",
                metric(et_4bit, "size_mib"),
                TARGET_ET_4BIT_MIB,
                False,
                "MiB",
                et_4bit,
            )
        )
        if floor.get("int4", {}).get("ms"):
            rows.append(
                (
                    "ExecuTorch 8da4w decoder step vs its weight-read floor",
                    "<= 3x",
                    share(metric(et_4bit, "step_ms"), floor["int4"]["ms"]),
                    TARGET_ET_STEP_OF_FLOOR,
                    False,
                    "x",
                    et_4bit,
                )
            )
    out = []
    for name, goal, value, need, higher, unit, who in rows:
        met = value is not None and (value >= need if higher else value <= need)
        miss = None
        if value is not None and not met:
            miss = round(100 * abs(1 - (value / need if higher else need / value)), 1)
        out.append({"target": name, "goal": goal, "backend": who, "value": value,
                    "needed": need, "unit": unit, "met": met, "short_by_percent": miss,
                    "preset": size})  # fmt: skip
    return out


# ---------------------------------------------------------------------- files


def write_outputs(report: dict[str, Any], out: Path) -> list[Path]:
    """``results.json``, ``results.md`` and the charts into ``out`` (created; these files are
    replaced, nothing else there is touched)."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in CHARTS:
        (out / stale).unlink(missing_ok=True)
    written = [out / name for name in write_charts(report, out)]
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "results.md").write_text(markdown(report, [p.name for p in written]), encoding="utf-8")
    return [out / "results.json", out / "results.md", *written]


# ---------------------------------------------------------------------- results.md


def model_config(model: dict[str, Any]) -> ModelConfig:
    """The model config in a report's ``model`` section (which adds the parameter count etc.)."""
    names = {f.name for f in dataclasses.fields(ModelConfig)}
    return ModelConfig.from_dict({k: v for k, v in model.items() if k in names})


def template() -> Template:
    text = importlib.resources.files("benchmarks").joinpath("templates/results.md")
    return Template(text.read_text(encoding="utf-8"))


def table(header: Sequence[str], align: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table; ``align`` holds ``---`` (left) or ``---:`` (right) per column."""
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def markdown(report: dict[str, Any], charts: Sequence[str]) -> str:
    """The human-readable report: setting, the table with ratios, targets, limits, method."""
    m, s, model, t = report["machine"], report["settings"], report["model"], report["threads"]
    bw, fl = report["bandwidth"], report["floor"]
    values = {
        "name": model["name"],
        "kind": "trained" if model["trained"] else "untrained (seeded init)",
        "command": report["command"],
        "date": report["date"],
        "seconds": f"{report['seconds']:.0f}",
        "machine": f"{m['cpu']}, {m['usable_cores']} usable cores ({m['logical_cores']} logical), "
        f"{m.get('memory_gib', '?')} GiB RAM, {m['machine']}, features "
        f"{', '.join(m['cpu_features']) or 'none listed'}",
        "load_average": m.get("load_average_1m", "?"),
        "threads_requested": t["requested"],
        "threads_torch": t["torch"],
        "threads_executorch": t["executorch_xnnpack"],
        "threads_onnxruntime": t["onnxruntime_intra_op"],
        "threads_ctranslate2": t["ctranslate2_intra"],
        "model": f"{model['parameters'] / 1e6:.1f}M parameters, vocab {model['vocab_size']}, "
        f"d_model {model['d_model']}, {model['n_encoder_layers']}+{model['n_decoder_layers']} "
        f"layers, static lengths {model['max_src_len']}/{model['max_tgt_len']}",
        "work": f"every search generates exactly {s['max_length']} tokens (EOS suppressed)"
        if s["forced"]
        else f"natural decoding up to {s['max_length']} tokens",
        "versions": ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        "results_table": results_table(report["backends"]),
        "charts": "\n".join(f"![{c}]({c})" for c in charts),
        "targets_table": targets_table(report["targets"]),
        "copy_mib": f"{bw['bytes_per_copy'] / 2**21:.0f}",
        "bandwidth_best": f"{bw['best_gb_s']:.1f}",
        "bandwidth_median": f"{bw['median_gb_s']:.1f}",
        "weights_m": f"{fl['weights_per_step'] / 1e6:.1f}",
        "int8_mib": f"{fl['int8']['bytes'] / 2**20:.1f}",
        "int8_ms": f"{fl['int8']['ms']:.2f}",
        "fp32_mib": f"{fl['fp32']['bytes'] / 2**20:.1f}",
        "fp32_ms": f"{fl['fp32']['ms']:.2f}",
        "floor_note": fl["note"],
        "floor_table": floor_table(report["backends"], fl),
        "profiles": "".join(f"\n\n{block}" for block in profile_blocks(report)),
        "cache_b128_mib": f"{CacheGeometry.of(model_config(model)).cache_bytes(128) / 2**20:.0f}",
        **{
            key: s[key]
            for key in (
                "inputs",
                "latency_sentences",
                "sentence_repeats",
                "throughput_sentences",
                "batch_size",
                "repeats",
            )
        },
    }
    return template().substitute(values)


def results_table(backends: dict[str, dict[str, Any]]) -> str:
    """Every metric any backend has, as value (ratio), plus greedy parity."""
    rows = []
    for key, label, unit, _ in METRICS:
        if not any(key in b["metrics"] for b in backends.values()):
            continue
        cells = [label, unit]
        for b in backends.values():
            value, ratio = b["metrics"].get(key), b["ratios"].get(key)
            if value is None:
                cells.append("-")
            else:
                cells.append(_fmt(value) if ratio is None else f"{_fmt(value)} ({ratio:.2f}x)")
        rows.append(cells)
    parity = ["greedy tokens = eager (b1; b32)", "sentences"]
    for b in backends.values():
        b1, b32 = b["parity"]["greedy_b1"], b["parity"]["greedy_b32"]
        parity.append(f"{b1['identical']}/{b1['sentences']}; {b32['identical']}/{b32['sentences']}")
    rows.append(parity)
    header = ["metric", "unit", *backends]
    return table(header, ["---", "---", *["---:"] * len(backends)], rows)


def targets_table(found: Sequence[dict[str, Any]]) -> str:
    rows = []
    for tg in found:
        if tg["met"]:
            status = "met"
        elif tg["value"] is not None:
            status = f"missed by {tg['short_by_percent']}%"
        else:
            status = "not measured"
        if tg["value"] is None:
            value = "-"
        elif tg.get("unit") == "MiB":
            value = f"{tg['value']:.1f} MiB"
        else:
            value = f"{tg['value']:.2f}x"
        rows.append([tg["target"], tg["goal"], tg["backend"], value, status])
    header = ["target", "goal", "backend", "value", "status"]
    return table(header, ["---", "---", "---", "---:", "---"], rows)


def floor_table(backends: dict[str, dict[str, Any]], floor: dict[str, Any]) -> str:
    """Each backend's batch-1 step against the weight-read floor of its precision, and where
    its time goes (cProfile shares; CTranslate2 has none)."""
    by_precision = {"fp32": floor["fp32"], "8da4w": floor["int4"], "int4": floor["int4"]}
    rows = []
    for name, b in backends.items():
        limit = by_precision.get(b["precision"], floor["int8"])
        step, prof = b["metrics"]["step_ms"], b.get("search_profile", {})
        rows.append(
            [
                name,
                f"{step:.2f}",
                f"{limit['ms']:.2f}",
                f"{step / limit['ms']:.1f}x",
                *(
                    _percent(prof.get(key))
                    for key in ("runtime_call_share", "decode_step_share", "search_share")
                ),
            ]
        )
    header = [
        "backend",
        "decoder step b1 (ms)",
        "weight-read floor (ms)",
        "step / floor",
        "time in runtime call",
        "in backend decode_step",
        "search loop (Python)",
    ]
    return table(header, ["---", *["---:"] * 6], rows)


def _ops_table(ops: Sequence[dict[str, Any]]) -> str:
    rows = [[o["op"], f"{o['ms_per_step']:.3f}", f"{100 * o['share']:.0f}%"] for o in ops]
    return table(["operator", "ms/step", "share"], ["---", "---:", "---:"], rows)


def profile_blocks(report: dict[str, Any]) -> list[str]:
    """The operator profiles and the beam-search profile that the run recorded."""
    blocks = []
    ops = report["profiles"].get("onnxruntime_int8_ops")
    if ops:
        blocks.append(
            f"ONNX Runtime int8 decoder step, by operator (its profiler, {ops['steps']} "
            f"steps at batch 1; {ops['note']}): kernels {ops['kernel_ms_per_step']:.2f} ms "
            f"per step.\n\n{_ops_table(ops['ops'])}"
        )
    et = next((v for k, v in report["profiles"].items() if k.startswith("executorch_")), None)
    if et:
        blocks.append(
            f"ExecuTorch {et['precision']} decoder step, by operator (ETDump, "
            f"{et['steps']} runs at batch 1, medians): `Method::execute` "
            f"{et['execute_ms']:.2f} ms. `native_call_*` rows run in ExecuTorch's portable "
            f"kernels (not delegated to XNNPACK).\n\n{_ops_table(et['ops'])}"
        )
    profiled = [(name, b["search_profile_beam4_b32"]) for name, b in report["backends"].items()
                if "search_profile_beam4_b32" in b]  # fmt: skip
    for name, beam in profiled:
        top = ", ".join(f"`{f['function']}` {f['self_s']:.2f} s" for f in beam["top_self_time"])
        blocks.append(
            f"{name}, beam 4 on one batch of {report['settings']['batch_size']} "
            f"(cProfile, {beam['total_s']:.1f} s): {100 * beam['runtime_call_share']:.0f}% "
            f"inside ONNX Runtime, {100 * beam['search_share']:.0f}% in the Python search; "
            f"most self time: {top}."
        )
    return blocks
