"""Checkpoints: safetensors + JSON only, every mismatch reported, pickles refused unexecuted."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lingolite.checkpoint import CheckpointError, load_pretrained, save_pretrained
from tests.helpers import random_batch, small_model


class Payload:
    """Unpickling this runs ``touch <marker>``: proof that a loader executed pickle code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_round_trip_is_exact(tmp_path: Path) -> None:
    model = small_model(seed=5)
    save_pretrained(model, tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    loaded = load_pretrained(tmp_path / "ckpt")
    assert loaded.config == model.config
    src, mask = random_batch(2, 5)
    tgt = torch.randint(4, 97, (2, 4))
    assert torch.equal(loaded(src, mask, tgt), model(src, mask, tgt))


def test_pickle_checkpoint_is_refused_and_its_payload_never_runs(tmp_path: Path) -> None:
    folder = tmp_path / "evil"
    save_pretrained(small_model(), folder)
    marker = tmp_path / "pwned"
    # A pickle (as torch.save would write) under the safetensors name, and a classic .bin beside it.
    (folder / "model.safetensors").write_bytes(pickle.dumps({"w": Payload(marker)}))
    torch.save({"w": Payload(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"not a valid safetensors file.*never loads pickled"):
        load_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["weights"] = "pytorch_model.bin"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_pretrained(folder)
    assert not marker.exists()


# Every folder of Python code that ships or runs beside the packages (tests excepted: they build
# pickles on purpose, to prove that nothing loads them).
CODE_FOLDERS = ("lingolite", "export", "runtime", "benchmarks", "scripts")
UNPICKLING = r"torch\.load\(|pickle\.loads?\(|weights_only|allow_pickle=True|joblib\.load\("


def unpickling_calls(root: Path, folders: tuple[str, ...]) -> str:
    return subprocess.run(
        ["grep", "-rnE", "--include=*.py", UNPICKLING, *folders],
        cwd=root, capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip


def test_no_unpickling_anywhere_in_the_code() -> None:
    root = Path(__file__).resolve().parents[1]
    assert all((root / folder).is_dir() for folder in CODE_FOLDERS)
    assert unpickling_calls(root, CODE_FOLDERS) == ""


def test_the_unpickling_guard_finds_a_planted_load_in_every_folder(tmp_path: Path) -> None:
    calls = ["torch.load(p)", "pickle.load(f)", "np.load(p, allow_pickle=True)"]
    for folder, call in zip(CODE_FOLDERS, calls * 2, strict=False):
        (tmp_path / folder / "sub").mkdir(parents=True)
        (tmp_path / folder / "sub" / "planted.py").write_text(f"x = {call}\n")
    hits = unpickling_calls(tmp_path, CODE_FOLDERS)
    assert all(f"{folder}/sub/planted.py" in hits for folder in CODE_FOLDERS), hits


def test_every_key_and_shape_mismatch_is_reported_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    model = small_model()
    save_pretrained(model, folder)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    del state["embed.weight"]
    state["decoder_norm.weight"] = torch.ones(5)
    state["stray.weight"] = torch.ones(1)
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError) as info:
        load_pretrained(folder)
    message = str(info.value)
    assert "missing key 'embed.weight'" in message
    assert "unexpected key 'stray.weight'" in message
    assert "decoder_norm.weight: shape (5,) in file, model expects (32,)" in message


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (lambda c: c.update(format_version=99), "format_version is 99"),
        (lambda c: c.update(weights="../outside.safetensors"), "outside its folder"),
        (lambda c: c.update(weights="/etc/passwd"), "not absolute"),
        (lambda c: c["model"].update(n_heads=5), "must be divisible by n_heads"),
        (lambda c: c["model"].pop("vocab_size"), "missing key 'vocab_size'"),
    ],
)
def test_bad_config_is_refused_clearly(tmp_path: Path, mutate: object, expected: str) -> None:
    folder = tmp_path / "ckpt"
    save_pretrained(small_model(), folder)
    config = json.loads((folder / "config.json").read_text())
    mutate(config)  # type: ignore[operator]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=expected):
        load_pretrained(folder)


def test_symlinked_weights_escaping_the_folder_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    save_pretrained(small_model(), folder)
    outside = tmp_path / "elsewhere.safetensors"
    (folder / "model.safetensors").rename(outside)
    (folder / "model.safetensors").symlink_to(outside)
    with pytest.raises(CheckpointError, match="outside its folder"):
        load_pretrained(folder)


def test_missing_folder_and_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"config.json is missing"):
        load_pretrained(tmp_path / "empty")
    (tmp_path / "empty" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_pretrained(tmp_path / "empty")


def test_failed_save_leaves_nothing_under_the_final_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lingolite.checkpoint as ckpt

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_pretrained(small_model(), tmp_path / "ckpt")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_needs_force(tmp_path: Path) -> None:
    save_pretrained(small_model(seed=1), tmp_path / "ckpt")
    with pytest.raises(FileExistsError, match="not empty"):
        save_pretrained(small_model(seed=2), tmp_path / "ckpt", force=False)
    save_pretrained(small_model(seed=2), tmp_path / "ckpt", force=True)
    assert torch.equal(
        load_pretrained(tmp_path / "ckpt").embed.weight, small_model(seed=2).embed.weight
    )


def test_lingolite_tokenizer_and_search_import_without_torch() -> None:
    code = "import lingolite, lingolite.search, lingolite.config, sys; assert 'torch' not in sys.modules"
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1]
    )
