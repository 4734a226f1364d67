"""Each traced graph is built once per test session, however many tests export the same model.

Tracing dominates the suite's time: ``torch.onnx.export`` of a two-layer toy model takes about
20 s a graph on two cores, and XNNPACK lowering a minute a program, whatever the model's width.
Many tests export the same weights (the seeded ``tiny`` preset, the toy checkpoint) to exercise
different parts of the pipeline (``--quantize`` modes, failure paths, the benchmark, the parity
CLI). :func:`install` wraps the two tracing functions the exporters call,
``export.onnx.export_graph`` and ``export.executorch.lower``, with a cache keyed by everything
their output depends on:

- the module's class and every submodule's class (the program wrappers, quantized layers),
  each submodule's ``config`` (``repr`` of the dataclass) and the bytes, dtype and shape of every
  parameter and buffer, tensor subclasses (torchao's quantized weights) through their inner
  tensors (``__tensor_flatten__``);
- the example inputs (bytes, dtype, shape), names, dynamic shapes and the ONNX opset, or the
  mask dtype of an ExecuTorch program.

The first call with a key runs the real tracer; later ones copy its output. Everything after
tracing (``onnx.checker``, signatures, quantization, parity gates, manifests, hashing, loading)
runs for real every time. A key that missed something could only make two different models share
a graph. For fp32 graphs and trained models the parity gate after every export would catch that
(the eager reference is never cached); the quantized programs of untrained models are gated on
nothing (``export.parity``: agreement reported, not gated), so for them the key alone is the
guarantee, which is why it hashes the quantized weights themselves, not the model they came
from.

The cache lives beside the session's temporary folder and is shared by pytest-xdist workers; a
lock per key makes a worker that needs a graph being traced by the other wait for it. The key
holds no source code, so a cache must not outlive the code that filled it: ``make test`` points
``$LINGOLITE_EXPORT_CACHE`` at a folder it empties before its first pytest run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from filelock import FileLock
from torch.export.dynamic_shapes import Dim

Hasher = Any  # hashlib's _Hash is not public
CACHE_ENV = "LINGOLITE_EXPORT_CACHE"


def _update_value(h: Hasher, value: Any) -> None:
    """Tensors by content; lists, tuples and dicts of them element by element; others by repr."""
    if isinstance(value, torch.Tensor):
        _update_tensor(h, value)
    elif isinstance(value, list | tuple):
        h.update(f"{type(value).__name__}{len(value)}(".encode())
        for item in value:
            _update_value(h, item)
        h.update(b")")
    elif isinstance(value, dict):
        h.update(f"dict{len(value)}(".encode())
        for name, item in value.items():
            h.update(f"{name!r}:".encode())
            _update_value(h, item)
        h.update(b")")
    elif isinstance(value, Dim):  # its repr leaves out the lower bound
        h.update(f"Dim:{value.__name__}:{value.min}:{value.max}|".encode())
    else:
        h.update(f"{type(value).__name__}:{value!r}|".encode())


def _update_tensor(h: Hasher, tensor: torch.Tensor) -> None:
    flatten = getattr(tensor, "__tensor_flatten__", None)
    if type(tensor) not in (torch.Tensor, torch.nn.Parameter) and flatten is not None:
        names, context = flatten()
        h.update(f"{type(tensor).__qualname__}|{context!r}|".encode())
        for name in names:
            _update_tensor(h, getattr(tensor, name))
        return
    data = tensor.detach().contiguous().reshape(-1)
    h.update(f"{data.dtype}|{tuple(tensor.shape)}|".encode())
    h.update(data.view(torch.uint8).numpy().tobytes())


def module_digest(h: Hasher, module: torch.nn.Module) -> None:
    """Feed ``h`` what a traced graph of ``module`` depends on (see the module docstring)."""
    for name, sub in module.named_modules():
        config = getattr(sub, "config", None)
        kind = f"{type(sub).__module__}.{type(sub).__qualname__}"
        h.update(f"{name}|{kind}|{sub.training}|{config!r}|".encode())
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        h.update(f"{name}|".encode())
        _update_tensor(h, tensor)


def _key(kind: str, module: torch.nn.Module, args: tuple[Any, ...], extra: str) -> str:
    h = hashlib.sha256(f"{kind}|{torch.__version__}|{extra}|".encode())
    module_digest(h, module)
    _update_value(h, args)
    return h.hexdigest()[:32]


class ExportCache:
    """Graphs by key under ``folder``, written atomically, one lock per key."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.hits = self.misses = 0

    def get(self, name: str, build: Callable[[Path], None]) -> Path:
        """The cached file ``name``, built first by ``build(temporary path)`` if missing."""
        path = self.folder / name
        with FileLock(str(path) + ".lock"):
            if path.is_file():
                self.hits += 1
                return path
            self.misses += 1
            tmp = path.with_name(f".{name}.tmp-{os.getpid()}")
            try:
                build(tmp)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        return path


def install(monkeypatch: pytest.MonkeyPatch, cache: ExportCache) -> None:
    """Route the exporters' tracing through ``cache``."""
    import export.executorch
    import export.onnx

    export_graph = export.onnx.export_graph
    lower = export.executorch.lower

    def cached_export_graph(
        module: torch.nn.Module,
        args: tuple[torch.Tensor, ...],
        path: Path,
        names: tuple[tuple[str, ...], tuple[str, ...]],
        shapes: dict[str, Any],
    ) -> None:
        extra = f"{names!r}|{shapes!r}|{export.onnx.OPSET}"
        key = _key("onnx", module, args, extra)
        built = cache.get(f"{key}.onnx", lambda tmp: export_graph(module, args, tmp, names, shapes))
        shutil.copyfile(built, path)

    def cached_lower(model: Any, mask_dtype: str = "bool") -> bytes:
        key = _key("executorch", model, (), mask_dtype)

        def build(tmp: Path) -> None:
            tmp.write_bytes(lower(model, mask_dtype))

        return cache.get(f"{key}.pte", build).read_bytes()

    monkeypatch.setattr(export.onnx, "export_graph", cached_export_graph)
    monkeypatch.setattr(export.executorch, "lower", cached_lower)


def cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``$LINGOLITE_EXPORT_CACHE`` (``make test`` empties it first and shares it between its two
    pytest runs), else beside the session's temporary folder: shared by the xdist workers of one
    run."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).resolve()
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return shared / "export-cache"


def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExportCache]:
    """The body of the session fixture in tests/conftest.py."""
    cache = ExportCache(cache_folder(tmp_path_factory))
    with pytest.MonkeyPatch.context() as monkeypatch:
        install(monkeypatch, cache)
        yield cache
