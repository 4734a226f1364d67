"""Peak resident memory of one backend, measured in a process of its own.

``python -m benchmarks.memory_probe REQUEST.json`` loads the backend the request names
(:class:`benchmarks.measure.BackendSpec`), translates the request's sources in batches (every
search setting it lists) and prints one JSON object::

    {"rss_start_mib": ..., "rss_loaded_mib": ..., "peak_rss_mib": ..., "load_s": ..., "run_s": ...}

``rss_start`` is the interpreter with numpy and the search code; ``rss_loaded`` adds the runtime
library and the model; ``peak_rss`` is the process's high-water mark (``VmHWM``) after the
translations, so it includes the runtime's working memory (KV caches, activations) at the largest
batch. Only the runtime the backend needs is imported (eager and ExecuTorch import torch, ONNX
Runtime and CTranslate2 do not), so each figure is what a deployment of that backend would pay.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.measure import BackendSpec, SpecialIds, open_runner


def _rss_mib() -> float:
    return float(psutil.Process().memory_info().rss / 2**20)


def peak_rss_mib() -> float:
    """This process's resident high-water mark: ``VmHWM`` of ``/proc/self/status``.

    Not ``getrusage().ru_maxrss``: Linux keeps that across ``fork`` + ``exec``, so a child
    started by a big parent reports the parent's peak. ``VmHWM`` belongs to the address space,
    which ``exec`` replaces. Falls back to ``ru_maxrss`` where there is no ``/proc``.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024  # kB
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024  # KiB on Linux


def probe(request: dict[str, Any]) -> dict[str, float]:
    """Load, translate, report memory (see the module docstring)."""
    start = _rss_mib()
    t0 = time.perf_counter()
    runner = open_runner(
        BackendSpec(**request["spec"]), int(request["threads"]), SpecialIds(**request["ids"])
    )
    loaded = _rss_mib()
    t1 = time.perf_counter()
    sources, batch = request["sources"], int(request["batch_size"])
    for num_beams in request["num_beams"]:
        for i in range(0, len(sources), batch):
            runner.translate(
                sources[i : i + batch],
                num_beams,
                int(request["max_length"]),
                bool(request["forced"]),
            )
    return {
        "rss_start_mib": round(start, 1),
        "rss_loaded_mib": round(loaded, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "load_s": round(t1 - t0, 2),
        "run_s": round(time.perf_counter() - t1, 2),
    }


def run_probe(request: dict[str, Any], workdir: Path, timeout_s: float = 900) -> dict[str, float]:
    """Run :func:`probe` for ``request`` in a fresh Python process; raises on failure."""
    path = workdir / f"probe-{request['spec']['name']}.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory_probe", str(path)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(
            f"memory probe of {request['spec']['name']} failed (exit {proc.returncode}): {tail}"
        )
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m benchmarks.memory_probe REQUEST.json", file=sys.stderr)
        return 2
    request = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    print(json.dumps(probe(request)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
