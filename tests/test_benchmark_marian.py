"""``benchmarks.run --marian``: an imported Marian model side by side with CTranslate2
(``ct2-transformers-converter``), Optimum's ONNX export and transformers on the same weights, in
one quick run on an offline-built folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.report import BASELINE, OPTIMUM, PEER
from benchmarks.run import BenchmarkError, BenchOptions, run_benchmark
from tests.marian_fixtures import corpus, train_spm, write_marian_folder

pytest.importorskip("optimum.onnxruntime")

MARIAN_BACKENDS = [
    BASELINE, "onnxruntime fp32", "onnxruntime int8", "onnxruntime int8 grow",
    "executorch 8da4w", PEER, OPTIMUM, "optimum onnx int8", "transformers fp32",
]  # fmt: skip


@pytest.fixture(scope="module")
def marian(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bench-marian")
    models = train_spm(corpus(0, 300), 400, 0.995), train_spm(corpus(1, 300), 350, 1.0)
    folder = write_marian_folder(root / "opus-mt-en-de", models)
    return run_benchmark(BenchOptions(out=root / "out", marian=folder, quick=True))


def test_every_backend_and_peer_is_measured(marian: dict[str, Any]) -> None:
    assert list(marian["backends"]) == MARIAN_BACKENDS
    assert marian["model"]["norm"] == "layernorm" and marian["model"]["positions"] == "sinusoidal"
    for name, entry in marian["backends"].items():
        for key in ("greedy_ms_per_token", "beam4_b32_tok_s", "size_mib", "peak_rss_mib"):
            assert entry["metrics"][key] > 0, (name, key)


def test_peers_do_the_same_forced_work(marian: dict[str, Any]) -> None:
    s = marian["settings"]
    assert s["forced"]
    for name, entry in marian["backends"].items():
        d = entry["details"]
        assert d["beam4_b32"]["tokens"] == s["throughput_sentences"] * s["max_length"], name
        assert d["greedy_b1"]["tokens"] == s["latency_sentences"] * s["max_length"], name


def test_float_peers_decode_the_same_tokens(marian: dict[str, Any]) -> None:
    """Same weights, same greedy search: Optimum fp32 and transformers give eager's tokens."""
    for name in ("onnxruntime fp32", OPTIMUM, "transformers fp32"):
        for key in ("greedy_b1", "greedy_b32"):
            check = marian["backends"][name]["parity"][key]
            assert check["equal"] and check["token_agreement"] == 1.0, (name, key, check)


def test_marian_targets_are_reported(marian: dict[str, Any]) -> None:
    rows = {t["target"]: t for t in marian["targets"]}
    for target in (
        "best LingoLite backend vs Optimum ONNX fp32, beam 4 batch 32 throughput",
        "best LingoLite backend vs CTranslate2 int8 (converter), beam 4 batch 32",
        "best LingoLite backend vs CTranslate2 int8 (converter), greedy batch 1 per token",
    ):
        assert rows[target]["value"] > 0 and rows[target]["backend"] not in (PEER, OPTIMUM)


def test_marian_option_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError) as error:
        run_benchmark(BenchOptions(out=tmp_path / "o", marian=tmp_path, size="tiny"))
    assert "drop --size and --checkpoint" in str(error.value)
    assert f"--marian {tmp_path} has no config.json" in str(error.value)
