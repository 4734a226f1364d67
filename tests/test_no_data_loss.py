"""--force replaces only earlier exports; interrupted exports leave nothing behind for long."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from export.common import ExportOptions, export_folder
from export.web import WebBuildError, build_site
from lingolite.utils import atomic_directory, remove_stale_temporaries

ROOT = Path(__file__).parents[1]


def thesis(folder: Path) -> Path:
    folder.mkdir()
    (folder / "chapter1.tex").write_text("years of work")
    return folder


def test_force_refuses_a_folder_without_an_export(tmp_path: Path) -> None:
    out = thesis(tmp_path / "thesis")
    problems = ExportOptions(out=out, size="tiny", force=True).problems()
    assert any("holds no earlier LingoLite export" in p for p in problems)
    refused = pytest.raises(FileExistsError, match="holds no earlier LingoLite export")
    with refused, export_folder(out, force=True) as tmp:
        (tmp / "manifest.json").write_text("{}")
    assert [p.name for p in out.iterdir()] == ["chapter1.tex"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]


def test_force_replaces_an_earlier_export_or_an_empty_folder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert ExportOptions(out=empty, size="tiny").problems() == []
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "manifest.json").write_text("{}")
    (earlier / "encoder.onnx").write_text("old")
    assert ExportOptions(out=earlier, size="tiny", force=True).problems() == []
    with export_folder(earlier, force=True) as tmp:
        (tmp / "manifest.json").write_text('{"new": true}')
    assert [p.name for p in earlier.iterdir()] == ["manifest.json"]
    # A symlinked marker does not count: it may point at anything.
    linked = thesis(tmp_path / "linked")
    (linked / "manifest.json").symlink_to(earlier / "manifest.json")
    refused = pytest.raises(FileExistsError, match="no earlier LingoLite export")
    with refused, atomic_directory(linked, force=True, markers=("manifest.json",)):
        pass


def test_web_force_replaces_only_an_earlier_site(tmp_path: Path) -> None:
    # The refusal is reported with the other input problems (here: no artifacts, no npm
    # packages), before anything is written; an earlier site (vendor/NOTICE.txt) is no problem.
    no_demo = tmp_path / "no_demo"
    no_demo.mkdir()
    out = thesis(tmp_path / "thesis")
    with pytest.raises(WebBuildError, match="holds no earlier LingoLite export"):
        build_site(tmp_path / "missing", out, force=True, web_demo=no_demo)
    assert [p.name for p in out.iterdir()] == ["chapter1.tex"]
    site = tmp_path / "site"
    (site / "vendor").mkdir(parents=True)
    (site / "vendor" / "NOTICE.txt").write_text("Third-party packages")
    with pytest.raises(WebBuildError) as info:
        build_site(tmp_path / "missing", site, force=True, web_demo=no_demo)
    assert "does not exist" in str(info.value) and "earlier" not in str(info.value)


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".out.tmp-{dead_pid}-abc123"
    stale.mkdir()
    (stale / "encoder.onnx").write_bytes(b"x" * 1000)
    alive = tmp_path / f".out.tmp-{os.getpid()}-zzz"  # ours: in use
    alive.mkdir()
    other = tmp_path / f".other.tmp-{dead_pid}-abc"  # another target's
    other.mkdir()
    unrelated = tmp_path / ".out.tmp-notes"
    unrelated.mkdir()
    assert remove_stale_temporaries(tmp_path / "out") == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [alive.name, other.name, unrelated.name]
    )


EXPORT_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from export.common import export_folder
    with export_folder(Path(sys.argv[1]), force=False) as tmp:
        (tmp / "encoder.onnx").write_bytes(b"x" * 100000)
        print("ready", flush=True)
        time.sleep(60)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
def test_killed_export_leaves_nothing_behind(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", EXPORT_SCRIPT, str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert len(list(tmp_path.glob(".out.tmp-*"))) == 1
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if sig == signal.SIGTERM:  # cleaned up by the exporter itself
        assert proc.returncode == 128 + signal.SIGTERM
        assert list(tmp_path.iterdir()) == []
    else:  # SIGKILL cannot be caught: the next export removes the leftover
        assert len(list(tmp_path.glob(".out.tmp-*"))) == 1
        deadline = time.monotonic() + 10
        with export_folder(out, force=False) as tmp:
            (tmp / "manifest.json").write_text("{}")
        assert time.monotonic() < deadline
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
