"""ExecuTorch backend for :mod:`lingolite.search`: one ``.pte`` with methods ``encode`` and
``decode_step``, lowered to XNNPACK by ``export.executorch``.

The program has batch 1; its source length is dynamic up to ``max_src_len`` when the manifest's
variant says ``"src_len": "dynamic"`` (programs exported before that are static at
``max_src_len``). This backend adapts it to the search code's batches of any size and width:

- ``encode`` runs the rows one at a time at the batch's width (a static program: padded to
  ``max_src_len`` with the pad id and mask False, which the model's masked softmax makes exact,
  and the cross K/V cut back to the width), so :class:`~lingolite.search.Memory` has the shapes
  eager PyTorch and ONNX Runtime give, and beam search reorders it by the same rule.
- ``decode_step`` splits a memory into rows once (padded for a static program; kept until
  another memory comes), then runs every
  row of the batch against the batch-1 program and stacks logits and caches. The KV cache is an
  explicit input and output of ``decode_step``, the decoder signature of the ONNX backend.
- ``src_mask`` is fed in the program's dtype, read from the manifest's signatures: ``bool`` (as
  ONNX) or ``int64`` (1 = real token; what the Android app needs, see ``export.executorch``).

This runner needs torch: ``executorch.runtime``'s ``Method.execute`` accepts torch tensors only
(a numpy array is refused with "Unsupported python type") and its pybindings import torch.
Arrays cross as zero-copy ``torch.from_numpy`` views.

Bad files never take the calling process down. The program's bytes are read once and checked
against the manifest's sha256 (``verify_hash``); then a child process loads them, loads both
methods and runs each once (``probe``): a corrupt program can abort ExecuTorch's native code
(seen: SIGABRT on single bit flips in the flatbuffer), which only kills the child and becomes an
:class:`ArtifactError`. Only then is the program loaded here, with
``Verification.InternalConsistency``, and its method signatures checked against the manifest's
model config. A bit flip inside the weights is not detectable by any program check: the sha256
is what catches it.

``python -m runtime.executorch_backend --probe < program.pte`` is the child's entry point.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from executorch.runtime import Method, Program, Runtime, Verification

from lingolite.search import (
    BoolArray,
    Cache,
    FloatArray,
    IntArray,
    Memory,
    SearchError,
    check_source,
    zero_cache,
)
from lingolite.signatures import (
    EXECUTORCH_METHODS,
    MASK_DTYPES,
    executorch_signatures,
    model_config,
)
from lingolite.tokenizer import TokenId
from runtime.manifest import ArtifactError, Manifest

BACKEND = "executorch"
PROGRAM_ROLE = "program"
# Shortest source a program with a dynamic source length takes (export.executorch.MIN_SRC_LEN).
MIN_SRC_LEN = 2
# The two methods (signatures in lingolite.signatures); src_mask is bool as in ONNX, or int64
# (1 = real token) for runners that cannot build bool tensors (executorch-android's Java Tensor).
METHODS = EXECUTORCH_METHODS
# Seconds a probe may take: a child imports torch and executorch, loads and runs the program.
PROBE_TIMEOUT_S = 300.0
# ExecuTorch ScalarType codes (c10 numbering) as returned by TensorInfo.dtype().
_SCALAR_TYPES = {4: "int64", 6: "float32", 11: "bool"}
_TORCH_DTYPES = {"int64": torch.int64, "float32": torch.float32, "bool": torch.bool}
# sha256 of program bytes that passed a probe in this process.
_PROBED: set[str] = set()


def method_signature(program: Program, method: str) -> dict[str, list[dict[str, Any]]]:
    """Dtypes and shapes of a loaded program's method (ExecuTorch keeps no tensor names)."""
    meta = program.metadata(method)

    def specs(count: int, info: Any) -> list[dict[str, Any]]:
        out = []
        for i in range(count):
            tensor = info(i)
            dtype = _SCALAR_TYPES.get(int(tensor.dtype()), f"scalar type {int(tensor.dtype())}")
            out.append({"dtype": dtype, "shape": [int(s) for s in tensor.sizes()]})
        return out

    return {"inputs": specs(meta.num_inputs(), meta.input_tensor_meta),
            "outputs": specs(meta.num_outputs(), meta.output_tensor_meta)}  # fmt: skip


