"""Peak memory of a streamed training-data pass, on generated corpora of growing size.

``python -m benchmarks.data_pass [--sizes 100000,1000000,10000000] [--out FILE.json]``

For each size, writes a gzip OPUS/Moses corpus (``big.de-en.{en,de}.gz``, 1% exact duplicates)
into a temporary folder, then runs one pass of :func:`lingolite.data.iter_clean_pairs` (gzip
reading, UTF-8 and bad-line checks, the on-disk duplicate index) in a fresh Python
process and records that process's peak RSS, the pairs kept and the wall time. Memory that does
not grow with the corpus shows as equal peaks; the ratio largest/smallest is reported from one
run (the machine is shared: compare within a run, not across runs). The generated files are
removed afterwards. A data pass of 10 million pairs takes minutes of one CPU core.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("benchmarks.data_pass")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (100_000, 1_000_000, 10_000_000)
# Every DUPLICATE_EVERY-th pair repeats the previous one: the index must drop it.
DUPLICATE_EVERY = 100

# Run in a fresh interpreter so that its peak RSS is the data pass's alone.
PASS = """
import json, resource, sys, time
from pathlib import Path
from lingolite.data import CorpusSpec, Direction, iter_clean_pairs
spec = CorpusSpec(Path(sys.argv[1]), "big", (Direction("en", "de"),))
start = time.perf_counter()
kept = sum(1 for _ in iter_clean_pairs([spec]))
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"kept": kept, "seconds": seconds, "peak_rss_mib": peak / 1024}))
"""


def write_corpus(folder: Path, pairs: int) -> int:
    """Write ``pairs`` lines per side; returns how many of them are duplicates."""
    duplicates = 0
    with (
        gzip.open(folder / "big.de-en.en.gz", "wt", encoding="utf-8", compresslevel=1) as en,
        gzip.open(folder / "big.de-en.de.gz", "wt", encoding="utf-8", compresslevel=1) as de,
    ):
        for i in range(pairs):
            k = i - 1 if i % DUPLICATE_EVERY == DUPLICATE_EVERY - 1 else i
            duplicates += k != i
            en.write(f"Sentence {k} tells of item {k * 7919 % 10007} in the old town.\n")
            de.write(f"Satz {k} erzählt von Ding {k * 7919 % 10007} in der Altstadt.\n")
    return duplicates


def measure(pairs: int, workdir: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lingolite-data-pass-", dir=workdir) as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        duplicates = write_corpus(folder, pairs)
        written = time.perf_counter() - start
        size = sum(p.stat().st_size for p in folder.iterdir())
        log.info("%d pairs written (%.1f MiB gzip) in %.0f s; data pass ...", pairs, size / 2**20,
                 written)  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", PASS, str(folder)], capture_output=True,
                             text=True, check=True, cwd=ROOT, env=env)  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if result["kept"] != pairs - duplicates:
        raise RuntimeError(f"kept {result['kept']} of {pairs} pairs, expected {pairs - duplicates}")
    result.update(pairs=pairs, duplicates=duplicates, gzip_mib=size / 2**20)
    log.info("%d pairs: peak RSS %.1f MiB, %.0f s (%.0f pairs/s)", pairs, result["peak_rss_mib"],
             result["seconds"], pairs / result["seconds"])  # fmt: skip
    return result


def markdown(data: dict[str, Any]) -> str:
    lines = [
        "| pairs | kept | gzip MiB | pass s | pairs/s | peak RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["runs"]:
        lines.append(
            f"| {r['pairs']:,} | {r['kept']:,} | {r['gzip_mib']:.0f} | {r['seconds']:.0f} | "
            f"{r['pairs'] / r['seconds']:,.0f} | {r['peak_rss_mib']:.1f} |"
        )
    lines.append(f"\nPeak RSS ratio largest/smallest corpus: {data['rss_ratio']:.3f}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, prog: str = "python -m benchmarks.data_pass") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="corpus sizes in pairs, comma-separated")  # fmt: skip
    parser.add_argument("--out", type=Path, help="write the results as JSON (and .md beside it)")
    parser.add_argument("--workdir", type=Path, help="folder for the generated corpora")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",")})
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not sizes or sizes[0] < DUPLICATE_EVERY:
        parser.error(f"--sizes must be >= {DUPLICATE_EVERY}, got {args.sizes!r}")
    runs = [measure(n, args.workdir) for n in sizes]
    data = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "runs": runs,
        "rss_ratio": runs[-1]["peak_rss_mib"] / runs[0]["peak_rss_mib"],
    }
    print(markdown(data), end="")
    if args.out is not None:
        for path, text in ((args.out, json.dumps(data, indent=2) + "\n"),
                           (args.out.with_suffix(".md"), markdown(data))):  # fmt: skip
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
