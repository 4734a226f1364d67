"""benchmarks.train_speed: a tiny interleaved run on the toy corpus (every option reported,
padding shares, ratios against the same run's baseline, the best combination) and the pieces
that decide what is combined. No test asserts a time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks.train_speed import (
    BEST,
    LEVERS,
    Bench,
    BenchError,
    best_changes,
    main,
    markdown,
    run_bench,
)
from lingolite.train import cpu_bf16

TINY_MODEL: dict[str, Any] = dict(
    d_model=32, n_heads=2, n_kv_heads=1, n_encoder_layers=1, n_decoder_layers=1, ffn_dim=64
)  # fmt: skip
OPTIONS = ("baseline", "bf16", "fused_adamw", "foreach_adamw", "threads_1")


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def report(
    toy_corpus_dir: Path,
    toy_tokenizer_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    one_thread: None,
) -> tuple[Path, dict[str, Any]]:
    """Every default option for 2 + 1 steps; min_gain -1 makes every lever join the best."""
    out = tmp_path_factory.mktemp("train_speed") / "results"
    bench = Bench(
        data=[str(toy_corpus_dir)], pairs="en-de", out=out, tokenizer=toy_tokenizer_dir,
        steps=2, warmup=1, max_tokens=256, val_max=20, min_gain=-1.0, loss_tol=100.0,
        model_overrides=TINY_MODEL, options=OPTIONS, command="pytest",
    )  # fmt: skip
    return out, run_bench(bench)


def rows_by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in report["options"]}


def test_report_has_every_option_and_both_files(report: tuple[Path, dict[str, Any]]) -> None:
    out, data = report
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "results.md"]
    assert json.loads((out / "results.json").read_text()) == data
    assert [row["name"] for row in data["options"]] == [*OPTIONS, BEST]
    text = (out / "results.md").read_text()
    assert all(f"`{name}`" in text for name in [*OPTIONS, BEST])
    assert data["command"] == "pytest" and data["settings"]["steps"] == 2
    ratio = rows_by_name(data)[BEST]["speed_ratio"]
    assert f"**{ratio:.2f}x** the baseline's" in text and "aim of 2x at equal loss" in text


def test_bf16_is_measured_only_where_the_cpu_supports_it(
    report: tuple[Path, dict[str, Any]],
) -> None:
    row = rows_by_name(report[1])["bf16"]
    supported, _ = cpu_bf16()
    assert row["status"] == ("measured" if supported else "skipped")
    assert report[1]["bf16"]["supported"] == supported


def test_padding_shares_losses_and_ratios_come_from_the_same_run(
    report: tuple[Path, dict[str, Any]],
) -> None:
    rows = rows_by_name(report[1])
    base = rows["baseline"]
    measured = [r for r in rows.values() if r["status"] == "measured"]
    assert len(measured) >= len(OPTIONS)  # the best too (bf16 may be skipped)
    for row in measured:
        assert 0 <= row["padding_share"] <= 1
        assert row["tokens_per_s"] > 0 and row["steps"] >= 2
        if row["name"] != BEST:  # the best's: against the baseline run beside it
            assert row["speed_ratio"] == pytest.approx(row["tokens_per_s"] / base["tokens_per_s"])
        assert row["loss_delta"] == pytest.approx(row["mean_train_loss"] - base["mean_train_loss"])
        assert len(row["losses"]) == 3 and row["val_loss"] > 0
    assert base["speed_ratio"] == 1 and base["steps"] == 2
    assert len(base["step_seconds"]) == len(base["step_tokens"]) == 3
    # Same initial weights and batches: the AdamW kernels and thread counts train alike.
    for name in ("fused_adamw", "foreach_adamw", "threads_1"):
        assert rows[name]["losses"][0] == base["losses"][0]
        assert abs(rows[name]["loss_delta"]) < 1e-3 and rows[name]["max_step_loss_delta"] < 1e-3
    assert report[1]["collate_share"] >= 0


def test_best_combines_the_paying_levers(report: tuple[Path, dict[str, Any]]) -> None:
    rows = rows_by_name(report[1])
    best = rows[BEST]
    assert best["status"] == "measured"
    # Against the baseline's steps of the second phase, interleaved with the best's.
    assert len(best["baseline_step_seconds"]) == 3
    assert best["speed_ratio"] == pytest.approx(
        best["tokens_per_s"] / best["baseline_tokens_per_s"]
    )
    assert len({"fused_adamw", "foreach_adamw"} & set(report[1]["best"])) == 1  # one AdamW
    assert "threads_1" in report[1]["best"]
    assert best["changes"]["num_threads"] == 1 and "adamw_impl" in best["changes"]


def test_best_changes_keeps_the_faster_of_exclusive_levers_within_the_loss_tolerance() -> None:
    def row(name: str, ratio: float, delta: float = 0.0) -> dict[str, Any]:
        return {"name": name, "status": "measured", "speed_ratio": ratio, "loss_delta": delta}

    rows = [row("baseline", 1.0), row("fused_adamw", 1.2), row("foreach_adamw", 1.3),
            row("bf16", 1.5, delta=0.05), row("threads_1", 1.01),
            {"name": "compile", "status": "skipped"}]  # fmt: skip
    assert best_changes(rows, min_gain=0.03, loss_tol=0.02) == ["foreach_adamw"]
    assert best_changes(rows, min_gain=0.0, loss_tol=0.1) == ["bf16", "foreach_adamw", "threads_1"]
    assert best_changes(rows, min_gain=1.0, loss_tol=0.1) == []


def test_every_lever_is_a_train_config_change() -> None:
    from lingolite.train import TrainConfig

    fields = set(TrainConfig.__dataclass_fields__)
    for lever in LEVERS.values():
        assert set(lever.changes) <= fields, lever.name


def test_options_report_every_problem_at_once(tmp_path: Path) -> None:
    bench = Bench(data=[], pairs="en-de", out=tmp_path, steps=0, warmup=-1,
                  options=("bf16", "warp", "bf16"))  # fmt: skip
    problems = bench.problems()
    for fragment in ("unknown option 'warp'", "must include baseline", "repeat a name",
                     "steps must be >= 1, got 0", "warmup must be >= 0, got -1", "data folder"):  # fmt: skip
        assert any(fragment in p for p in problems), (fragment, problems)
    with pytest.raises(BenchError, match="unknown option 'warp'"):
        run_bench(bench)
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--pairs", "en-de", "--out", str(tmp_path),
              "--options", "bf16"])  # fmt: skip


def test_init_from_must_be_a_model_folder_without_a_tokenizer(tmp_path: Path) -> None:
    bench = Bench(data=[str(tmp_path)], pairs="en-de", out=tmp_path, init_from=tmp_path / "m",
                  tokenizer=tmp_path)  # fmt: skip
    problems = bench.problems()
    assert f"init_from {tmp_path / 'm'} is not a model folder (no config.json)" in problems
    assert "init_from brings its own tokenizer: do not give tokenizer as well" in problems


RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


@pytest.mark.parametrize("name", ["train_speed", "train_speed-bf16-loss", "train_speed-compile"])
def test_committed_results_render_again(name: str) -> None:
    folder = RESULTS / name
    report = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert markdown(report) == (folder / "results.md").read_text(encoding="utf-8")
