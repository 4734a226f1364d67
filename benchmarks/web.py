"""The browser demo against native ONNX Runtime, in one run: speed, startup and download size.

``python -m benchmarks.web --artifacts DIR [--data MULTI30K] [--sentences 100] [--out FOLDER]
[--screenshot PNG]``

Builds the site for the ONNX artifact folder (``export.web``), serves it on 127.0.0.1 and drives
headless Chromium (Debian's, through ``web_demo/tools/drive.mjs``) through ``window.lingoliteDemo``:
for int8, int4 (when the folder has it; the site then carries it) and fp32, greedy, en→de, it
translates ``--sentences`` test_2016_flickr English sentences one at a time (the first 5 are
warm-up and not counted) on one WebAssembly thread. The same sentences then go through the
Python runtime (``runtime.translator``, native ONNX Runtime, one intra-op thread, batch 1).
Reported per backend: ms per sentence (mean), source words per second, and whether the output text
equals the other's; for the page: the time from navigation start to the end of the first
translation (int8, graphs downloaded and compiled on the way) and the bytes a user downloads for
each precision, raw and gzip-compressed (level 6, what a web server would send). Writes
``results.json`` and ``results.md`` into ``--out``. Not a timed test: run it niced on an otherwise
quiet machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from export.web import WEB_DEMO, build_site, make_server
from lingolite.signatures import GROW_DECODER, model_config
from runtime.manifest import load_manifest
from runtime.onnx_backend import choose_cache
from runtime.translator import Translator

log = logging.getLogger("benchmarks.web")

CHROMIUM = Path("/usr/bin/chromium")
WARMUP = 5
ANCHOR_WPS = 346  # Firefox Translations (Bergamot, WASM), as quoted in the issue
FALLBACK_SENTENCES = [
    "A man in a blue shirt is standing on a ladder.",
    "Two young children are playing in the sand.",
    "A group of people are walking down a busy street.",
    "The dog runs through the snow.",
    "A woman is reading a book in the park while her friend plays the guitar.",
    "Three men are working on a building site.",
]


def load_sentences(data: Path | None, n: int) -> list[str]:
    if data is None:
        return [FALLBACK_SENTENCES[i % len(FALLBACK_SENTENCES)] for i in range(n)]
    with gzip.open(data / "test_2016_flickr.en.gz", "rt", encoding="utf-8") as fh:
        lines = [line.strip() for line in fh]
    return lines[:n]


def words(texts: list[str]) -> int:
    return sum(len(t.split()) for t in texts)


def drive(spec: dict[str, Any], work: Path) -> dict[str, Any]:
    path = work / "spec.json"
    path.write_text(json.dumps({"chromium": str(CHROMIUM), **spec}), encoding="utf-8")
    run = subprocess.run(["node", str(WEB_DEMO / "tools" / "drive.mjs"), str(path)],
                         capture_output=True, text=True, timeout=3600, check=False)  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"drive.mjs failed:\n{run.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def download_bytes(site: Path, requests: list[str], graphs: dict[str, list[str]]) -> dict[str, Any]:
    """Raw and gzip bytes of every file the page fetched, split into the common part and each
    precision's graphs."""
    fetched = sorted({urlparse(u).path.lstrip("/") for u in requests} - {""})
    sizes = {}
    for name in fetched:
        data = (site / name).read_bytes()
        sizes[name] = (len(data), len(gzip.compress(data, compresslevel=6, mtime=0)))
    graph_files = {f"artifacts/{g}" for files in graphs.values() for g in files}
    common = [n for n in fetched if n not in graph_files]
    out: dict[str, Any] = {"files": {n: {"raw": r, "gzip": z} for n, (r, z) in sizes.items()}}
    for precision, files in graphs.items():
        names = common + [f"artifacts/{g}" for g in files]
        out[precision] = {
            "raw": sum(sizes[n][0] for n in names if n in sizes),
            "gzip": sum(sizes[n][1] for n in names if n in sizes),
        }
    return out