def signature_problems(
    program: Program, expected: dict[str, dict[str, list[dict[str, Any]]]]
) -> list[str]:
    """Every difference between the program's methods and ``expected`` (names aside)."""
    problems = []
    have = program.method_names
    for method, want in expected.items():
        if method not in have:
            problems.append(f"the program has no method {method!r} (it has {sorted(have)})")
            continue
        found = method_signature(program, method)
        for kind in ("inputs", "outputs"):
            if len(found[kind]) != len(want[kind]):
                problems.append(f"{method} has {len(found[kind])} {kind}, expected "
                                f"{len(want[kind])}")  # fmt: skip
                continue
            for spec, got in zip(want[kind], found[kind], strict=True):
                expect = f"{spec['dtype']} {spec['shape']}"
                if f"{got['dtype']} {got['shape']}" != expect:
                    problems.append(f"{method} {kind[:-1]} {spec['name']!r} is {got['dtype']} "
                                    f"{got['shape']}, expected {expect}")  # fmt: skip
    return problems


def load_program(data: bytes, source: str) -> Program:
    """Load program bytes in this process with ``Verification.InternalConsistency``.

    Only for bytes that are trusted or passed :func:`probe_program`: a corrupt program can abort
    the process in native code before any Python exception is possible.
    """
    try:
        return Runtime.get().load_program(data, verification=Verification.InternalConsistency)
    except (RuntimeError, ValueError) as exc:  # ValueError: a corrupt name fails to decode
        raise ArtifactError(f"{source} is not a loadable ExecuTorch program (truncated or "
                            f"corrupt?): {exc}") from exc  # fmt: skip


def load_method(program: Program, name: str, source: str) -> Method:
    have = sorted(program.method_names)
    if name not in have:
        raise ArtifactError(f"{source} has no method {name!r}; it has {have}")
    try:
        method = program.load_method(name)
    except (RuntimeError, ValueError) as exc:
        raise ArtifactError(f"{source}: method {name!r} cannot be loaded (corrupt program or "
                            f"a backend this runtime lacks): {exc}") from exc  # fmt: skip
    if method is None:
        raise ArtifactError(f"{source}: method {name!r} cannot be loaded")
    return method


def zero_inputs(program: Program, method: str) -> list[torch.Tensor]:
    """Zero tensors (mask all True) of a method's input shapes and dtypes."""
    tensors = []
    for spec in method_signature(program, method)["inputs"]:
        dtype = _TORCH_DTYPES.get(spec["dtype"])
        if dtype is None:
            raise ArtifactError(f"method {method!r} takes an input of {spec['dtype']}")
        fill = True if dtype == torch.bool else 0
        tensors.append(torch.full(spec["shape"], fill, dtype=dtype))
    return tensors


def _probe(data: bytes) -> dict[str, Any]:
    """The child's work: load the program and both methods, run each once on zero inputs."""
    program = load_program(data, "program")
    for name in METHODS:
        method = load_method(program, name, "program")
        try:
            method.execute(zero_inputs(program, name))
        except RuntimeError as exc:
            raise ArtifactError(f"method {name!r} fails to run: {exc}") from exc
    return {name: method_signature(program, name) for name in METHODS}


