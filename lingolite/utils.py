"""Small shared helpers: seeding and atomic file output."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np


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


@contextlib.contextmanager
def atomic_directory(target: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` by rename.

    A failure (any exception) removes the temporary folder, so a half-written folder never
    appears under the target's name. An existing non-empty ``target`` is refused unless ``force``.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise FileExistsError(f"{target} is not empty; pass force=True (--force) to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
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


def read_json_object(path: Path, error: Callable[[str], Exception], missing: str) -> dict[str, Any]:
    """Parse ``path`` as a JSON object, raising ``error(message)`` on any problem.

    ``missing`` is the message when the file does not exist; invalid JSON and non-object JSON get
    messages naming the file. The one reader behind checkpoints, tokenizers and artifacts.
    """
    if not path.is_file():
        raise error(missing)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data
