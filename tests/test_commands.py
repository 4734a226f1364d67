"""The console commands: `lingolite STAGE` runs the `python -m MODULE` code with its own prog."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from lingolite import cli

ROOT = Path(__file__).resolve().parents[1]
# Mains that are not user-facing: children the project starts itself.
INTERNAL_MAINS = {"runtime.executorch_backend", "benchmarks.memory_probe"}


def test_project_scripts_point_at_existing_callables() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"lingolite": "lingolite.cli:main"}
    for target in scripts.values():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr))


def test_every_user_facing_main_is_a_stage() -> None:
    mains = set()
    for package in ("lingolite", "export", "runtime", "benchmarks"):
        for path in (ROOT / package).glob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body):
                mains.add(f"{package}.{path.stem}")
    mains -= {"lingolite.cli"}
    assert mains - INTERNAL_MAINS == {stage.module for stage in cli.STAGES.values()}


@pytest.mark.parametrize("name", sorted(cli.STAGES))
def test_stage_help_shows_the_command_as_typed(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([name, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: lingolite {name} ")
    module = importlib.import_module(cli.STAGES[name].module)
    with pytest.raises(SystemExit):
        module.main(["--help"])
    assert capsys.readouterr().out.startswith(f"usage: python -m {cli.STAGES[name].module} ")


def test_top_level_usage_and_unknown_stage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in cli.STAGES)
    assert cli.main([]) == 2
    assert cli.main(["transalte"]) == 2
    assert "unknown stage 'transalte'" in capsys.readouterr().err


def test_missing_extra_names_the_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_torch(name: str) -> None:
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(importlib, "import_module", no_torch)
    assert cli.main(["train", "--help"]) == 2
    assert "pip install 'lingolite[train]'" in capsys.readouterr().err


def test_python_m_form_and_stage_form_run_the_same_code() -> None:
    for command, prog in [
        ([sys.executable, "-m", "runtime.translate", "--help"], "python -m runtime.translate"),
        ([sys.executable, "-m", "lingolite.cli", "translate", "--help"], "lingolite translate"),
    ]:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        assert result.stdout.startswith(f"usage: {prog} [-h] --artifacts ARTIFACTS")
