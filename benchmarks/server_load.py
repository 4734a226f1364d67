"""Load test of the translation server on loopback: throughput, latency and memory.

``python -m benchmarks.server_load --artifacts DIR [--clients 16] [--duration 60] [--port 0]
[--max-requests N] [--precision fp32|int8] [--max-concurrency N] [--max-queue N] [--threads N]
[--batch-sentences N] [--batch-wait-ms M] [--compare-batching --rounds R] [--out FILE]``

Starts ``python -m runtime.server`` in a subprocess bound to 127.0.0.1 (port 0: a free one,
read back from the server's log), waits for ``/health``, then runs ``--clients`` concurrent
httpx clients, each posting one sentence per request, until ``--duration`` seconds or
``--max-requests`` requests have been sent. Reports requests/s, p50/p99 latency, the error
count, and the server process's resident memory before, during (peak) and after the load;
writes them as JSON to ``--out``. The server runs with its rate limits off.

``--compare-batching`` measures batching across requests off (``--batch-sentences 1``) against
on (the server's defaults, or ``--batch-sentences``/``--batch-wait-ms``) in one run: ``--rounds``
rounds of off then on, each against a fresh server, so that both see the same machine load; it
writes every run and the on/off ratios of req/s and p50/p99 latency (per round and their median)
to ``--out``, and a Markdown table beside it (``.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import psutil

from lingolite.utils import atomic_write_bytes

log = logging.getLogger("benchmarks.server_load")

HOST = "127.0.0.1"
SENTENCES = [
    "A man in a blue shirt is standing on a ladder.",
    "Two young children are playing in the sand.",
    "A group of people are walking down a busy street.",
    "The dog runs through the snow.",
    "A woman is reading a book in the park while her friend plays the guitar.",
    "Three men are working on a building site.",
]
_STARTED = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@dataclass
class Totals:
    """What the clients saw: one latency per answered request, errors by status or exception."""

    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0


def start_server(
    artifacts: Path, port: int, server_args: Sequence[str], log_path: Path, timeout_s: float = 120
) -> tuple[subprocess.Popen[bytes], int]:
    """Start the server on loopback; returns the process and its port once /health answers."""
    cmd = [
        sys.executable,
        "-m",
        "runtime.server",
        "--artifacts",
        str(artifacts),
        "--host",
        HOST,
        "--port",
        str(port),
        *server_args,
    ]
    log.info("starting: %s", " ".join(cmd))
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
        found = _STARTED.search(log_path.read_text(errors="replace"))
        if found:
            bound = int(found.group(1))
            if httpx.get(f"http://{HOST}:{bound}/health", timeout=5).status_code == 200:
                return proc, bound
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"server not ready after {timeout_s} s:\n{log_path.read_text()}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _client(
    client: httpx.AsyncClient,
    payloads: list[dict[str, Any]],
    deadline: float,
    max_requests: int,
    totals: Totals,
) -> None:
    while time.monotonic() < deadline and totals.sent < max_requests:
        payload = payloads[totals.sent % len(payloads)]
        totals.sent += 1
        start = time.perf_counter()
        try:
            response = await client.post("/translate", json=payload)
        except httpx.HTTPError as exc:
            totals.errors[type(exc).__name__] += 1
            continue
        if response.status_code == 200:
            totals.latencies_s.append(time.perf_counter() - start)
        else:
            totals.errors[str(response.status_code)] += 1


async def _sample_rss(process: psutil.Process, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        await asyncio.sleep(0.25)


async def drive(
    base_url: str,
    payloads: list[dict[str, Any]],
    *,
    clients: int,
    duration_s: float,
    max_requests: int,
    server: psutil.Process,
) -> tuple[Totals, float, int]:
    """Run the clients; returns their totals, the wall time and the server's peak RSS."""
    totals, peak, stop = Totals(), [server.memory_info().rss], asyncio.Event()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as client:
        sampler = asyncio.create_task(_sample_rss(server, peak, stop))
        start = time.perf_counter()
        deadline = time.monotonic() + duration_s
        await asyncio.gather(
            *(_client(client, payloads, deadline, max_requests, totals) for _ in range(clients))
        )
        elapsed = time.perf_counter() - start
        stop.set()
        await sampler
    return totals, elapsed, peak[0]


