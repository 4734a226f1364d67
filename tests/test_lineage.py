"""Tests of lingolite.lineage: the stages' metrics files merged into one lineage file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from lingolite.lineage import LineageError, append_stages, main, merge_stages, read_lineage

PNG = b"\x89PNG\r\n\x1a\n"
# Stage A ran in two sessions: stopped at step 100 and resumed from its step-100 checkpoint.
STAGE_A = [
    {"event": "start", "step": 0, "args": {"resume": False}, "elapsed_s": 1.0},
    {"event": "train", "step": 50, "train_loss": 5.0, "lr": 1e-3, "elapsed_s": 60.0},
    {"event": "train", "step": 100, "train_loss": 4.0, "lr": 1e-3, "elapsed_s": 120.0},
    {"event": "val", "step": 100, "val_loss": 3.5, "val_sets": {"a/val": 3.5}, "elapsed_s": 130.0},
    {"event": "start", "step": 100, "args": {"resume": True}, "elapsed_s": 1.5},
    {"event": "train", "step": 150, "train_loss": 3.8, "lr": 9e-4, "elapsed_s": 55.0},
    {"event": "val", "step": 150, "val_loss": 3.2, "val_sets": {"a/val": 3.2}, "elapsed_s": 60.0},
]
STAGE_B = [
    {"event": "start", "step": 0, "args": {"resume": False}, "elapsed_s": 2.0},
    {"event": "train", "step": 50, "train_loss": 3.6, "lr": 3e-4, "elapsed_s": 50.0},
    {"event": "val", "step": 80, "val_loss": 3.0, "val_sets": {"a/val": 3.0}, "elapsed_s": 90.0},
]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def stages(tmp_path: Path) -> tuple[Path, Path]:
    return write_jsonl(tmp_path / "a.jsonl", STAGE_A), write_jsonl(tmp_path / "b.jsonl", STAGE_B)


def test_merge_offsets_steps_and_keeps_every_field(stages: tuple[Path, Path]) -> None:
    merged = merge_stages(stages)
    assert [(r["stage"], r["step"], r["lineage_step"]) for r in merged] == [
        (1, 0, 0), (1, 50, 50), (1, 100, 100), (1, 100, 100), (1, 100, 100), (1, 150, 150),
        (1, 150, 150),  # the resumed session is the same stage, its steps continue
        (2, 0, 150), (2, 50, 200), (2, 80, 230),  # stage 2 counts on from stage 1's last step
    ]  # fmt: skip
    originals = STAGE_A + STAGE_B
    assert [
        {k: v for k, v in r.items() if k not in ("stage", "lineage_step")} for r in merged
    ] == originals
    assert [list(r)[2:] for r in merged] == [list(r) for r in originals]  # field order kept


def test_append_creates_then_extends_the_lineage_file(
    stages: tuple[Path, Path], tmp_path: Path
) -> None:
    lineage, curves = tmp_path / "model" / "metrics.jsonl", tmp_path / "model" / "curves.png"
    lineage.parent.mkdir()
    append_stages(lineage, [stages[0]])
    assert {r["stage"] for r in read_lineage(lineage)} == {1}
    assert not curves.exists()
    merged = append_stages(lineage, [stages[1]], curves)
    assert merged == merge_stages(stages) == read_lineage(lineage)
    assert lineage.read_text().splitlines() == [json.dumps(r) for r in merged]
    assert curves.read_bytes()[:8] == PNG
    assert sorted(p.name for p in lineage.parent.iterdir()) == ["curves.png", "metrics.jsonl"]


def test_a_single_run_file_is_stage_1(stages: tuple[Path, Path], tmp_path: Path) -> None:
    """The Multi30k model's kind of folder: a plain metrics.jsonl gains a stage 2."""
    single = write_jsonl(tmp_path / "metrics.jsonl", STAGE_A)
    assert read_lineage(single) == merge_stages([stages[0]])
    assert append_stages(single, [stages[1]]) == merge_stages(stages)


def test_refuses_a_file_that_is_already_a_lineage(
    stages: tuple[Path, Path], tmp_path: Path
) -> None:
    lineage = tmp_path / "metrics.jsonl"
    append_stages(lineage, list(stages))
    before = lineage.read_bytes()
    other = write_jsonl(tmp_path / "other.jsonl", merge_stages(stages))
    with pytest.raises(LineageError, match=re.escape(f"{other}:1: already carries 'stage' = 1")):
        append_stages(lineage, [other])
    with pytest.raises(LineageError, match="is the lineage file itself"):
        append_stages(lineage, [lineage])
    with pytest.raises(LineageError, match="given twice as a stage"):
        append_stages(lineage, [stages[1], stages[1]])
    assert lineage.read_bytes() == before  # nothing written on refusal


def test_bad_input_names_file_line_and_value(stages: tuple[Path, Path], tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"event": "start", "step": 0}\n\n{"event": "train", "step": 5,\n')
    back = write_jsonl(tmp_path / "back.jsonl", [*STAGE_B, {"event": "train", "step": 60}])
    fresh = write_jsonl(tmp_path / "fresh.jsonl", [*STAGE_A[:2], {"event": "start", "step": 0}])
    no_step = write_jsonl(tmp_path / "nostep.jsonl", [{"event": "train", "step": "50"}])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(LineageError) as error:
        merge_stages([stages[0], bad_json, back, fresh, no_step, empty, missing])
    assert str(error.value).splitlines() == [  # every problem at once
        f"{bad_json}:3: not JSON (Expecting property name enclosed in double quotes): "
        """'{"event": "train", "step": 5,'""",
        f"{back}:4: step goes back from 80 (line 3) to 60: a file holds one stage (a resumed run continues its step count)",
        f"{fresh}:3: a second 'start' event at step 0, a new run rather than a resume: a file holds one stage",
        f"{no_step}:1: 'step' must be an integer >= 0, got '50'",
        f"{empty}: holds no records",
        f"{missing}: no such file",
    ]
    not_object = tmp_path / "list.jsonl"
    not_object.write_text("[1, 2]\n")
    with pytest.raises(
        LineageError, match=re.escape(f"{not_object}:1: expected a JSON object, got '[1, 2]'")
    ):
        merge_stages([not_object])


def test_read_lineage_checks_stage_order_and_offsets(
    stages: tuple[Path, Path], tmp_path: Path
) -> None:
    records = merge_stages(stages)
    records[-1]["stage"] = 4
    records[2]["lineage_step"] = 99
    broken = write_jsonl(tmp_path / "broken.jsonl", records)
    with pytest.raises(LineageError) as error:
        read_lineage(broken)
    assert str(error.value).splitlines() == [
        f"{broken}:3: lineage_step 99 - step 100 != 0, the offset of stage 1's other records",
        f"{broken}:10: stage 4 follows stage 2",
    ]
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [*merge_stages([stages[0]]), STAGE_B[0]])
    with pytest.raises(
        LineageError, match=re.escape(f"{mixed}:8: a lineage record needs integer 'stage'")
    ):
        read_lineage(mixed)


def test_main_appends_and_reports_errors(
    stages: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lineage, curves = tmp_path / "metrics.jsonl", tmp_path / "curves.png"
    args = ["--lineage", str(lineage), "--add", str(stages[0]), "--add", str(stages[1])]
    assert main([*args, "--curves", str(curves)]) == 0
    assert read_lineage(lineage) == merge_stages(stages)
    assert curves.read_bytes()[:8] == PNG
    assert main(["--lineage", str(lineage), "--add", str(lineage)]) == 2
    assert "is the lineage file itself" in caplog.text