def native(artifacts: Path, precision: str, texts: list[str]) -> dict[str, Any]:
    translator = Translator.from_artifacts(artifacts, precision=precision, threads=1)
    outputs, times = [], []
    for text in texts:
        start = time.perf_counter()
        outputs.append(translator.translate([text], "en", "de", batch_size=1)[0])
        times.append(time.perf_counter() - start)
    timed = times[WARMUP:]
    return {"outputs": outputs, "ms": [t * 1000 for t in times], "total_s": sum(timed)}


def run(
    artifacts: Path, out: Path, data: Path | None, n: int, screenshot: Path | None
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    manifest = load_manifest(artifacts)
    variants = {v.precision: v for v in manifest.variants.values() if v.backend == "onnxruntime"}
    texts = load_sentences(data, n + WARMUP)
    counted = texts[WARMUP:]
    with tempfile.TemporaryDirectory(prefix="lingolite-web-bench-") as tmp:
        work = Path(tmp)
        precisions: list[str] = [p for p in ("int8", "int4", "fp32") if p in variants]
        site = build_site(artifacts, work / "site", precisions=precisions)
        server = make_server(site, port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        jobs: list[dict[str, Any]] = [
            {"precision": p, "beams": 1, "src": "en", "tgt": "de", "texts": texts}
            for p in precisions
        ]
        spec: dict[str, Any] = {"url": url, "mode": "bench", "jobs": jobs}
        if screenshot is not None:
            spec["screenshot"] = str(work / "shot.png")
            spec["jobs"].append({"mode": "ui", "precision": precisions[0], "beams": 4, "src": "en",
                                 "tgt": "de", "texts": [SCREENSHOT_TEXT]})  # fmt: skip
        browser = drive(spec, work)
        server.shutdown()
        # The graphs the page fetches: the decoder the page picks, as the runtime's "auto".
        layers = model_config(manifest.model).n_decoder_layers
        decoders = {p: GROW_DECODER if choose_cache(variants[p], "auto", layers) == "grow"
                    else "decoder" for p in precisions}  # fmt: skip
        graphs = {p: sorted(variants[p].files[r].name for r in ("encoder", decoders[p]))
                  for p in precisions}  # fmt: skip
        download = download_bytes(site, browser["requests"], graphs)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work / "shot.png", screenshot)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "date": time.strftime("%Y-%m-%d"),
        "chromium": subprocess.run(
            [str(CHROMIUM), "--version"], capture_output=True, text=True
        ).stdout.strip(),
        "artifacts": str(artifacts),
        "sentences": len(counted),
        "source_words": words(counted),
        "warmup": WARMUP,
        "first_translation_ms": browser["firstTranslation"]["sincePageLoadMs"],
        "page_ready_ms": browser["readyMs"],
        "download": download,
        "backends": {},
    }
    timed_jobs = [job for job in browser["jobs"] if job.get("mode") != "ui"]
    natives = {job["precision"]: native(artifacts, job["precision"], texts) for job in timed_jobs}

    def same(a: list[str], b: list[str]) -> str:
        return f"{sum(x == y for x, y in zip(a, b, strict=True))}/{len(a)}"

    for job in timed_jobs:
        precision, nat = job["precision"], natives[job["precision"]]
        stats = job["stats"][WARMUP:]
        browser_s = sum(s["totalMs"] for s in stats) / 1000
        results["backends"][precision] = {
            "browser_ms_per_sentence": 1000 * browser_s / len(stats),
            "browser_words_per_s": results["source_words"] / browser_s,
            "browser_encode_ms_mean": sum(s["encodeMs"] for s in stats) / len(stats),
            "browser_ms_per_step": sum(s["decodeMs"] for s in stats)
            / sum(s["steps"] for s in stats),
            "native_ms_per_sentence": 1000 * nat["total_s"] / len(stats),
            "native_words_per_s": results["source_words"] / nat["total_s"],
            "identical_outputs": same(job["outputs"], nat["outputs"]),
            "decoder": variants[precision].files[decoders[precision]].name,
        }
        if precision != "fp32" and "fp32" in natives:  # which int8 stays closer to fp32?
            reference = natives["fp32"]["outputs"]
            results["backends"][precision]["browser_same_as_native_fp32"] = same(
                job["outputs"], reference
            )
            results["backends"][precision]["native_same_as_native_fp32"] = same(
                nat["outputs"], reference
            )
    # The machine is shared: the 1-minute load average around the run says how quiet it was.
    results["load_average_1min"] = {"before": load_before, "after": os.getloadavg()[0]}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out / "results.md").write_text(markdown(results), encoding="utf-8")
    return results


