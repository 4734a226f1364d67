"""Model checkpoints: ``config.json`` + ``model.safetensors``, nothing else, never unpickled.

A checkpoint folder::

    config.json        {"format_version": 1, "model": {...ModelConfig...},
                        "weights": "model.safetensors"}
    model.safetensors  every parameter, keyed by its state_dict name

Loading reads the weights only through ``safetensors`` (which parses a JSON header and raw
tensor bytes, so a pickle payload can never execute), then checks the key set and every shape and
reports all mismatches at once. There is no fallback to any other format.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from lingolite.config import ConfigError, ModelConfig
from lingolite.model import LingoLite
from lingolite.utils import atomic_directory, read_json_object, resolve_inside

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be loaded; the message says what and where."""


def save_pretrained(
    model: LingoLite, directory: Path | str, *, extra: dict[str, Any] | None = None,
    force: bool = True,
) -> Path:  # fmt: skip
    """Write ``model`` to ``directory`` atomically (temporary folder, then rename)."""
    directory = Path(directory)
    with atomic_directory(directory, force=force) as tmp:
        write_model_files(model, tmp, extra=extra)
    log.info("saved checkpoint to %s", directory)
    return directory


def write_model_files(
    model: LingoLite, folder: Path, *, extra: dict[str, Any] | None = None
) -> None:
    """Write config.json and model.safetensors into an existing (temporary) folder."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    config = {"format_version": FORMAT_VERSION, "model": model.config.to_dict(),
              "weights": WEIGHTS_FILE, **(extra or {})}  # fmt: skip
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def read_config(directory: Path | str) -> tuple[ModelConfig, dict[str, Any]]:
    """Parse and validate ``config.json``; returns the model config and the whole JSON object."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint folder {directory} does not exist or is not a folder")
    path = directory / CONFIG_FILE
    try:
        resolve_inside(directory, CONFIG_FILE, "config file")
    except ValueError as exc:
        raise CheckpointError(f"refusing {path}: {exc}") from exc
    data = read_json_object(
        path, CheckpointError, f"{path} is missing: not a LingoLite checkpoint folder"
    )
    problems = []
    version = data.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        problems.append(
            f"format_version is {data.get('format_version')!r}, this LingoLite reads "
            f"{FORMAT_VERSION}"
        )
    if not isinstance(data.get("weights"), str):
        problems.append(f"'weights' must name the safetensors file, got {data.get('weights')!r}")
    try:
        config = ModelConfig.from_dict(data.get("model"))
    except (ConfigError, TypeError) as exc:
        problems.append(str(exc))
    if problems:
        raise CheckpointError(f"{path}: " + "; ".join(problems))
    return config, data


def _weights_path(directory: Path | str, name: str) -> Path:
    """The weights file ``name`` of a checkpoint folder: inside it, and present."""
    try:
        path = resolve_inside(Path(directory), name, "weights file")
    except ValueError as exc:
        raise CheckpointError(str(exc)) from exc
    if not path.is_file():
        raise CheckpointError(f"weights file {path} is missing")
    return path


def load_state(directory: Path | str, name: str) -> dict[str, torch.Tensor]:
    """Load a safetensors file named in a checkpoint's JSON, refusing anything else."""
    path = _weights_path(directory, name)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is not a valid safetensors file ({exc}); LingoLite never loads pickled weights"
        ) from exc


def read_shapes(directory: Path | str, name: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{key: (shape, dtype)}`` from a safetensors file's header, without loading a tensor."""
    path = _weights_path(directory, name)
    try:
        with safe_open(str(path), framework="pt") as fh:
            return {
                key: (tuple(fh.get_slice(key).get_shape()), str(fh.get_slice(key).get_dtype()))
                for key in fh.keys()  # noqa: SIM118 (safe_open is not a mapping)
            }
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is not a valid safetensors file ({exc}); LingoLite never loads pickled weights"
        ) from exc


def expected_shapes(config: ModelConfig) -> dict[str, torch.Tensor]:
    """The model's state dict on the ``meta`` device: shapes and dtypes, no memory."""
    with torch.device("meta"):
        return LingoLite(config).state_dict()


def check_header(config: ModelConfig, directory: Path | str, name: str) -> None:
    """Compare the weights file's header with the model's shapes before allocating anything."""
    found = read_shapes(directory, name)
    expected = expected_shapes(config)
    problems = [f"missing key {k!r}" for k in sorted(expected.keys() - found.keys())]
    problems += [f"unexpected key {k!r}" for k in sorted(found.keys() - expected.keys())]
    for key in sorted(expected.keys() & found.keys()):
        if tuple(expected[key].shape) != found[key][0]:
            problems.append(
                f"{key}: shape {found[key][0]} in file, model expects {tuple(expected[key].shape)}"
            )
    if problems:
        raise CheckpointError(
            f"{Path(directory) / name} does not match {CONFIG_FILE}: " + "; ".join(problems)
        )


def check_finite(state: dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights holding NaN or infinity (they make every translation garbage or empty)."""
    bad = [
        key
        for key, tensor in state.items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        raise CheckpointError(
            f"{source}: tensors {bad[:10]} hold NaN or infinite values"
            + (f" (and {len(bad) - 10} more)" if len(bad) > 10 else "")
        )


def check_state_dict(
    expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], source: str
) -> None:
    """Raise listing every missing key, unexpected key and shape mismatch at once."""
    problems = [f"missing key {k!r}" for k in sorted(expected.keys() - found.keys())]
    problems += [f"unexpected key {k!r}" for k in sorted(found.keys() - expected.keys())]
    for key in sorted(expected.keys() & found.keys()):
        want, got = tuple(expected[key].shape), tuple(found[key].shape)
        if want != got:
            problems.append(f"{key}: shape {got} in file, model expects {want}")
        elif found[key].dtype != expected[key].dtype:
            problems.append(f"{key}: dtype {found[key].dtype} in file, model expects "
                            f"{expected[key].dtype}")  # fmt: skip
    if problems:
        raise CheckpointError(f"{source} does not match the model: " + "; ".join(problems))


def load_pretrained(directory: Path | str, *, device: str | torch.device = "cpu") -> LingoLite:
    """Build the model from ``config.json`` and load ``model.safetensors`` into it (eval mode).

    >>> model = load_pretrained("pretrained/lingolite-tiny-multi30k")
    >>> model.config.name, model.config.vocab_size, model.training
    ('tiny', 8000, False)

    A folder written by :func:`save_pretrained` loads back to the same weights:

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = save_pretrained(model, Path(tmp) / "copy")
    ...     again = load_pretrained(folder)
    >>> torch.equal(again.embed.weight, model.embed.weight)
    True
    """
    config, data = read_config(directory)
    check_header(config, directory, data["weights"])  # before any allocation
    state = load_state(directory, data["weights"])
    check_finite(state, str(Path(directory) / data["weights"]))
    model = LingoLite(config)
    check_state_dict(model.state_dict(), state, str(Path(directory) / data["weights"]))
    model.load_state_dict(state)
    return model.to(device).eval()
