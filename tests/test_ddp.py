"""DistributedDataParallel on 2 CPU processes (gloo), launched by torchrun as in production."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lingolite.train import find_checkpoints

# Runs lingolite.train.train under torchrun, recording the batches each rank draws from the
# batcher and a hash of its final parameters.
WORKER = """
import hashlib, json, os, sys
from pathlib import Path
import lingolite.train as T

seen = []

class RecordingBatcher(T.TokenBudgetBatcher):
    def __iter__(self):
        for batch in super().__iter__():
            seen.append(batch)
            yield batch

T.TokenBudgetBatcher = RecordingBatcher
options = json.loads(sys.argv[1])
result = T.train(T.TrainConfig(**options))
params = b"".join(p.detach().numpy().tobytes() for p in result.model.parameters())
report = {"sha256": hashlib.sha256(params).hexdigest(), "batches": seen,
          "world_size": int(os.environ["WORLD_SIZE"]), "steps": result.final_step}
Path(options["out"]).parent.joinpath(f"rank{os.environ['RANK']}.json").write_text(json.dumps(report))
"""


ROOT = Path(__file__).resolve().parents[1]


def torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", *args]  # fmt: skip
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_two_ranks_stay_identical_and_see_different_batches(
    toy_corpus_dir: Path, toy_tokenizer_dir: Path, tmp_path: Path
) -> None:
    options: dict[str, Any] = dict(
        data=str(toy_corpus_dir), pairs="en-de,de-en", out=str(tmp_path / "out"),
        tokenizer=str(toy_tokenizer_dir), max_src_len=32, max_tgt_len=32, max_tokens=256,
        max_steps=4, warmup_steps=2, eval_every=2, save_every=2, log_every=2, grad_accum=2,
        device="cpu", num_threads=1, dropout=0.1,
        model_overrides=dict(d_model=64, n_heads=4, n_kv_heads=2, n_encoder_layers=2,
                             n_decoder_layers=2, ffn_dim=128),
    )  # fmt: skip
    (tmp_path / "worker.py").write_text(WORKER)
    torchrun([str(tmp_path / "worker.py"), json.dumps(options)], cwd=tmp_path)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["steps"] for r in ranks] == [4, 4]
    assert ranks[0]["sha256"] == ranks[1]["sha256"]  # gradients were all-reduced
    batches = [[tuple(b) for b in r["batches"]] for r in ranks]
    assert [len(b) for b in batches] == [8, 8]  # 4 steps x grad_accum 2
    examples = [{i for b in rank for i in b} for rank in batches]
    assert not examples[0] & examples[1]  # disjoint shards
    # Only rank 0 wrote, and what it wrote is the shared model.
    assert [p.name for p in find_checkpoints(tmp_path / "out")] == ["step-000002", "step-000004"]
    start = json.loads((tmp_path / "out/metrics.jsonl").read_text().splitlines()[0])
    assert start["event"] == "start" and start["world_size"] == 2


def test_cli_under_torchrun(toy_corpus_dir: Path, toy_tokenizer_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    torchrun(
        ["-m", "lingolite.train", "--data", str(toy_corpus_dir), "--pairs", "de-fr",
         "--tokenizer", str(toy_tokenizer_dir), "--out", str(out), "--max-steps", "2",
         "--max-tokens", "256", "--max-src-len", "32", "--max-tgt-len", "32", "--device", "cpu"],
        cwd=ROOT,
    )  # fmt: skip
    state = json.loads((out / "checkpoints/step-000002/trainer_state.json").read_text())
    assert state["world_size"] == 2 and state["batcher"]["world_size"] == 2
    assert (out / "best/model.safetensors").is_file()


@pytest.fixture(autouse=True)
def _no_inherited_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
