"""Tests of the PyTorch-free runtime: Translator, OnnxBackend, the translate CLI, and the
refusal of tampered or unsafe artifact folders."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from lingolite.checkpoint import load_pretrained
from lingolite.generate import translate_ids
from lingolite.search import SearchConfig
from lingolite.segment import split_long
from runtime.manifest import ArtifactError, load_manifest, write_manifest
from runtime.onnx_backend import OnnxBackend, check_external_data
from runtime.translate import main
from runtime.translator import Translator, TranslatorError, create_backend, quantized_precision
from tests.test_onnx_export import toy_artifacts

TEXTS = [
    "A man rides a bike on the street.",
    "A dog.",
    "",
    "Two dogs pull a small boat near the lake in the snow.",
    "A girl holds a white cat.",
]


@pytest.fixture(scope="module")
def toy(
    tmp_path_factory: pytest.TempPathFactory, toy_tokenizer_dir: Path, toy_corpus_dir: Path
) -> tuple[Path, Path]:
    """(artifact folder, checkpoint): the toy export shared with tests/test_onnx_export.py."""
    return toy_artifacts(tmp_path_factory.getbasetemp(), toy_tokenizer_dir, toy_corpus_dir)


@pytest.fixture
def toy_copy(toy: tuple[Path, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(toy[0], tmp_path / "artifacts"))


def edit_manifest(folder: Path, **changes: Any) -> None:
    path = folder / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_runtime_imports_without_torch() -> None:
    code = (
        "import runtime.translator, runtime.translate, runtime.onnx_backend, sys; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


# ---------------------------------------------------------------------- Translator


def test_translator_matches_eager_in_order(toy: tuple[Path, Path]) -> None:
    translator = Translator.from_artifacts(toy[0])
    model = load_pretrained(toy[1])
    tok = translator.tokenizer
    # A text longer than the toy model's 32 source tokens is translated in clause/word pieces.
    pieces = [
        split_long(t, lambda s: len(tok.encode_source(s, "de")) <= translator.max_src_len)
        for t in TEXTS
        if t
    ]
    assert max(map(len, pieces)) > 1, "one text should exceed max_src_len"
    expected = [
        " ".join(
            tok.decode(ids)
            for ids in translate_ids(
                model, [tok.encode_source(p, "de") for p in text], SearchConfig(max_length=24)
            )
        )
        for text in pieces
    ]
    expected.insert(2, "")  # a blank text translates to "" without running the model
    assert translator.translate(TEXTS, "en", "de", batch_size=2) == expected
    beams = translator.translate(TEXTS[:2], "en", "de", num_beams=3)
    eager_beams = translate_ids(
        model,
        [tok.encode_source(t, "de") for t in TEXTS[:2]],
        SearchConfig(num_beams=3, max_length=24),
    )
    assert beams == [tok.decode(ids) for ids in eager_beams]
    assert translator.languages == ("de", "en", "fr")


def test_translator_validates_requests(toy: tuple[Path, Path]) -> None:
    translator = Translator.from_artifacts(toy[0])
    with pytest.raises(TranslatorError) as info:
        translator.translate(["x"], "xx", "klingon")
    message = str(info.value)
    assert "unknown source language 'xx'; supported: ['de', 'en', 'fr']" in message
    assert "unknown target language 'klingon'" in message
    with pytest.raises(TranslatorError, match="both 'en'"):
        translator.translate(["x"], "en", "en")
    with pytest.raises(TranslatorError, match="not one string"):
        translator.translate("A dog.", "en", "de")
    with pytest.raises(ValueError, match="max_length must be in"):
        translator.translate(["x"], "en", "de", max_length=1000)


def test_translator_splits_long_sources_and_flags_truncation(toy: tuple[Path, Path]) -> None:
    translator = Translator.from_artifacts(toy[0])
    long_text = " ".join(["A man rides a bike."] * 20)
    out = translator.translate_detailed([long_text, "A dog."], "en", "de", max_length=4)
    assert len(out) == 2
    assert out[0].sentences == 20  # every sentence translated, none cut off the source
    assert out[0].truncated  # 4 tokens per sentence are not enough for this untrained model


def test_backend_registry(toy: tuple[Path, Path]) -> None:
    manifest = load_manifest(toy[0])
    with pytest.raises(TranslatorError, match=r"unknown backend 'tflite'; choose one of"):
        create_backend(manifest, "tflite", "fp32")
    with pytest.raises(ArtifactError, match="no int8 onnxruntime variant"):
        quantized_precision(manifest, "onnxruntime")
    with pytest.raises(ArtifactError, match="no onnxruntime program in precision 'int8'"):
        OnnxBackend(manifest, "int8")


# ---------------------------------------------------------------------- translate CLI


def test_cli_args_stdin_and_files(
    toy: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = Translator.from_artifacts(toy[0]).translate(TEXTS, "en", "de")
    base = ["--artifacts", str(toy[0]), "--src", "en", "--tgt", "de"]

    assert main([*base, *TEXTS[:2]]) == 0
    assert capsys.readouterr().out == "".join(f"{t}\n" for t in expected[:2])

    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(TEXTS) + "\n"))
    assert main(base) == 0
    assert capsys.readouterr().out.split("\n")[:-1] == expected

    source, target = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text("\n".join(TEXTS), encoding="utf-8")
    assert main([*base, "--input", str(source), "--output", str(target), "--beams", "2"]) == 0
    assert len(target.read_text(encoding="utf-8").split("\n")[:-1]) == len(TEXTS)


def test_cli_errors(toy: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--artifacts", str(toy[0]), "--src", "en", "--tgt", "xx", "A dog."]) == 2
    assert "unknown target language 'xx'" in capsys.readouterr().err
    assert main(["--artifacts", str(toy[0]), "--src", "en", "--tgt", "de", "--int8", "x"]) == 2
    assert "no int8 onnxruntime variant" in capsys.readouterr().err


def test_cli_runs_as_a_module(toy: tuple[Path, Path]) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime.translate",
            "--artifacts",
            str(toy[0]),
            "--src",
            "en",
            "--tgt",
            "de",
            "A dog.",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    assert len(result.stdout.splitlines()) == 1


# ---------------------------------------------------------------------- refusing artifacts


def test_flipped_byte_is_refused(toy_copy: Path) -> None:
    graph = toy_copy / "decoder.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0x01
    graph.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"'decoder\.onnx' does not match its sha256"):
        Translator.from_artifacts(toy_copy)


def test_edited_hash_is_refused(toy_copy: Path) -> None:
    files = json.loads((toy_copy / "manifest.json").read_text())["files"]
    files["spm.model"]["sha256"] = "0" * 64
    edit_manifest(toy_copy, files=files)
    with pytest.raises(ArtifactError, match=r"'spm\.model' does not match its sha256"):
        Translator.from_artifacts(toy_copy)


def test_newer_format_version_is_refused(toy_copy: Path) -> None:
    edit_manifest(toy_copy, format_version=2)
    with pytest.raises(ArtifactError, match="format_version 2 is not supported"):
        Translator.from_artifacts(toy_copy)


def test_parent_path_file_name_is_refused(toy_copy: Path) -> None:
    data = json.loads((toy_copy / "manifest.json").read_text())
    data["variants"]["onnx-fp32"]["files"]["encoder"] = "../encoder.onnx"
    data["files"]["../encoder.onnx"] = data["files"]["encoder.onnx"]
    shutil.copy(toy_copy / "encoder.onnx", toy_copy.parent / "encoder.onnx")
    edit_manifest(toy_copy, **data)
    with pytest.raises(ArtifactError, match=r"'\.\./encoder\.onnx' resolves to .* outside"):
        Translator.from_artifacts(toy_copy)


def _graph_with_external_weight(folder: Path, location: str) -> Path:
    """A one-node graph ``y = x + w`` whose initializer ``w`` is stored at ``location``."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [2], [0.0, 0.0])
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "8")):
        weight.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [weight],
    )
    path = folder / "model.onnx"
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_external_data_outside_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "artifacts"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(np.zeros(2, np.float32).tobytes())
    (folder / "weights.bin").write_bytes(np.zeros(2, np.float32).tobytes())
    path = _graph_with_external_weight(folder, "weights.bin")
    assert check_external_data(path) == ["weights.bin"]
    for location in ("../secret.bin", str(tmp_path / "secret.bin")):
        path = _graph_with_external_weight(folder, location)
        with pytest.raises(ArtifactError, match=r"initializer 'w' reads external data .* outside"):
            check_external_data(path)


def test_backend_refuses_graphs_with_outside_external_data(toy_copy: Path) -> None:
    """A folder whose hashes are all correct is still refused if a graph reads outside it."""
    (toy_copy.parent / "secret.bin").write_bytes(np.zeros(2, np.float32).tobytes())
    _graph_with_external_weight(toy_copy, "../secret.bin").rename(toy_copy / "encoder.onnx")
    data = json.loads((toy_copy / "manifest.json").read_text())
    write_manifest(toy_copy, data)
    with pytest.raises(ArtifactError, match=r"encoder\.onnx: initializer 'w' reads external data"):
        Translator.from_artifacts(toy_copy)
