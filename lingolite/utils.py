"""Small shared helpers: seeding, atomic file output and progress bars."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import random
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np
from tqdm import tqdm

T = TypeVar("T")
# Off by `--quiet` (set_quiet); otherwise bars show only when stderr is a terminal.
_quiet = False


def set_quiet(quiet: bool) -> None:
    """Turn every :func:`progress` bar of this process off (``--quiet``) or back to automatic."""
    global _quiet
    _quiet = quiet


class _Quiet(argparse.Action):
    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        set_quiet(True)
        setattr(namespace, self.dest, True)


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress bars (see :func:`progress`)."""
    parser.add_argument(
        "--quiet", action=_Quiet, nargs=0, default=False, help="no progress bars on stderr"
    )


def progress(
    iterable: Iterable[T], desc: str, *, total: int | None = None, unit: str = "it"
) -> tqdm[T]:
    """A tqdm bar on stderr for work a person waits on; silent when stderr is not a terminal
    (tqdm's ``disable=None``) or after ``set_quiet(True)``. The bar clears itself when done."""
    disable = True if _quiet else None
    return tqdm(
        iterable, desc=desc, total=total, unit=unit, file=sys.stderr, disable=disable, leave=False
    )


def set_seed(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) so runs repeat exactly."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# Files whose presence marks a folder as an earlier LingoLite export, which --force may replace:
# the artifact manifest (ONNX, ExecuTorch) and the CTranslate2 folder's metadata.
EXPORT_MARKERS = ("manifest.json", "lingolite.json")


def replace_refusal(target: Path, *, force: bool, markers: Sequence[str] | None) -> str | None:
    """Why ``target`` must not be replaced, or None when it may be.

    A missing or empty folder may always be replaced. A non-empty one needs ``force`` and, when
    ``markers`` is given, one of those names as a regular file in it (so ``--force`` replaces an
    earlier export, never an unrelated folder such as a thesis).
    """
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        return f"{target} exists and is not a directory"
    if not target.is_dir() or not any(target.iterdir()):
        return None
    if not force:
        return f"{target} is not empty; pass --force (force=True) to overwrite it"
    if markers is not None and not any(
        (target / m).is_file() and not (target / m).is_symlink() for m in markers
    ):
        return (
            f"{target} is not empty and holds no earlier LingoLite export (none of "
            f"{', '.join(markers)}): refusing to replace it, even with --force; pick another "
            "folder or empty it yourself"
        )
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove ``.NAME.tmp-PID-*`` and ``.NAME.old-PID`` folders beside ``target`` left by
    :func:`atomic_directory` runs whose process no longer exists (killed, e.g. by SIGKILL)."""
    removed: list[Path] = []
    if not target.parent.is_dir():
        return removed
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(?:tmp|old)-(\d+)(?:-.*)?")
    for path in target.parent.iterdir():
        match = pattern.fullmatch(path.name)
        if match is None or path.is_symlink() or not path.is_dir():
            continue
        if int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_directory(
    target: Path, *, force: bool = False, markers: Sequence[str] | None = None
) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` by rename.

    A failure (any exception) removes the temporary folder, so a half-written folder never
    appears under the target's name. An existing non-empty ``target`` is refused unless
    ``force``, and with ``markers`` also unless it holds one of those files (see
    :func:`replace_refusal`). The temporary folder is named ``.NAME.tmp-PID-*``: one left by a
    killed process is removed by the next run (:func:`remove_stale_temporaries`).
    """
    target = Path(target)
    refusal = replace_refusal(target, force=force, markers=markers)
    if refusal is not None:
        raise FileExistsError(refusal)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temporaries(target):
        logging.getLogger(__name__).warning("removed %s, left by an interrupted run", stale)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp creates 0700; a published folder gets the usual permissions
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    backup = None
    if target.exists():
        backup = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, backup)
    os.replace(tmp, target)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` only if the ``with`` block finishes.

    Writes go to a temporary file beside ``path``; at the end it is fsynced and renamed over
    ``path``. On any failure (a full disk, an exception in the block) the temporary file is
    removed and an existing ``path`` keeps its old contents. Memory stays bounded: the caller
    streams into the handle.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)  # mkstemp creates it private
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_writer` (all or nothing)."""
    with atomic_writer(path, mode) as handle:
        handle.write(data)


def resolve_inside(folder: Path, name: object, what: str = "file") -> Path:
    """Resolve ``name`` inside ``folder``; refuse absolute paths, ``..`` and symlink escapes."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} name must be a non-empty string, got {name!r}")
    if Path(name).is_absolute():
        raise ValueError(f"{what} {name!r} must be a path relative to {folder}, not absolute")
    root = folder.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"{what} {name!r} resolves to {path}, outside its folder {root}")
    return path


def loads_json(text: str) -> Any:
    """``json.loads``, with nesting past the interpreter's recursion limit (json's C scanner
    recurses once per array or object) reported as the ``JSONDecodeError`` of any invalid JSON,
    so every caller handles one error type."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def read_json_object(path: Path, error: Callable[[str], Exception], missing: str) -> dict[str, Any]:
    """Parse ``path`` as a JSON object, raising ``error(message)`` on any problem.

    ``missing`` is the message when the file does not exist; invalid JSON and non-object JSON get
    messages naming the file. The one reader behind checkpoints, tokenizers and artifacts.
    """
    if not path.is_file():
        raise error(missing)
    try:
        data = loads_json(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data