def run_load(
    artifacts: Path,
    *,
    clients: int = 16,
    duration_s: float = 60.0,
    max_requests: int = 1_000_000,
    port: int = 0,
    server_args: Sequence[str] = (),
) -> dict[str, Any]:
    """Start the server, load it, stop it; returns the result written by :func:`main`."""
    with tempfile.TemporaryDirectory(prefix="lingolite-load-") as tmp:
        args = ["--rate-limit", "off", "--global-rate-limit", "off", *server_args]
        proc, bound = start_server(artifacts, port, args, Path(tmp) / "server.log")
        try:
            base_url = f"http://{HOST}:{bound}"
            languages = httpx.get(f"{base_url}/languages", timeout=10).json()
            codes = [lang["code"] for lang in languages]
            src = "en" if "en" in codes else codes[0]
            tgt = "de" if "de" in codes and src != "de" else next(c for c in codes if c != src)
            payloads = [{"q": s, "source": src, "target": tgt} for s in SENTENCES]
            server = psutil.Process(proc.pid)
            rss_before = server.memory_info().rss
            totals, elapsed, rss_peak = asyncio.run(
                drive(
                    base_url,
                    payloads,
                    clients=clients,
                    duration_s=duration_s,
                    max_requests=max_requests,
                    server=server,
                )
            )
            rss_after = server.memory_info().rss
        finally:
            stop_server(proc)
    lat_ms = np.array(totals.latencies_s) * 1000.0
    mib = 2.0**20
    return {
        "command": " ".join(
            [Path(sys.executable).name, "-m", "benchmarks.server_load", *sys.argv[1:]]
        ),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "artifacts": str(artifacts),
        "server_args": args,
        "direction": f"{src}->{tgt}",
        "clients": clients,
        "wall_s": round(elapsed, 3),
        "requests": totals.sent,
        "ok": len(lat_ms),
        "errors": sum(totals.errors.values()),
        "errors_by_kind": dict(totals.errors),
        "requests_per_s": round(len(lat_ms) / elapsed, 2) if elapsed > 0 else 0.0,
        "latency_ms": _latency_summary(lat_ms),
        "server_rss_mib": {
            "before": round(rss_before / mib, 1),
            "peak": round(rss_peak / mib, 1),
            "after": round(rss_after / mib, 1),
        },
    }


