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
                      "files": {"encoder": "encoder.onnx", "decoder": "decoder.onnx",
                                "decoder_grow": "decoder.grow.onnx"},  # optional, newer
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

:func:`load_manifest` validates the whole manifest before anything else (:func:`check_manifest`:
one pydantic schema for types and ranges, then cross-field rules: the ``model`` block is a valid
:class:`~lingolite.config.ModelConfig`, special and language ids agree with it, ``directions``
name pairs of the tokenizer's languages, and every signature's static dimensions match the model,
e.g. a cache length equal to ``max_tgt_len``), then that every named file is listed in ``files``,
resolves inside the folder (no absolute paths, ``..`` or symlinks, the manifest itself included),
and has the listed size and sha256. It refuses the folder with one :class:`ArtifactError` naming
every problem. Runtimes open only listed files: ONNX external data too (``runtime.onnx_backend``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
)

from lingolite.config import ConfigError, ModelConfig
from lingolite.marian_tokenizer import MARIAN_LANGUAGE_RE
from lingolite.marian_tokenizer import TOKENIZER_TYPE as MARIAN_TYPE
from lingolite.tokenizer import LANGUAGE_RE, TokenId
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
    def hashed_files(self) -> frozenset[str] | None:
        """The names of the files listed (with size and sha256) in the manifest; None for a
        manifest still being built by an exporter (no ``files`` yet; :func:`load_manifest`
        never returns one)."""
        files = self.data.get("files")
        return None if files is None else frozenset(files)

    @property
    def tokenizer_dir(self) -> Path:
        return self.folder

    @property
    def lang_ids(self) -> dict[str, TokenId]:
        return {lang: TokenId(int(i)) for lang, i in self.data["tokenizer"]["lang_ids"].items()}

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

    def special_id(self, name: str) -> TokenId:
        return TokenId(int(self.data["tokenizer"][f"{name}_id"]))

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


# --- Schema ------------------------------------------------------------------------------------

# LingoLite's own codes are 2-3 letters (lingolite.tokenizer.LANGUAGE_RE, checked per tokenizer
# type below); imported OPUS-MT models also have codes such as "pt_br" or "zh_Hant".
_CODE = MARIAN_LANGUAGE_RE.pattern
LanguageCode = Annotated[str, StringConstraints(pattern=rf"^{_CODE}$")]
Direction = Annotated[str, StringConstraints(pattern=rf"^{_CODE}-{_CODE}$")]
FileName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
TokenIdValue = Annotated[StrictInt, Field(ge=0)]
Dim = Annotated[StrictInt, Field(ge=0)] | Annotated[str, StringConstraints(min_length=1)]


class _Schema(BaseModel):
    # Unknown keys are allowed (newer exporters may add some); known ones are strictly typed.
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class TensorSpecSchema(_Schema):
    name: Annotated[str, StringConstraints(min_length=1)]
    dtype: Annotated[str, StringConstraints(min_length=1)]
    shape: list[Dim]


class SignatureSchema(_Schema):
    inputs: list[TensorSpecSchema]
    outputs: list[TensorSpecSchema]


class VariantSchema(_Schema):
    backend: Literal["onnxruntime", "executorch", "ctranslate2"]
    precision: Annotated[str, StringConstraints(min_length=1)]
    files: Annotated[dict[str, FileName], Field(min_length=1)]
    signatures: dict[str, SignatureSchema] = {}


class TokenizerSchema(_Schema):
    config: Literal["tokenizer.json"]  # the name Tokenizer.from_pretrained opens
    # tokenizer.json's "type"; absent in older manifests, which all hold a LingoLite Tokenizer.
    type: str | None = None
    model: FileName
    vocab: FileName | None = None
    languages: Annotated[list[LanguageCode], Field(min_length=1)]
    lang_ids: dict[LanguageCode, TokenIdValue]  # a single-pair Marian model has no tags
    pad_id: TokenIdValue
    bos_id: TokenIdValue
    eos_id: TokenIdValue
    unk_id: TokenIdValue
    vocab_size: Annotated[StrictInt, Field(ge=1)] | None = None


class FileEntrySchema(_Schema):
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    bytes: Annotated[StrictInt, Field(ge=0)]


class ManifestSchema(_Schema):
    """``manifest.json`` (see the module docstring); cross-field rules in :func:`check_manifest`."""

    format_version: StrictInt
    model: dict[str, Any]
    trained: StrictBool | None = None
    source: str | None = None
    tokenizer: TokenizerSchema
    variants: Annotated[dict[str, VariantSchema], Field(min_length=1)]
    files: Annotated[dict[str, FileEntrySchema], Field(min_length=1)]
    # Trained directions "src-tgt" (written by newer exporters; absent in older manifests).
    directions: Annotated[list[Direction], Field(min_length=1)] | None = None


