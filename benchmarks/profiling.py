"""Where the time goes: cProfile of the search loop, the runtimes' own operator profilers, and
the memory-bandwidth floor of one decoder step. ``benchmarks.run`` records these in
``results.json``; ``benchmarks.report`` turns them into the "What limits it" section."""

from __future__ import annotations

import cProfile
import json
import pstats
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.measure import Runner
from lingolite.config import ModelConfig
from lingolite.search import TokenIds
from lingolite.signatures import CacheGeometry


def search_profile(
    runner: Runner,
    kind: str,
    batches: Sequence[Sequence[TokenIds]],
    num_beams: int,
    max_length: int,
    forced: bool,
) -> dict[str, Any]:
    """cProfile of translating ``batches``: the share of time inside the runtime's own calls
    (encoder and decoder), inside the backend's ``decode_step`` (runtime call + array
    conversions), in its ``encode``, and everywhere else (the search loop in Python)."""
    runtime_call = {
        "onnxruntime": ("onnxruntime_inference_collection.py", "run"),
        "executorch": ("executorch/runtime/__init__.py", "execute"),
        "eager": ("lingolite/model.py", "decode_step"),
    }.get(kind)
    backend_file = {
        "onnxruntime": "runtime/onnx_backend.py",
        "eager": "lingolite/generate.py",
        "executorch": "runtime/executorch_backend.py",
    }.get(kind)
    profiler = cProfile.Profile()
    profiler.enable()
    for batch in batches:
        runner.translate(batch, num_beams, max_length, forced)
    profiler.disable()
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values())  # tottime over every function

    def cumulative(file_end: str | None, name: str) -> float:
        return sum(
            float(entry[3])
            for (file, _, func), entry in stats.items()
            if file_end is not None and file.endswith(file_end) and func == name
        )

    call = cumulative(*runtime_call) if runtime_call else 0.0
    step = cumulative(backend_file, "decode_step")
    encode = cumulative(backend_file, "encode")
    top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:6]
    return {
        "total_s": round(total, 3),
        "runtime_call_share": round(call / total, 3) if total else None,
        "decode_step_share": round(step / total, 3) if total else None,
        "encode_share": round(encode / total, 3) if total else None,
        "search_share": round(1 - (step + encode) / total, 3) if total else None,
        "top_self_time": [
            {"function": f"{Path(k[0]).name}:{k[2]}", "self_s": round(v[2], 4)} for k, v in top
        ],
    }


def onnx_op_profile(artifacts: Path, precision: str, threads: int, steps: int) -> dict[str, Any]:
    """ONNX Runtime's own profiler on ``steps`` decoder steps at batch 1, by operator type."""
    import onnxruntime as ort

    from runtime.manifest import load_manifest
    from runtime.onnx_backend import OnnxBackend, session_options

    with tempfile.TemporaryDirectory(prefix="lingolite-ort-profile-") as tmp:
        manifest = load_manifest(artifacts, verify_hashes=False)
        backend = OnnxBackend(manifest, precision, threads, cache="static")
        options = session_options(threads)
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "decoder")
        path = manifest.variant("onnxruntime", precision).files["decoder"]
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        src = np.array([[5, *range(10, 30), 2]], dtype=np.int64)
        memory = backend.encode(src, np.ones_like(src, dtype=np.bool_))
        cache = backend.init_cache(1)
        for pos in range(steps):
            feeds = {
                "tokens": np.array([[7]], dtype=np.int64),
                "pos": np.array([pos]),
                "src_mask": memory.src_mask,
                "cross_k": memory.cross_k,
                "cross_v": memory.cross_v,
                "self_k": cache[0],
                "self_v": cache[1],
            }
            _, k, v = session.run(None, feeds)
            cache = (k, v)
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    by_op: dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time"):
            op = e["args"]["op_name"]
            by_op[op] = by_op.get(op, 0.0) + e["dur"] / 1e3 / steps
    runs = [e["dur"] / 1e3 for e in events if e.get("name") == "model_run"]
    kernels = sum(by_op.values())
    top = sorted(by_op.items(), key=lambda kv: -kv[1])[:8]
    return {
        "precision": precision,
        "steps": steps,
        "model_run_ms_median": round(float(np.median(runs)), 3) if runs else None,
        "kernel_ms_per_step": round(kernels, 3),
        "note": "profiling adds per-node overhead; compare shares, not absolute times",
        "ops": [
            {"op": op, "ms_per_step": round(ms, 3), "share": round(ms / kernels, 3)}
            for op, ms in top
        ],
    }


