"""The base install is the PyTorch-free runtime: the wheel's metadata and a torch-blocked import."""

from __future__ import annotations

import email.parser
import importlib.metadata
import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {
    "torch", "torchao", "executorch", "ctranslate2", "matplotlib", "onnxscript", "sacrebleu",
    "transformers",
}  # fmt: skip

# Blocks the heavy packages for the whole interpreter, then imports the runtime and runs the
# `lingolite translate` stage's --help; prints the third-party distributions that got loaded.
_BLOCKED = """
import importlib, importlib.abc, importlib.metadata, json, sys
BLOCKED = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: not in the base install")
        return None
sys.meta_path.insert(0, Block())
for module in sys.argv[2].split(","):
    importlib.import_module(module)
from lingolite import cli
try:
    cli.main(["translate", "--help"])
except SystemExit as exc:
    assert exc.code == 0, exc.code
tops = {m.partition(".")[0] for m in sys.modules} - set(sys.stdlib_module_names)
dists = importlib.metadata.packages_distributions()
print(json.dumps(sorted({d for t in tops for d in dists.get(t, [])})))
"""
RUNTIME = ["runtime.translator", "runtime.server", "runtime.onnx_backend", "runtime.translate"]


@pytest.fixture(scope="module")
def metadata(tmp_path_factory: pytest.TempPathFactory) -> email.message.Message:
    # Built from a copy of what the wheel holds, so the checkout gets no build/ or egg-info.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("lingolite", "export", "runtime", "benchmarks"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path_factory.mktemp("wheel")
    # pip, not `python -m build`: the PyPA build tool is not a dependency, and in a checkout that
    # has run `make` the repository's own build/ folder would be found under that name.
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    command += ["--quiet", "--wheel-dir", str(out), "."]
    subprocess.run(command, cwd=source, check=True, capture_output=True)
    (wheel,) = out.glob("lingolite-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "lingolite = lingolite.cli:main" in archive.read(entry_points).decode()
        assert "lingolite/cli.py" in names and "runtime/translate.py" in names
        return email.parser.Parser().parsestr(archive.read(meta).decode())


def base_requirements(metadata: email.message.Message) -> list[Requirement]:
    requirements = [Requirement(r) for r in metadata.get_all("Requires-Dist") or []]
    return [r for r in requirements if r.marker is None or "extra" not in str(r.marker)]


def test_base_install_has_no_torch(metadata: email.message.Message) -> None:
    base = {canonicalize_name(r.name) for r in base_requirements(metadata)}
    assert base >= {"numpy", "onnxruntime", "sentencepiece", "fastapi", "uvicorn", "pydantic"}
    assert base & HEAVY == set()
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert extras >= {"export", "executorch", "ctranslate2", "train", "bench", "import", "dev"}


def test_license_is_an_spdx_expression(metadata: email.message.Message) -> None:
    # `license = "Apache-2.0"` (PEP 639, setuptools >= 77), not the deprecated table that wrote a
    # free-text License field.
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License") is None
    assert metadata.get_all("License-File") is None  # the repository ships no LICENSE file


def test_runtime_imports_with_the_extras_blocked(metadata: email.message.Message) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED, ",".join(sorted(HEAVY)), ",".join(RUNTIME)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: lingolite translate")
    loaded = {canonicalize_name(d) for d in json.loads(result.stdout.splitlines()[-1])}
    # Every distribution the runtime loaded is a base requirement or one of theirs.
    closure: set[str] = set()
    todo = [r.name for r in base_requirements(metadata)]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in closure:
            continue
        closure.add(name)
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    # setuptools: its distutils hook is loaded at startup by a .pth file, not by our imports.
    assert loaded - {"lingolite", "setuptools"} <= closure, sorted(loaded - closure)