def _schema_problems(error: ValidationError) -> list[str]:
    problems = []
    for err in error.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        value = err.get("input")
        shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
        problems.append(f"{where}: {err['msg']} (got {shown[:80]})")
    return problems


# Static dimensions of the exported tensors, by name: each entry is a ModelConfig attribute,
# "head_dim", or None for a dimension the model does not fix (batch).
_TENSOR_DIMS: dict[str, tuple[str | None, ...]] = {
    "src_ids": (None, "max_src_len"),
    "src_mask": (None, "max_src_len"),
    "cross_k": ("n_decoder_layers", None, "n_kv_heads", "max_src_len", "head_dim"),
    "cross_v": ("n_decoder_layers", None, "n_kv_heads", "max_src_len", "head_dim"),
    "self_k": ("n_decoder_layers", None, "n_kv_heads", "max_tgt_len", "head_dim"),
    "self_v": ("n_decoder_layers", None, "n_kv_heads", "max_tgt_len", "head_dim"),
    "new_self_k": ("n_decoder_layers", None, "n_kv_heads", "max_tgt_len", "head_dim"),
    "new_self_v": ("n_decoder_layers", None, "n_kv_heads", "max_tgt_len", "head_dim"),
    "logits": (None, "vocab_size"),
    # The growing cache (``decoder_grow``): its length is dynamic. These stacked names are those
    # of exports before per-layer I/O; today's exports name one tensor per layer (_tensor_dims).
    "past_k": ("n_decoder_layers", None, "n_kv_heads", None, "head_dim"),
    "past_v": ("n_decoder_layers", None, "n_kv_heads", None, "head_dim"),
    "present_k": ("n_decoder_layers", None, "n_kv_heads", None, "head_dim"),
    "present_v": ("n_decoder_layers", None, "n_kv_heads", None, "head_dim"),
}


# ``decoder_grow``'s per-layer tensors (``cross_k_0``, ``past_k_3``, ...): a stacked tensor's
# dimensions without the first (layers).
_PER_LAYER = re.compile(r"(cross_[kv]|past_[kv]|present_[kv])_(\d+)")


def _tensor_dims(name: str) -> tuple[str | None, ...] | None:
    """The static dimensions of the exported tensor ``name`` (None: a name not checked)."""
    layer = _PER_LAYER.fullmatch(name)
    if layer:
        return _TENSOR_DIMS[layer.group(1)][1:]
    return _TENSOR_DIMS.get(name)


def signature_problems(config: ModelConfig, name: str, signature: SignatureSchema) -> list[str]:
    """Every static dimension of ``signature`` that disagrees with the model config."""
    problems = []
    for spec in [*signature.inputs, *signature.outputs]:
        dims = _tensor_dims(spec.name)
        if dims is None:
            continue
        if len(spec.shape) != len(dims):
            problems.append(
                f"{name}.{spec.name} has shape {spec.shape}, expected {len(dims)} dimensions"
            )
            continue
        for axis, (got, attr) in enumerate(zip(spec.shape, dims, strict=True)):
            if attr is None or not isinstance(got, int):
                continue
            want = getattr(config, attr)
            if got != want:
                problems.append(
                    f"{name}.{spec.name} dimension {axis} is {got} but the model's {attr} is {want}"
                )
    return problems


def check_manifest(data: Any) -> tuple[ManifestSchema, ModelConfig]:
    """Validate a parsed ``manifest.json`` whole: the schema, then the cross-field rules (model
    config, special and language ids against the vocabulary, directions against the languages,
    every signature's static dimensions against the model). Raises :class:`ArtifactError`
    listing every problem; allocates nothing."""
    if not isinstance(data, dict):
        raise ArtifactError(f"manifest must be a JSON object, got {type(data).__name__}")
    if type(data.get("format_version")) is not int or data["format_version"] != FORMAT_VERSION:
        raise ArtifactError(
            f"format_version {data.get('format_version')!r} is not supported; this runtime "
            f"reads format_version {FORMAT_VERSION}. Re-export with this LingoLite."
        )
    problems: list[str] = []
    try:
        manifest = ManifestSchema.model_validate(data)
    except ValidationError as exc:
        problems += _schema_problems(exc)
        manifest = None
    config = None
    try:
        config = ModelConfig.from_dict(data.get("model"))
    except (ConfigError, TypeError) as exc:
        problems.append(f"model: {exc}")
    if manifest is not None and config is not None:
        problems += _cross_field_problems(manifest, config)
    if problems:
        raise ArtifactError("; ".join(problems))
    assert manifest is not None and config is not None
    return manifest, config