# ETDump events that enclose others (their time is the sum of the operators below them).
_ET_ENCLOSING = (
    "Program::load_method",
    "Method::init",
    "Method::execute",
    "OPERATOR_CALL",
    "DELEGATE_CALL",
)


def executorch_op_profile(
    artifacts: Path, precision: str, threads: int, steps: int
) -> dict[str, Any]:
    """ExecuTorch's own profiler (ETDump) on ``steps`` batch-1 ``decode_step`` runs (zero cache,
    a mid-sentence position), by operator: XNNPACK's delegated kernels by name (``Fully
    Connected ... GEMM``) and the operators left to ExecuTorch's portable kernels
    (``native_call_*``)."""
    import torch
    from executorch.devtools import Inspector
    from executorch.extension.pybindings import portable_lib

    from runtime.manifest import load_manifest

    manifest = load_manifest(artifacts, verify_hashes=False)
    variant = manifest.variant("executorch", precision)
    dtypes = {"int64": torch.int64, "bool": torch.bool, "float32": torch.float32}
    inputs = [
        torch.ones(spec["shape"], dtype=dtypes[spec["dtype"]])
        if spec["dtype"] in ("bool", "int64")
        else torch.zeros(spec["shape"])
        for spec in variant.signatures["decode_step"]["inputs"]
    ]
    inputs[1] = torch.tensor([int(manifest.model["max_tgt_len"]) // 2])
    portable_lib._unsafe_reset_threadpool(threads)
    program = variant.files["program"].read_bytes()  # the module reads it in place: keep it
    module = portable_lib._load_for_executorch_from_buffer(program, enable_etdump=True)
    for _ in range(steps):
        module.run_method("decode_step", inputs)
    with tempfile.TemporaryDirectory(prefix="lingolite-etdump-") as tmp:
        path = Path(tmp) / "decode_step.etdp"
        module.write_etdump_result_to_file(str(path))
        inspector = Inspector(etdump_path=str(path))
    by_op: dict[str, float] = {}
    execute_ms = 0.0
    for block in inspector.event_blocks:
        for event in block.events:
            if event.perf_data is None or not event.perf_data.raw:
                continue
            ms = float(statistics.median(event.perf_data.raw))  # this event, median over runs
            if event.name == "Method::execute":
                execute_ms += ms
            elif event.name not in _ET_ENCLOSING:
                op = event.name.split(" #")[0]
                by_op[op] = by_op.get(op, 0.0) + ms
    top = sorted(by_op.items(), key=lambda kv: -kv[1])[:8]
    return {
        "precision": precision,
        "steps": steps,
        "execute_ms": round(execute_ms, 3),
        "ops": [
            {"op": op, "ms_per_step": round(ms, 3), "share": round(ms / execute_ms, 3)}
            for op, ms in top
        ],
    }


def weight_floor(config: ModelConfig, bandwidth_gb_s: float) -> dict[str, Any]:
    """Bytes a batch-1 decoder step must read and the time that takes at ``bandwidth_gb_s``.

    Weights read per step: per decoder layer the self-attention's wq, wk, wv, wo, the
    cross-attention's wq and wo (its wk/wv run once, in the encoder) and the SwiGLU's three
    matrices; plus the ``V x D`` output projection. The static self-attention cache is read and
    written whole (the cache rule's ``torch.where``), cross K/V are read.
    """
    c = config
    d, kv, f = c.d_model, c.n_kv_heads * c.head_dim, c.ffn_dim
    per_layer = (2 * d * d + 2 * d * kv) + 2 * d * d + 3 * d * f
    layers = c.n_decoder_layers * per_layer
    head = c.vocab_size * d
    cache = CacheGeometry.of(c).cache_bytes(1)  # self K and V, float32, batch 1
    bw = bandwidth_gb_s * 1e9

    def floor(nbytes: float) -> dict[str, float]:
        return {"bytes": nbytes, "ms": round(1e3 * nbytes / bw, 3)}

    return {
        "weights_per_step": layers + head,
        "int8": floor(layers + head),
        "int4": floor((layers + head) / 2),
        "fp32": floor(4 * (layers + head)),
        "self_cache_bytes_read_and_written_b1": 2 * cache,
        "note": "weights only, without quantization scales (the caches add "
        f"{2 * cache / 2**20:.1f} MiB per row per step); bandwidth = numpy copy, read + write",
    }
