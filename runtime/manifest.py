"""The artifact folder and its ``manifest.json``: one schema for every export target.

PyTorch-free. An artifact folder holds the exported programs, the tokenizer files and
``manifest.json``::

    {
      "format_version": 1,
      "model": {...ModelConfig fields...},
      "trained": true,                       # false for a seeded, untrained export
      "source": "checkpoint path or 'seeded init (seed 0)'",
      "tokenizer": {"config": "tokenizer.json", "model": "spm.model", "vocab": "vocab.json",
                    "languages": ["de", "en", ...], "lang_ids": {"de": 5, ...},
                    "pad_id": 0, "bos_id": 1, "eos_id": 2, "unk_id": 3},
      "directions": ["en-de", "de-en", ...], # the trained directions: all a runtime serves
      "variants": {                          # one entry per exported program set
        "onnx-fp32": {"backend": "onnxruntime", "precision": "fp32",
                      "files": {"encoder": "encoder.onnx", "decoder": "decoder.onnx"},
                      "signatures": {"encoder": {"inputs": [TensorSpec...],
                                                 "outputs": [TensorSpec...]}, ...}},
        "executorch-8da8w": {"backend": "executorch", "precision": "8da8w",
                             "files": {"program": "lingolite_8da8w.pte"}, "signatures": {...}},
        "ctranslate2-int8": {"backend": "ctranslate2", "precision": "int8",
                             "files": {"model": "ct2-int8/model.bin", "config": ...,
                                       "vocabulary": "ct2-int8/shared_vocabulary.json"}}
      },
      "versions": {"lingolite": "0.1.0", "torch": "2.13.0", "onnx": ..., "opset": 18, ...},
      "files": {"encoder.onnx": {"sha256": "...", "bytes": 123}, ...}   # every file but itself
    }

A TensorSpec is ``{"name": str, "dtype": "int64"|"bool"|"float32", "shape": [int | str]}`` where a
string names a dynamic dimension (``"batch"``, ``"src_len"``).

:func:`load_manifest` checks the format version, that every named file resolves inside the
folder (no absolute paths, ``..`` or escaping symlinks), and every file's size and sha256, and
refuses the folder with a message naming each problem.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lingolite.utils import read_json_object, resolve_inside, sha256_file

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
BACKENDS = ("onnxruntime", "executorch", "ctranslate2")


class ArtifactError(ValueError):
    """An artifact folder that must not be used; the message names every problem found."""


def _inside(folder: Path, name: object, what: str) -> Path:
    try:
        return resolve_inside(folder, name, what)
    except ValueError as exc:
        raise ArtifactError(str(exc)) from exc


@dataclass(frozen=True)
class Variant:
    """One exported program set: its backend, precision, files and I/O signatures."""

    name: str
    backend: str
    precision: str
    files: dict[str, Path]
    signatures: dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    folder: Path
    data: dict[str, Any]

    @property
    def model(self) -> dict[str, Any]:
        return dict(self.data["model"])

    @property
    def tokenizer_dir(self) -> Path:
        return self.folder

    @property
    def lang_ids(self) -> dict[str, int]:
        return dict(self.data["tokenizer"]["lang_ids"])

    @property
    def languages(self) -> list[str]:
        return list(self.data["tokenizer"]["languages"])

    @property
    def directions(self) -> list[str]:
        """The trained directions (``"en-de"``, ...): the only ones a runtime serves.

        A manifest written before the field existed serves every pair of its languages.
        """
        given = self.data.get("directions")
        if given is None:
            return [f"{a}-{b}" for a in self.languages for b in self.languages if a != b]
        return list(given)

    def special_id(self, name: str) -> int:
        return int(self.data["tokenizer"][f"{name}_id"])

    @property
    def variants(self) -> dict[str, Variant]:
        out = {}
        for name, entry in self.data["variants"].items():
            files = {role: self.folder / fname for role, fname in entry["files"].items()}
            out[name] = Variant(name, entry["backend"], entry["precision"], files,
                                dict(entry.get("signatures", {})))  # fmt: skip
        return out

    def variant(self, backend: str, precision: str) -> Variant:
        for v in self.variants.values():
            if v.backend == backend and v.precision == precision:
                return v
        have = sorted(f"{v.backend}/{v.precision}" for v in self.variants.values())
        raise ArtifactError(
            f"{self.folder} has no {backend} program in precision {precision!r}; it has {have}"
        )


def load_manifest(folder: Path | str, *, verify_hashes: bool = True) -> Manifest:
    """Read and verify ``folder/manifest.json`` (see the module docstring for what is checked)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"artifact folder {folder} does not exist or is not a folder")
    path = folder / MANIFEST
    data = read_json_object(
        path, ArtifactError, f"{path} is missing: not an artifact folder (or an unfinished export)"
    )
    if data.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: format_version {data.get('format_version')!r} is not supported; this "
            f"runtime reads format_version {FORMAT_VERSION}. Re-export with this LingoLite."
        )
    problems: list[str] = []
    for key, kind in (("model", dict), ("tokenizer", dict), ("variants", dict), ("files", dict)):
        if not isinstance(data.get(key), kind):
            problems.append(f"key {key!r} must be a JSON object, got {data.get(key)!r}")
    if problems:
        raise ArtifactError(f"{path}: " + "; ".join(problems))

    named: set[str] = set()
    tok = data["tokenizer"]
    for key in ("config", "model", "vocab"):  # vocab.json (for the Java tokenizer) is optional
        if isinstance(tok.get(key), str):
            named.add(tok[key])
        elif key != "vocab" or key in tok:
            problems.append(f"tokenizer.{key} must name a file, got {tok.get(key)!r}")
    for key in ("pad_id", "bos_id", "eos_id", "unk_id"):
        if not isinstance(tok.get(key), int):
            problems.append(f"tokenizer.{key} must be an integer, got {tok.get(key)!r}")
    if not isinstance(tok.get("lang_ids"), dict) or not tok["lang_ids"]:
        problems.append(
            f"tokenizer.lang_ids must be a non-empty object, got {tok.get('lang_ids')!r}"
        )
    directions = data.get("directions")
    if directions is not None:
        languages = tok.get("languages") if isinstance(tok.get("languages"), list) else []
        valid = isinstance(directions, list) and len(directions) == len(set(map(str, directions)))
        for direction in directions if isinstance(directions, list) else []:
            src, sep, tgt = direction.partition("-") if isinstance(direction, str) else ("", "", "")
            valid = valid and bool(sep) and src != tgt and {src, tgt} <= set(languages)
        if not valid or not directions:
            problems.append(
                "directions must be a non-empty list of distinct 'src-tgt' pairs of the "
                f"tokenizer's languages {languages}, got {directions!r}"
            )
    for vname, entry in data["variants"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict):
            problems.append(f"variant {vname!r} must be an object with a 'files' object")
            continue
        if entry.get("backend") not in BACKENDS:
            problems.append(
                f"variant {vname!r}: backend {entry.get('backend')!r} not in {BACKENDS}"
            )
        named.update(f for f in entry["files"].values() if isinstance(f, str))
        problems += [f"variant {vname!r}: file for {role!r} must be a string, got {f!r}"
                     for role, f in entry["files"].items() if not isinstance(f, str)]  # fmt: skip

    hashed = data["files"]
    for name in sorted(named - hashed.keys()):
        problems.append(f"file {name!r} is used but has no sha256 entry in 'files'")
    for name, meta in sorted(hashed.items()):
        try:
            file = _inside(folder, name, "file")
        except ArtifactError as exc:
            problems.append(str(exc))
            continue
        if not file.is_file():
            problems.append(f"file {name!r} is missing")
            continue
        if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str):
            problems.append(f"files[{name!r}] must hold a sha256 string")
            continue
        size = file.stat().st_size
        if meta.get("bytes") is not None and meta["bytes"] != size:
            problems.append(f"file {name!r} has {size} bytes, the manifest says {meta['bytes']}")
        elif verify_hashes and sha256_file(file) != meta["sha256"]:
            problems.append(f"file {name!r} does not match its sha256 in the manifest "
                            "(modified or corrupted)")  # fmt: skip
    if problems:
        raise ArtifactError(f"refusing artifact folder {folder}: " + "; ".join(problems))
    return Manifest(folder, data)


def file_entries(folder: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """``{"name": {"sha256": ..., "bytes": ...}}`` for the given files of ``folder``."""
    return {
        name: {"sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size}
        for name in sorted(names)
    }


def write_manifest(folder: Path, data: dict[str, Any]) -> Path:
    """Write ``manifest.json`` last (temp file + rename): its presence marks a finished export.

    ``data["files"]`` is filled from every file in the folder except the manifest itself.
    """
    names = [
        str(p.relative_to(folder)) for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
    ]  # fmt: skip
    data = {**data, "format_version": FORMAT_VERSION, "files": file_entries(folder, names)}
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)
    return folder / MANIFEST
