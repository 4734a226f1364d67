"""Data flows one way: lingolite -> runtime -> export -> benchmarks / scripts.

Two checks. (1) Every ``runtime`` module, imported alone in a fresh interpreter, loads no
``export`` module and no torch (except the ExecuTorch adapter, declared below). (2) The import
graph of the project's own modules, read from the source (module-level and function-level
imports alike), has no cycle and no import against the layer order.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import runtime

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_MODULES = sorted(m.name for m in pkgutil.iter_modules(runtime.__path__, "runtime."))
# executorch.runtime's Method.execute takes torch tensors only: this adapter needs torch.
TORCH_RUNTIME_MODULES = {"runtime.executorch_backend"}
# A package may import only from packages of a lower layer (and from itself).
LAYERS = {"lingolite": 0, "runtime": 1, "export": 2, "benchmarks": 3, "scripts": 3}
# The one declared exception: the package's front door re-exports the runtime's Translator
# (``from lingolite import Translator``), lazily, so no lingolite module loads it.
FACADE_EDGES = {("lingolite", "runtime.translator")}
_LOADED = (
    "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
    "print(json.dumps(sorted(sys.modules)))"
)


def test_the_runtime_module_list_is_complete() -> None:
    on_disk = {f"runtime.{p.stem}" for p in (ROOT / "runtime").glob("*.py") if p.stem != "__init__"}
    assert set(RUNTIME_MODULES) == on_disk
    assert {"runtime.server", "runtime.translate", "runtime.manifest"} <= on_disk
    assert on_disk >= TORCH_RUNTIME_MODULES


@pytest.mark.parametrize("module", RUNTIME_MODULES)
def test_runtime_module_imports_no_export_and_no_torch(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _LOADED, module], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout.splitlines()[-1]))
    assert module in loaded
    assert sorted(m for m in loaded if m == "export" or m.startswith("export.")) == []
    if module in TORCH_RUNTIME_MODULES:
        assert "torch" in loaded, f"{module} is declared to need torch but does not import it"
    else:
        assert "torch" not in loaded, f"{module} imports torch"


# ---------------------------------------------------------------------- static import graph


def _project_modules() -> dict[str, Path]:
    modules = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _imports(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """Project modules that ``name`` imports anywhere in its source (``TYPE_CHECKING`` blocks
    included: they are checked by mypy, and a cycle there is still a cycle in the design)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            # The longest project module the dotted name starts with.
            parts = target.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in known:
                    if candidate != name:
                        yield candidate
                    break


def _graph() -> dict[str, set[str]]:
    modules = _project_modules()
    return {name: set(_imports(name, path, set(modules))) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_is_read() -> None:
    graph = _graph()
    # Known edges, so that a parser that finds nothing cannot pass the tests below.
    assert "runtime.manifest" in graph["export.common"]
    assert "export.parity" in graph["export.common"]
    assert "lingolite.search" in graph["runtime.translator"]
    assert "export.vocab" in graph["scripts.make_android_goldens"]


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_packages_import_only_lower_layers() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        for target in sorted(targets)
        if (a := module.split(".")[0]) != (b := target.split(".")[0])
        and LAYERS[b] >= LAYERS[a]
        and (module, target) not in FACADE_EDGES
    ]
    assert wrong == []
    assert all(target in _graph()[module] for module, target in FACADE_EDGES)