def compare_batching(
    artifacts: Path,
    *,
    rounds: int,
    server_args: Sequence[str],
    batching_args: Sequence[str],
    **load: Any,
) -> dict[str, Any]:
    """Batching off vs on, alternating, ``rounds`` times (see the module docstring)."""
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for r in range(rounds):
        for mode, extra in (("off", ["--batch-sentences", "1"]), ("on", list(batching_args))):
            log.info("round %d/%d: batching %s", r + 1, rounds, mode)
            runs[mode].append(run_load(artifacts, server_args=[*server_args, *extra], **load))
    per_round = [
        {
            "requests_per_s": _ratio(on["requests_per_s"], off["requests_per_s"]),
            "p50": _ratio(on["latency_ms"]["p50"], off["latency_ms"]["p50"]),
            "p99": _ratio(on["latency_ms"]["p99"], off["latency_ms"]["p99"]),
        }
        for off, on in zip(runs["off"], runs["on"], strict=True)
    ]
    median = {
        key: round(float(np.median([r[key] for r in per_round if r[key] is not None])), 3)
        if any(r[key] is not None for r in per_round)
        else None
        for key in ("requests_per_s", "p50", "p99")
    }
    return {
        "kind": "server_load batching off vs on",
        "command": runs["on"][0]["command"],
        "machine": runs["on"][0]["machine"],
        "artifacts": str(artifacts),
        "clients": runs["on"][0]["clients"],
        "rounds": rounds,
        "runs": runs,
        "ratios_on_over_off": {"per_round": per_round, "median": median},
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def comparison_markdown(result: dict[str, Any]) -> str:
    """A Markdown table of :func:`compare_batching`'s result."""
    lines = [
        f"# Server load: batching across requests off vs on ({result['clients']} clients)",
        "",
        f"`{result['command']}`",
        "",
        f"Artifacts `{result['artifacts']}`; machine {result['machine']['platform']}, "
        f"{result['machine']['cpus']} CPUs, shared with other jobs (compare ratios within a "
        "round, not absolute times).",
        "",
        "| round | batching | server args | ok | errors | req/s | p50 (ms) | p99 (ms) |"
        " peak RSS (MiB) |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in range(result["rounds"]):
        for mode in ("off", "on"):
            run = result["runs"][mode][r]
            args = " ".join(run["server_args"][4:])  # past the rate limits
            lat = run["latency_ms"]
            lines.append(
                f"| {r + 1} | {mode} | `{args}` | {run['ok']} | {run['errors']} | "
                f"{run['requests_per_s']} | {lat['p50']} | {lat['p99']} | "
                f"{run['server_rss_mib']['peak']} |"
            )
    median = result["ratios_on_over_off"]["median"]
    lines += [
        "",
        "On / off within each round, median over rounds (req/s above 1 and latency below 1 "
        f"favour batching): req/s {median['requests_per_s']}x, p50 {median['p50']}x, "
        f"p99 {median['p99']}x.",
        "",
    ]
    return "\n".join(lines)


def write_text_atomic(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _latency_summary(lat_ms: npt.NDArray[np.float64]) -> dict[str, float | None]:
    if not len(lat_ms):
        return dict.fromkeys(("p50", "p99", "mean", "max"))
    p50, p99 = np.percentile(lat_ms, [50, 99])
    values = {"p50": p50, "p99": p99, "mean": lat_ms.mean(), "max": lat_ms.max()}
    return {name: round(float(v), 2) for name, v in values.items()}


POSITIVE_OPTIONS = (
    *("clients", "max_requests", "max_concurrency", "max_queue", "threads"),
    *("batch_sentences", "rounds"),
)


def main(argv: Sequence[str] | None = None, prog: str = "python -m benchmarks.server_load") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", type=Path, required=True)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    p.add_argument("--max-requests", type=int, default=1_000_000, help="stop after this many")
    p.add_argument("--port", type=int, default=0, help="0: a free port")
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32")
    p.add_argument("--max-concurrency", type=int, help="server option (default: the server's)")
    p.add_argument("--max-queue", type=int, help="server option (default: the server's)")
    p.add_argument("--threads", type=int, help="server option (default: the server's)")
    p.add_argument("--batch-sentences", type=int, help="server option (default: the server's)")
    p.add_argument("--batch-wait-ms", type=float, help="server option (default: the server's)")
    p.add_argument(
        "--compare-batching",
        action="store_true",
        help="run batching off (--batch-sentences 1) and on, --rounds times, in one run",
    )
    p.add_argument("--rounds", type=int, default=2, help="with --compare-batching")
    p.add_argument("--out", type=Path, default=Path("server_load.json"))
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    problems = [
        f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}"
        for name in POSITIVE_OPTIONS
        if getattr(args, name) is not None and getattr(args, name) < 1
    ]
    if args.duration <= 0:
        problems.append(f"--duration must be > 0, got {args.duration}")
    if args.batch_wait_ms is not None and not args.batch_wait_ms >= 0:
        problems.append(f"--batch-wait-ms must be >= 0, got {args.batch_wait_ms}")
    if args.compare_batching and args.batch_sentences == 1:
        problems.append("--compare-batching needs --batch-sentences above 1 (1 is 'off')")
    if problems:
        p.error("; ".join(problems))
    server_args = ["--precision", args.precision]
    for name in ("max_concurrency", "max_queue", "threads"):
        if getattr(args, name) is not None:
            server_args += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    batching_args: list[str] = []
    for name in ("batch_sentences", "batch_wait_ms"):
        if getattr(args, name) is not None:
            batching_args += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    if args.compare_batching:
        comparison = compare_batching(
            args.artifacts,
            rounds=args.rounds,
            server_args=server_args,
            batching_args=batching_args,
            clients=args.clients,
            duration_s=args.duration,
            max_requests=args.max_requests,
            port=args.port,
        )
        write_text_atomic(args.out, json.dumps(comparison, indent=2) + "\n")
        write_text_atomic(args.out.with_suffix(".md"), comparison_markdown(comparison))
        median = comparison["ratios_on_over_off"]["median"]
        log.info(
            "batching on / off (median of %d rounds): req/s %sx, p50 %sx, p99 %sx; written to %s",
            args.rounds,
            median["requests_per_s"],
            median["p50"],
            median["p99"],
            args.out,
        )
        return 0
    result = run_load(
        args.artifacts,
        clients=args.clients,
        duration_s=args.duration,
        max_requests=args.max_requests,
        port=args.port,
        server_args=[*server_args, *batching_args],
    )
    write_text_atomic(args.out, json.dumps(result, indent=2) + "\n")
    lat, rss = result["latency_ms"], result["server_rss_mib"]
    log.info(
        "%d ok, %d errors in %.1f s: %.1f req/s, p50 %s ms, p99 %s ms; server RSS %s -> %s "
        "MiB (peak %s); written to %s",
        result["ok"],
        result["errors"],
        result["wall_s"],
        result["requests_per_s"],
        lat["p50"],
        lat["p99"],
        rss["before"],
        rss["after"],
        rss["peak"],
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