def _cross_field_problems(manifest: ManifestSchema, config: ModelConfig) -> list[str]:
    problems = []
    tok = manifest.tokenizer
    if sorted(tok.languages) != tok.languages or len(set(tok.languages)) != len(tok.languages):
        problems.append(f"tokenizer.languages must be sorted and distinct, got {tok.languages}")
    special = {"pad_id": tok.pad_id, "bos_id": tok.bos_id, "eos_id": tok.eos_id,
               "unk_id": tok.unk_id}  # fmt: skip
    for key, value in special.items():
        if value != getattr(config, key):
            problems.append(f"tokenizer.{key} is {value} but the model's is {getattr(config, key)}")
    if tok.type == MARIAN_TYPE:
        # Tags only for the targets of a multilingual-target model; decoding starts from pad.
        if not set(tok.lang_ids) <= set(tok.languages):
            problems.append(
                f"tokenizer.lang_ids names {sorted(tok.lang_ids)}, not all in {tok.languages}"
            )
        if tok.bos_id != tok.pad_id:
            problems.append(f"tokenizer.bos_id {tok.bos_id} must be the pad_id {tok.pad_id}")
        del special["bos_id"]
    else:
        if set(tok.lang_ids) != set(tok.languages):
            problems.append(
                f"tokenizer.lang_ids names {sorted(tok.lang_ids)} but languages are {tok.languages}"
            )
        bad = [lang for lang in tok.languages if not LANGUAGE_RE.fullmatch(lang)]
        if bad:
            problems.append(f"tokenizer.languages {bad} are not 2-3 lowercase letters")
    ids = [*special.values(), *tok.lang_ids.values()]
    if len(set(ids)) != len(ids):
        problems.append(f"special and language-tag ids must be distinct, got {ids}")
    out_of_range = [i for i in ids if i >= config.vocab_size]
    if out_of_range:
        problems.append(
            f"token ids {out_of_range} are >= the model's vocab_size {config.vocab_size}"
        )
    if tok.vocab_size is not None and tok.vocab_size > config.vocab_size:
        problems.append(
            f"tokenizer.vocab_size {tok.vocab_size} exceeds the model's {config.vocab_size}"
        )
    if manifest.directions is not None:
        if len(set(manifest.directions)) != len(manifest.directions):
            problems.append(f"directions has duplicates: {manifest.directions}")
        for direction in manifest.directions:
            src, tgt = direction.split("-")
            if src == tgt or src not in tok.languages or tgt not in tok.languages:
                problems.append(
                    f"direction {direction!r} is not a pair of two of the languages {tok.languages}"
                )
    for vname, variant in manifest.variants.items():
        for role, signature in variant.signatures.items():
            problems += signature_problems(config, f"variants.{vname}.signatures.{role}", signature)
    return problems


def load_manifest(folder: Path | str, *, verify_hashes: bool = True) -> Manifest:
    """Read and verify ``folder/manifest.json`` (see the module docstring for what is checked)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"artifact folder {folder} does not exist or is not a folder")
    path = folder / MANIFEST
    if path.is_symlink():
        raise ArtifactError(f"refusing {path}: the manifest must be a regular file, not a symlink")
    data = read_json_object(
        path, ArtifactError, f"{path} is missing: not an artifact folder (or an unfinished export)"
    )
    try:
        schema, _ = check_manifest(data)
    except ArtifactError as exc:
        raise ArtifactError(f"{path}: {exc}") from None

    problems: list[str] = []
    named: set[str] = {schema.tokenizer.config, schema.tokenizer.model}
    if schema.tokenizer.vocab is not None:
        named.add(schema.tokenizer.vocab)
    for variant in schema.variants.values():
        named.update(variant.files.values())
    hashed = schema.files
    for name in sorted(named - hashed.keys()):
        problems.append(f"file {name!r} is used but has no sha256 entry in 'files'")
    for name, meta in sorted(hashed.items()):
        try:
            file = _inside(folder, name, "file")
        except ArtifactError as exc:
            problems.append(str(exc))
            continue
        if (folder / name).is_symlink():
            problems.append(f"file {name!r} is a symlink; artifact files must be regular files")
            continue
        if not file.is_file():
            problems.append(f"file {name!r} is missing")
            continue
        size = file.stat().st_size
        if meta.bytes != size:
            problems.append(f"file {name!r} has {size} bytes, the manifest says {meta.bytes}")
        elif verify_hashes and sha256_file(file) != meta.sha256:
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
