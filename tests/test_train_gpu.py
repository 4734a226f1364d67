"""scripts/train_gpu.sh, the short-lease GPU recipe, run on CPU with a tiny budget on the toy
corpus: train, export (with its parity gate) and evaluate, each output where the script says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lingolite.checkpoint import load_pretrained
from runtime.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_gpu.sh"


def test_recipe_trains_exports_and_evaluates_on_cpu(
    toy_corpus_dir: Path, toy_tokenizer_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    env = {
        **os.environ, "PYTHON": sys.executable, "DATA": str(toy_corpus_dir), "PAIRS": "en-de",
        "SIZE": "tiny", "OUT": str(out), "DEVICE": "cpu", "AMP": "0", "MAX_TOKENS": "512",
        "BUDGET_MIN": "0.5", "SAVE_EVERY": "2", "WARMUP": "2", "EVAL_MAX": "8", "BEAMS": "1",
        "QUANTIZE": "none", "THREADS": "1",
    }  # fmt: skip
    extra = ["--max-steps", "4", "--tokenizer", str(toy_tokenizer_dir), "--max-src-len", "32",
             "--max-tgt-len", "32", "--log-every", "2"]  # fmt: skip
    done = subprocess.run([str(SCRIPT), *extra], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "== done in" in done.stderr

    # Training: checkpoints every SAVE_EVERY steps, best/, metrics.
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000002", "step-000004"]
    assert load_pretrained(out / "best").config.name == "tiny"
    start = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert start["args"]["device"] == "cpu" and start["args"]["max_tokens"] == 512

    manifest = load_manifest(out / "onnx")  # validated, every listed file hashed
    assert manifest.directions == ["en-de"] and manifest.data["trained"] is True
    assert manifest.hashed_files and all(
        (out / "onnx" / n).is_file() for n in manifest.hashed_files
    )

    results = json.loads((out / "eval" / "results.json").read_text())
    assert [(r["direction"], r["sentences"]) for r in results["results"]] == [("en-de", 8)]
    assert 0 <= results["results"][0]["bleu"] <= 100
    assert (out / "eval" / "test_2016_flickr.en-de.beam1.hyp").read_text().count("\n") == 8
