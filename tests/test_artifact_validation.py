"""Manifests, checkpoint configs and tokenizer folders are validated whole before anything is
allocated; symlinks out of a folder, unlisted external data and non-finite weights are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from safetensors.torch import save_file

from lingolite.checkpoint import CheckpointError, load_pretrained, read_config, save_pretrained
from lingolite.tokenizer import Tokenizer, TokenizerError
from lingolite.utils import sha256_file
from runtime.manifest import ArtifactError, load_manifest
from runtime.onnx_backend import OnnxBackend
from tests.helpers import small_model
from tests.test_onnx_export import toy_artifacts


@pytest.fixture(scope="module")
def toy(
    tmp_path_factory: pytest.TempPathFactory, toy_tokenizer_dir: Path, toy_corpus_dir: Path
) -> Path:
    return toy_artifacts(tmp_path_factory.getbasetemp(), toy_tokenizer_dir, toy_corpus_dir)[0]


@pytest.fixture
def copy(toy: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(toy, tmp_path / "artifacts"))


def edit(folder: Path, path: list[str], value: Any) -> None:
    manifest = folder / "manifest.json"
    data = json.loads(manifest.read_text())
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    manifest.write_text(json.dumps(data))


def test_model_block_is_checked_against_the_graphs(copy: Path) -> None:
    edit(copy, ["model", "max_tgt_len"], 4)
    with pytest.raises(ArtifactError, match="max_tgt_len is 4") as info:
        load_manifest(copy)
    assert "self_k dimension 3" in str(info.value)


def test_every_problem_of_a_manifest_at_once(copy: Path) -> None:
    edit(copy, ["model", "d_model"], ...)
    edit(copy, ["model", "n_heads"], 0)
    edit(copy, ["tokenizer", "eos_id"], "2")
    edit(copy, ["files", "encoder.onnx", "bytes"], -1)
    with pytest.raises(ArtifactError) as info:
        load_manifest(copy)
    message = str(info.value)
    for needle in ("missing key 'd_model'", "tokenizer.eos_id", "files.encoder.onnx.bytes"):
        assert needle in message, message


@pytest.mark.parametrize("version", [True, 1.0, "1", None])
def test_format_version_must_be_the_integer_1(copy: Path, version: Any) -> None:
    edit(copy, ["format_version"], version)
    with pytest.raises(ArtifactError, match="format_version"):
        load_manifest(copy)


@pytest.mark.parametrize("name", ["manifest.json", "tokenizer.json", "spm.model"])
def test_symlinks_out_of_the_folder_are_refused(copy: Path, tmp_path: Path, name: str) -> None:
    outside = tmp_path / f"outside-{name}"
    shutil.move(copy / name, outside)
    (copy / name).symlink_to(outside)
    with pytest.raises((ArtifactError, TokenizerError), match=r"symlink|outside"):
        load_manifest(copy)
        Tokenizer.from_pretrained(copy)


def test_tokenizer_json_symlinked_outside_is_refused(
    tmp_path: Path, toy_tokenizer_dir: Path
) -> None:
    folder = Path(shutil.copytree(toy_tokenizer_dir, tmp_path / "tok"))
    outside = tmp_path / "elsewhere.json"
    shutil.move(folder / "tokenizer.json", outside)
    (folder / "tokenizer.json").symlink_to(outside)
    with pytest.raises(TokenizerError, match="outside"):
        Tokenizer.from_pretrained(folder)


def test_empty_sentencepiece_model_is_a_tokenizer_error(
    tmp_path: Path, toy_tokenizer_dir: Path
) -> None:
    folder = Path(shutil.copytree(toy_tokenizer_dir, tmp_path / "tok"))
    (folder / "spm.model").write_bytes(b"")
    with pytest.raises(TokenizerError, match="empty"):
        Tokenizer.from_pretrained(folder)


def test_unlisted_external_data_is_refused(copy: Path) -> None:
    # Move the encoder's weights into external data that the manifest does not list: before,
    # a zeroed encoder.onnx.data loaded silently and translated into the wrong language.
    graph = onnx.load(str(copy / "encoder.onnx"))
    onnx.save_model(graph, str(copy / "encoder.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="encoder.onnx.data",
                    size_threshold=0)  # fmt: skip
    data = copy / "encoder.onnx.data"
    data.write_bytes(np.zeros(data.stat().st_size, dtype=np.uint8).tobytes())
    manifest = json.loads((copy / "manifest.json").read_text())
    path = copy / "encoder.onnx"
    manifest["files"]["encoder.onnx"] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        ArtifactError, match=r"encoder\.onnx\.data'\] that the manifest does not list"
    ):
        OnnxBackend(load_manifest(copy), "fp32")


# --- Checkpoints ---------------------------------------------------------------------------


def write_config(folder: Path, **model_changes: Any) -> None:
    path = folder / "config.json"
    data = json.loads(path.read_text())
    data["model"].update(model_changes)
    path.write_text(json.dumps(data))


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    return save_pretrained(small_model(), tmp_path / "ckpt")


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"vocab_size": 40_000_000}, "vocab_size must be <= 1048576"),
        ({"n_encoder_layers": 1_000_000}, "n_encoder_layers must be <= 128"),
        ({"d_model": 16384, "ffn_dim": 65536, "n_heads": 64, "n_kv_heads": 64}, "parameters"),
        ({"rope_base": float("inf")}, "rope_base must be finite"),
        ({"norm_eps": float("nan")}, "norm_eps must be finite"),
        ({"n_heads": 0}, "n_heads must be > 0"),
    ],
)
def test_huge_or_non_finite_configs_fail_before_allocating(
    checkpoint: Path, changes: dict[str, Any], needle: str
) -> None:
    write_config(checkpoint, **changes)
    with pytest.raises(CheckpointError, match=needle):
        load_pretrained(checkpoint)


def test_checkpoint_format_version_true_is_refused(checkpoint: Path) -> None:
    path = checkpoint / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": True}))
    with pytest.raises(CheckpointError, match="format_version is True"):
        read_config(checkpoint)


def test_checkpoint_config_symlinked_outside_is_refused(checkpoint: Path, tmp_path: Path) -> None:
    outside = tmp_path / "config-elsewhere.json"
    shutil.move(checkpoint / "config.json", outside)
    (checkpoint / "config.json").symlink_to(outside)
    with pytest.raises(CheckpointError, match="outside"):
        read_config(checkpoint)


def test_weights_that_disagree_with_the_config_fail_before_allocating(checkpoint: Path) -> None:
    write_config(checkpoint, n_encoder_layers=3)
    with pytest.raises(CheckpointError, match=r"missing key 'encoder_layers\.2\."):
        load_pretrained(checkpoint)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(checkpoint: Path, bad: float) -> None:
    from safetensors.torch import load_file

    state = load_file(str(checkpoint / "model.safetensors"))
    key = sorted(state)[3]
    state[key] = state[key].clone()
    state[key].view(-1)[0] = bad
    save_file(state, str(checkpoint / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_pretrained(checkpoint)
    assert torch.isfinite(load_file(str(checkpoint / "model.safetensors"))[sorted(state)[0]]).all()
