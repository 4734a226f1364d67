"""One ``metrics.jsonl`` for a model trained in stages: the stages' metrics, merged.

``python -m lingolite.lineage --lineage pretrained/NAME/metrics.jsonl --add runs/NEXT/metrics.jsonl
--curves pretrained/NAME/curves.png`` appends a finished training run as the model's next stage
and redraws its curves. Repeating ``--add`` appends several stages in order; a ``--lineage`` file
that does not exist yet is created, one without stage fields (a single run, as
:mod:`lingolite.train` writes it) is stage 1.

A stage is one run of :mod:`lingolite.train` continuing from the previous stage's weights: a
fresh optimizer, its ``step`` counting from 0 again. Every record of the lineage keeps its fields
and gains ``stage`` (1-based) and ``lineage_step``, its ``step`` plus the steps of the stages
before it (the last step of each). A resumed run (``--resume``) is not a new stage: its second
``"start"`` event continues the step count, so both sessions form one stage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeGuard

from lingolite.plotting import LINEAGE_STEP, STAGE, plot_curves
from lingolite.utils import atomic_write_bytes

log = logging.getLogger(__name__)

Record = dict[str, Any]


class LineageError(ValueError):
    """Bad metrics input; the message names every problem with its file, line and value."""


def merge_stages(stage_files: Sequence[Path]) -> list[Record]:
    """The lineage of ``stage_files`` (stage 1 first), each one run's ``metrics.jsonl``.

    Record ``r`` of stage ``k`` gets ``stage = k`` and ``lineage_step = r.step + sum of last_step(j)
    for j < k``, where ``last_step(j)`` is the step of stage ``j``'s last record.
    """
    return extend_lineage([], stage_files)


def extend_lineage(lineage: list[Record], stage_files: Sequence[Path]) -> list[Record]:
    """``lineage`` (a valid lineage, possibly empty) followed by ``stage_files`` as new stages.

    Every file is read and checked before anything is merged; all problems are reported at once.
    """
    problems: list[str] = []
    seen: set[Path] = set()
    for path in stage_files:
        if path.resolve() in seen:
            problems.append(f"{path}: given twice as a stage")
        seen.add(path.resolve())
    stages = [_read_stage(path, problems) for path in stage_files]
    if problems:
        raise LineageError("\n".join(problems))
    merged = list(lineage)
    stage = max((r[STAGE] for r in merged), default=0)
    offset = max((r[LINEAGE_STEP] for r in merged), default=0)
    for records in stages:
        stage += 1
        merged += [{STAGE: stage, LINEAGE_STEP: offset + r["step"], **r} for r in records]
        offset += records[-1]["step"]
    return merged


def read_lineage(path: Path) -> list[Record]:
    """A lineage file's records, checked; a file without stage fields (a single run) is stage 1."""
    problems: list[str] = []
    lines = _read_objects(path, problems)
    if problems:
        raise LineageError("\n".join(problems))
    if not any(STAGE in r or LINEAGE_STEP in r for _, r in lines):
        log.info("%s has no %r fields: a single run, taken as stage 1", path, STAGE)
        return merge_stages([path])
    offsets: dict[int, int] = {}
    previous: tuple[int, int, int] | None = None  # line, stage, lineage_step
    for n, r in lines:
        stage, step, lineage_step = r.get(STAGE), r.get("step"), r.get(LINEAGE_STEP)
        if not (_is_count(stage) and stage >= 1 and _is_count(step) and _is_count(lineage_step)):
            problems.append(
                f"{path}:{n}: a lineage record needs integer {STAGE!r} >= 1, 'step' >= 0 and "
                f"{LINEAGE_STEP!r} >= 0, got {STAGE}={stage!r}, step={step!r}, "
                f"{LINEAGE_STEP}={lineage_step!r}"
            )
            continue
        if previous is None and stage != 1:
            problems.append(f"{path}:{n}: the first record's {STAGE} is {stage}, not 1")
        elif previous is not None and stage not in (previous[1], previous[1] + 1):
            problems.append(f"{path}:{n}: {STAGE} {stage} follows {STAGE} {previous[1]}")
        elif previous is not None and lineage_step < previous[2]:
            problems.append(
                f"{path}:{n}: {LINEAGE_STEP} goes back from {previous[2]} (line {previous[0]}) "
                f"to {lineage_step}"
            )
        offset = offsets.setdefault(stage, lineage_step - step)
        if lineage_step - step != offset:
            problems.append(
                f"{path}:{n}: {LINEAGE_STEP} {lineage_step} - step {step} != {offset}, the offset "
                f"of {STAGE} {stage}'s other records"
            )
        previous = (n, stage, lineage_step)
    if problems:
        raise LineageError("\n".join(problems))
    return [r for _, r in lines]