def probe_program(data: bytes, source: str, *, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Load and run ``data`` in a child process; raise :class:`ArtifactError` if that fails.

    A child killed by a signal (ExecuTorch aborting on a corrupt program) or exiting non-zero is
    reported with its last lines of output; this process is never at risk. A program that passed
    once (same sha256) is not probed again in this process.
    """
    digest = hashlib.sha256(data).hexdigest()
    if digest in _PROBED:
        return
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p)}  # fmt: skip
    command = [sys.executable, "-m", "runtime.executorch_backend", "--probe"]
    try:
        proc = subprocess.run(command, input=data, capture_output=True, timeout=timeout, env=env,
                              check=False)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise ArtifactError(f"{source}: loading the program did not finish within {timeout:.0f} s "
                            "(probe process killed)") from exc  # fmt: skip
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.decode(errors="replace").splitlines()
                 if line.strip() and "Warning" not in line][-4:]  # fmt: skip
        if proc.returncode < 0:
            how = f"crashed ExecuTorch ({signal.Signals(-proc.returncode).name})"
        else:
            how = f"was refused (exit status {proc.returncode})"
        raise ArtifactError(f"{source} is corrupt or not a LingoLite ExecuTorch program: loading "
                            f"it in a probe process {how}: " + " | ".join(lines))  # fmt: skip
    _PROBED.add(digest)


class ExecuTorchBackend:
    """Runs a manifest's ``executorch`` variant (``fp32``, ``8da8w`` or ``8da4w``) on the CPU.

    ``verify_hash`` checks the bytes read against the manifest's sha256 entry for the program
    (a manifest read by ``load_manifest`` always has one; an exporter's unfinished manifest has
    none yet, and nothing is checked). ``probe`` loads the program in a child process first (see
    the module docstring). Both default to on; turn them off only for bytes you produced.
    Calls are serialised: a loaded ExecuTorch method is not reentrant, and the program's methods
    share one memory arena.
    """

    def __init__(
        self, manifest: Manifest, precision: str = "fp32", *, verify_hash: bool = True,
        probe: bool = True,
    ) -> None:  # fmt: skip
        variant = manifest.variant(BACKEND, precision)
        if PROGRAM_ROLE not in variant.files:
            raise ArtifactError(f"variant {variant.name!r} names no {PROGRAM_ROLE!r} file; it "
                                f"has {sorted(variant.files)}")  # fmt: skip
        self.variant = variant
        path = variant.files[PROGRAM_ROLE]
        source = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ArtifactError(f"cannot read {path}: {exc}") from exc
        if verify_hash:
            name = manifest.data["variants"][variant.name]["files"][PROGRAM_ROLE]
            entry = manifest.data.get("files", {}).get(name)
            if isinstance(entry, dict) and hashlib.sha256(data).hexdigest() != entry.get("sha256"):
                raise ArtifactError(f"file {name!r} does not match its sha256 in the manifest "
                                    "(modified or corrupted)")  # fmt: skip
        if probe:
            probe_program(data, source)
        self.program = load_program(data, source)
        model = manifest.model
        self._mask_dtype = _mask_dtype(variant.signatures)
        # Programs exported with a dynamic source length take a batch at its own width (the
        # signatures show the bound, max_src_len); older ones need every row padded to it.
        self._dynamic = manifest.data["variants"][variant.name].get("src_len") == "dynamic"
        problems = signature_problems(self.program, executorch_signatures(model, self._mask_dtype))
        if problems:
            raise ArtifactError(f"{source} does not fit the manifest's model config: "
                                + "; ".join(problems))  # fmt: skip
        self._encode = load_method(self.program, "encode", source)
        self._decode = load_method(self.program, "decode_step", source)
        self._max_src_len = int(model["max_src_len"])
        self._max_tgt_len = int(model["max_tgt_len"])
        self._vocab_size = int(model["vocab_size"])
        self._pad_id = TokenId(int(model["pad_id"]))
        self._config = model_config(model)
        # The last memory decode_step saw, with its rows padded to max_src_len as tensors.
        self._rows: tuple[Memory, list[list[torch.Tensor]]] | None = None
        self._lock = threading.Lock()

    @property
    def max_tgt_len(self) -> int:
        return self._max_tgt_len

    def encode(self, src_ids: IntArray, src_mask: BoolArray) -> Memory:
        check_source(src_ids, src_mask, self._max_src_len)
        batch, width = src_ids.shape
        self._check_ids(src_ids, "source")
        # A dynamic program takes 2 to max_src_len tokens: a 1-token batch gets a masked pad.
        length = max(width, MIN_SRC_LEN) if self._dynamic else self._max_src_len
        ids = np.full((batch, length), self._pad_id, dtype=np.int64)
        ids[:, :width] = src_ids
        mask = np.zeros((batch, length), dtype=self._mask_dtype)
        mask[:, :width] = src_mask
        with self._lock:
            outputs = [self._run(self._encode, [ids[r : r + 1], mask[r : r + 1]])
                       for r in range(batch)]  # fmt: skip
        cross_k, cross_v = (np.concatenate([out[i][:, :, :, :width] for out in outputs], axis=1)
                            for i in (0, 1))  # fmt: skip
        return Memory(np.ascontiguousarray(src_mask, dtype=np.bool_), cross_k, cross_v)

    def init_cache(self, batch: int) -> Cache:
        return zero_cache(self._config, batch)

    def decode_step(
        self, tokens: IntArray, pos: int, memory: Memory, cache: Cache
    ) -> tuple[FloatArray, Cache]:
        if not 0 <= pos < self._max_tgt_len:
            raise SearchError(f"pos must be in [0, {self._max_tgt_len}), got {pos}")
        self._check_ids(tokens, "decoder input")
        batch = memory.src_mask.shape[0]
        if tokens.shape != (batch,):
            raise SearchError(f"tokens must be ({batch},) like the memory, got {tokens.shape}")
        self_k, self_v = cache
        position = np.array([pos], dtype=np.int64)
        logits = np.empty((batch, self._vocab_size), dtype=np.float32)
        new_k, new_v = np.empty_like(self_k), np.empty_like(self_v)
        with self._lock:
            for r, (mask, cross_k, cross_v) in enumerate(self._memory_rows(memory)):
                out = self._run(self._decode, [
                    tokens[r : r + 1, None], position, mask, cross_k, cross_v,
                    self_k[:, r : r + 1], self_v[:, r : r + 1],
                ])  # fmt: skip
                logits[r], new_k[:, r : r + 1], new_v[:, r : r + 1] = out[0][0], out[1], out[2]
        return logits, (new_k, new_v)

    # ------------------------------------------------------------------ helpers
    def _memory_rows(self, memory: Memory) -> list[list[torch.Tensor]]:
        """Per-row ``[src_mask, cross_k, cross_v]``, padded to ``max_src_len`` for a program with
        a static source length (cached)."""
        if self._rows is not None and self._rows[0] is memory:
            return self._rows[1]
        batch, width = memory.src_mask.shape
        pad = max(MIN_SRC_LEN - width, 0) if self._dynamic else self._max_src_len - width
        mask = np.pad(memory.src_mask, ((0, 0), (0, pad))).astype(self._mask_dtype)
        cross = [np.pad(a, ((0, 0), (0, 0), (0, 0), (0, pad), (0, 0)))
                 for a in (memory.cross_k, memory.cross_v)]  # fmt: skip
        rows = [[_tensor(mask[r : r + 1]), _tensor(cross[0][:, r : r + 1]),
                 _tensor(cross[1][:, r : r + 1])] for r in range(batch)]  # fmt: skip
        self._rows = (memory, rows)
        return rows

    def _check_ids(self, ids: IntArray, what: str) -> None:
        if ids.size and (ids.min() < 0 or ids.max() >= self._vocab_size):
            raise SearchError(f"{what} ids must be in [0, {self._vocab_size}), got "
                              f"[{ids.min()}, {ids.max()}]")  # fmt: skip

    @staticmethod
    def _run(method: Method, inputs: Sequence[np.ndarray[Any, Any] | torch.Tensor]) -> list[Any]:
        tensors = [x if isinstance(x, torch.Tensor) else _tensor(x) for x in inputs]
        return [t.numpy() for t in method.execute(tensors)]


def _mask_dtype(signatures: dict[str, Any]) -> str:
    """The ``src_mask`` dtype a variant's signatures declare (``bool`` when they say nothing)."""
    try:
        dtype = signatures["encode"]["inputs"][1]["dtype"]
    except (KeyError, IndexError, TypeError):
        return "bool"
    if dtype not in MASK_DTYPES:
        raise ArtifactError(f"src_mask dtype {dtype!r} is not one of {MASK_DTYPES}")
    return str(dtype)


def _tensor(array: np.ndarray[Any, Any]) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def create_backend(manifest: Manifest, precision: str) -> ExecuTorchBackend:
    """The factory ``runtime.translator.BACKENDS["executorch"]`` stands for."""
    return ExecuTorchBackend(manifest, precision)


def main(argv: list[str] | None = None) -> int:
    """``--probe``: load program bytes from stdin, run both methods, print their signatures."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["--probe"]:
        print("usage: python -m runtime.executorch_backend --probe < program.pte", file=sys.stderr)
        return 2
    try:
        signatures = _probe(sys.stdin.buffer.read())
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(json.dumps(signatures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