SCREENSHOT_TEXT = (
    "Two dogs play in the snow. A little girl climbs into a wooden playhouse.\n"
    "A man in a blue shirt is standing on a ladder."
)


def markdown(r: dict[str, Any]) -> str:
    rows = [
        "| precision | browser ms/sentence | browser words/s | browser encode ms | browser ms/step "
        "| native ORT ms/sentence | native words/s | identical text | download (gzip) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for precision, b in r["backends"].items():
        size = r["download"][precision]
        rows.append(
            f"| {precision} | {b['browser_ms_per_sentence']:.1f} | {b['browser_words_per_s']:.0f} "
            f"| {b['browser_encode_ms_mean']:.2f} | {b['browser_ms_per_step']:.2f} "
            f"| {b['native_ms_per_sentence']:.1f} | {b['native_words_per_s']:.0f} "
            f"| {b['identical_outputs']} "
            f"| {size['gzip'] / 2**20:.2f} MiB ({size['raw'] / 2**20:.2f} raw) |"
        )
    return "\n".join([
        f"# Browser demo benchmark ({r['date']})",
        "",
        f"{r['sentences']} test_2016_flickr en→de sentences ({r['source_words']} source words), "
        f"greedy, batch 1, one thread, after {r['warmup']} warm-up sentences; {r['chromium']} "
        "headless (ONNX Runtime Web, WebAssembly SIMD) vs native ONNX Runtime (Python runtime) "
        f"on {r['machine']}.",
        "",
        *rows,
        "",
        "Decoders the page ran: "
        + ", ".join(f"{p} `{b['decoder']}`" for p, b in r["backends"].items() if "decoder" in b)
        + ".",
        "",
        *[
            f"{p} text identical to native fp32's: browser {b['browser_same_as_native_fp32']}, "
            f"native {p} {b['native_same_as_native_fp32']}."
            for p, b in r["backends"].items()
            if "browser_same_as_native_fp32" in b
        ],
        "",
        f"Page load to first translation (int8, graphs fetched, verified and compiled on the way): "
        f"{r['first_translation_ms']:.0f} ms (page ready: {r['page_ready_ms']:.0f} ms). "
        f"Anchor: Firefox Translations ≈ {ANCHOR_WPS} words/s. 1-minute load average "
        f"{r['load_average_1min']['before']:.1f} before, {r['load_average_1min']['after']:.1f} "
        "after the run.",
        "",
    ])  # fmt: skip


def main(argv: list[str] | None = None, prog: str = "python -m benchmarks.web") -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=Path, required=True, help="ONNX artifact folder")
    parser.add_argument("--data", type=Path, help="Multi30k folder (test_2016_flickr.en.gz)")
    parser.add_argument("--sentences", type=int, default=100, help="sentences timed")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/web"))
    parser.add_argument("--screenshot", type=Path, help="also save a screenshot of the page here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not CHROMIUM.is_file():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium (make setup)")
    results = run(args.artifacts, args.out, args.data, args.sentences, args.screenshot)
    print(markdown(results))


if __name__ == "__main__":
    main()