def append_stages(
    lineage_file: Path, stage_files: Sequence[Path], curves: Path | None = None
) -> list[Record]:
    """Append ``stage_files`` to ``lineage_file`` (created if missing) as its next stages.

    The lineage file is replaced atomically, and ``curves`` (a PNG) redrawn from it. Returns the
    lineage's records.
    """
    if lineage_file.exists():
        for path in stage_files:
            if path.resolve() == lineage_file.resolve():
                raise LineageError(f"{path}: is the lineage file itself, not a new stage's metrics")
    lineage = read_lineage(lineage_file) if lineage_file.exists() else []
    merged = extend_lineage(lineage, stage_files)
    text = "".join(json.dumps(r) + "\n" for r in merged)
    atomic_write_bytes(lineage_file, text.encode("utf-8"))
    stages = max(r[STAGE] for r in merged)
    log.info("%s: %d stages, %d records", lineage_file, stages, len(merged))
    if curves is not None and plot_curves(lineage_file, curves):
        log.info("drew %s", curves)
    return merged


def _read_objects(path: Path, problems: list[str]) -> list[tuple[int, Record]]:
    """The (line number, object) pairs of a JSON-lines file; blank lines skipped."""
    if not path.is_file():
        problems.append(f"{path}: no such file")
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read it ({exc})")
        return []
    lines = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{n}: not JSON ({exc.msg}): {_clip(line)}")
            continue
        if not isinstance(value, dict):
            problems.append(f"{path}:{n}: expected a JSON object, got {_clip(line)}")
            continue
        lines.append((n, value))
    return lines


def _read_stage(path: Path, problems: list[str]) -> list[Record]:
    """One run's records, checked: no stage fields, ``step`` never going back."""
    found = len(problems)
    lines = _read_objects(path, problems)
    if len(problems) == found and not lines:
        problems.append(f"{path}: holds no records")
    previous: tuple[int, int] | None = None  # line, step
    for n, r in lines:
        for key in (STAGE, LINEAGE_STEP):
            if key in r:
                problems.append(
                    f"{path}:{n}: already carries {key!r} = {r[key]!r}: it is a lineage, not one "
                    "stage's metrics (add the stage's own run metrics.jsonl)"
                )
        step = r.get("step")
        if not _is_count(step):
            problems.append(f"{path}:{n}: 'step' must be an integer >= 0, got {step!r}")
            continue
        if previous is not None and r.get("event") == "start" and step == 0:
            problems.append(
                f"{path}:{n}: a second 'start' event at step 0, a new run rather than a resume: "
                "a file holds one stage"
            )
        elif previous is not None and step < previous[1]:
            problems.append(
                f"{path}:{n}: step goes back from {previous[1]} (line {previous[0]}) to {step}: "
                "a file holds one stage (a resumed run continues its step count)"
            )
        previous = (n, step)
    return [r for _, r in lines]


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _clip(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def main(argv: list[str] | None = None, prog: str = "python -m lingolite.lineage") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--lineage", type=Path, required=True, help="the model's metrics.jsonl")
    p.add_argument(
        "--add",
        type=Path,
        action="append",
        required=True,
        help="a finished run's metrics.jsonl, appended as the next stage (repeatable)",
    )
    p.add_argument("--curves", type=Path, help="PNG to redraw from the lineage (curves.png)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        append_stages(args.lineage, args.add, args.curves)
    except (LineageError, OSError) as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
