"""Tests of export.onnx, export.common and export.parity.

The real ``--size tiny`` export runs once per session (shorter static lengths keep parity fast);
a toy "checkpoint" (tiny random model with untied embeddings, so that greedy decoding varies
with the source and the position) exercises the ``--checkpoint`` path, the parity CLI and the
failure paths. ``toy_artifacts`` is shared with tests/test_runtime.py.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch

import export.parity
from export.common import ExportError, ExportOptions, add_common_arguments
from export.onnx import export_onnx, main
from export.parity import BleuSet, check_parity, load_bleu_sets, parity_sentences
from export.sample import builtin_tokenizer, sample_texts
from lingolite.checkpoint import load_pretrained, save_pretrained
from lingolite.config import ModelConfig
from lingolite.data import DataError, read_lines
from lingolite.evaluate import evaluate
from lingolite.generate import EagerBackend, translate_ids
from lingolite.model import LingoLite
from lingolite.search import (
    Cache,
    FloatArray,
    Memory,
    SearchConfig,
    SearchError,
    TokenIds,
    decode_batch,
)
from lingolite.signatures import GROW_DECODER, Signature, grow_decoder_signature, onnx_signatures
from lingolite.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer
from runtime.manifest import ArtifactError, load_manifest
from runtime.onnx_backend import OnnxBackend, check_external_data, read_signature
from runtime.translate import main as translate_main
from runtime.translator import Translator, create_backend
from tests.conftest import TOY_VOCAB_SIZE

TINY_LENGTHS = ["--max-src-len", "32", "--max-tgt-len", "32"]
TOY_CONFIG: dict[str, Any] = dict(
    vocab_size=TOY_VOCAB_SIZE,
    d_model=64,
    n_heads=4,
    n_kv_heads=2,
    n_encoder_layers=2,
    n_decoder_layers=2,
    ffn_dim=128,
    max_src_len=32,
    max_tgt_len=24,
    tie_embeddings=False,
)
# Directions of the toy parity sentences (the toy tokenizer knows de, en and fr).
TOY_DIRECTIONS = [("en", "de"), ("de", "en"), ("en", "fr"), ("fr", "de")]
# Scaling the random projections makes the toy model's greedy output depend on its source.
TOY_WEIGHT_SCALE = 3.0


def exported_signatures(config: ModelConfig) -> dict[str, Signature]:
    """What every ONNX variant of a current export records: both decoders."""
    return {**onnx_signatures(config), GROW_DECODER: grow_decoder_signature(config)}


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """The eager reference on one thread: much faster on a small, shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


def write_toy_checkpoint(folder: Path, tokenizer_dir: Path) -> Path:
    torch.manual_seed(0)
    model = LingoLite(ModelConfig(**TOY_CONFIG))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim == 2 and name != "embed.weight":
                param.mul_(TOY_WEIGHT_SCALE)
    save_pretrained(model, folder)
    for name in ("tokenizer.json", "spm.model"):
        shutil.copy(tokenizer_dir / name, folder / name)
    return folder


@functools.cache
def toy_artifacts(root: Path, tokenizer_dir: Path, corpus_dir: Path) -> tuple[Path, Path]:
    """(artifact folder, checkpoint) of the toy model, fp32 only, exported once per session."""
    checkpoint = write_toy_checkpoint(root / "toy-ckpt", tokenizer_dir)
    with one_torch_thread():
        out = export_onnx(
            ExportOptions(out=root / "toy-onnx", checkpoint=checkpoint, data=corpus_dir), "none"
        )
    return out, checkpoint


@pytest.fixture(scope="session")
def toy_export(
    tmp_path_factory: pytest.TempPathFactory, toy_tokenizer_dir: Path, toy_corpus_dir: Path
) -> tuple[Path, Path]:
    return toy_artifacts(tmp_path_factory.getbasetemp(), toy_tokenizer_dir, toy_corpus_dir)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m export.onnx --size tiny`` (static lengths 32) into a session folder."""
    out = tmp_path_factory.mktemp("tiny") / "tiny-onnx"
    with one_torch_thread():
        assert main(["--size", "tiny", "--out", str(out), *TINY_LENGTHS]) == 0
    return out


# ---------------------------------------------------------------------- the tiny export


def test_tiny_manifest_describes_the_folder(tiny_export: Path) -> None:
    manifest = load_manifest(tiny_export)
    data = manifest.data
    config = ModelConfig.from_name("tiny", max_src_len=32, max_tgt_len=32)
    assert ModelConfig.from_dict(manifest.model) == config
    assert data["trained"] is False and data["source"] == "seeded init (seed 0)"
    assert data["export"] == {"exporter": "export.onnx", "seed": 0, "quantize": "both"}
    assert set(manifest.variants) == {"onnx-fp32", "onnx-int8"}
    for name, variant in manifest.variants.items():
        assert variant.backend == "onnxruntime"
        assert variant.signatures == exported_signatures(config), name
        # The one definition is what the exported graphs really are: names, dtypes, shapes.
        for role, path in variant.files.items():
            graph = onnx.load(str(path), load_external_data=False)
            assert read_signature(graph) == exported_signatures(config)[role], (name, role)
    assert manifest.variant("onnxruntime", "int8").files == {
        "encoder": tiny_export / "encoder.int8.onnx",
        "decoder": tiny_export / "decoder.int8.onnx",
        GROW_DECODER: tiny_export / "decoder.grow.int8.onnx",
    }
    tokenizer = builtin_tokenizer()
    assert manifest.lang_ids == {lang: tokenizer.lang_id(lang) for lang in ("cs", "de", "en", "fr")}
    assert data["tokenizer"]["vocab_size"] == tokenizer.vocab_size
    assert [manifest.special_id(n) for n in ("pad", "bos", "eos", "unk")] == [0, 1, 2, 3]
    assert {"torch", "onnx", "onnxruntime", "onnxscript", "lingolite"} <= data["versions"].keys()
    assert data["versions"]["opset"] >= 18
    on_disk = {p.name for p in tiny_export.iterdir()} - {"manifest.json"}
    assert set(data["files"]) == on_disk
    assert {"parity.json", "tokenizer.json", "spm.model"} <= on_disk


def test_tiny_has_three_graphs_per_precision_with_inline_weights(tiny_export: Path) -> None:
    graphs = sorted(p.name for p in tiny_export.glob("*.onnx"))
    assert graphs == [
        "decoder.grow.int8.onnx",
        "decoder.grow.onnx",
        "decoder.int8.onnx",
        "decoder.onnx",
        "encoder.int8.onnx",
        "encoder.onnx",
    ]
    for path in tiny_export.glob("*.onnx"):
        model = onnx.load(str(path))
        assert check_external_data(path) == []
        assert {op.version for op in model.opset_import if op.domain in ("", "ai.onnx")} >= {18}
        ops = {node.op_type for node in model.graph.node}
        assert not ops & {"If", "Loop", "Scan"}, path.name
    decoder = onnx.load(str(tiny_export / "decoder.onnx"))
    assert [i.name for i in decoder.graph.input] == [
        "tokens",
        "pos",
        "src_mask",
        "cross_k",
        "cross_v",
        "self_k",
        "self_v",
    ]
    assert [o.name for o in decoder.graph.output] == ["logits", "new_self_k", "new_self_v"]


def test_int8_decoder_quantizes_the_tied_output_projection(tiny_export: Path) -> None:
    """The tied output projection (MatMul of the transposed embedding) is folded to its own weight
    before quantize_dynamic, so the int8 decoder multiplies it in int8: no float32 V x D matrix is
    left, and every MatMul weight of the graph is quantized."""
    model = onnx.load(str(tiny_export / "decoder.int8.onnx"))
    vocab = int(load_manifest(tiny_export).model["vocab_size"])
    floats = [
        t.name
        for t in model.graph.initializer
        if t.data_type == onnx.TensorProto.FLOAT and vocab in t.dims and len(t.dims) == 2
    ]
    assert floats == [], floats
    weights = {t.name for t in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    for node in model.graph.node:  # float MatMuls left: attention (activations x activations)
        if node.op_type == "MatMul":
            b = producers.get(node.input[1])
            assert node.input[1] not in weights, node.name
            reads_weight = b is not None and b.op_type in ("Transpose", "DequantizeLinear")
            assert not (reads_weight and b is not None and b.input[0] in weights), node.name
    # The rotary tables stay float32 lookups; the token embedding is an int8 lookup.
    dtypes = {t.name: t.data_type for t in model.graph.initializer}
    tables = {n.input[0]: dtypes[n.input[0]] for n in model.graph.node
              if n.op_type == "Gather" and n.input[0] in weights}  # fmt: skip
    assert tables == {
        "model.embed.weight_quantized": onnx.TensorProto.UINT8,  # Gathers quantize as uint8
        "model.rope.cos": onnx.TensorProto.FLOAT,
        "model.rope.sin": onnx.TensorProto.FLOAT,
    }
    int8 = {
        t.name: list(t.dims)
        for t in model.graph.initializer
        if t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
        and len(t.dims) == 2
        and vocab in t.dims
    }
    assert len(int8) == 2, int8  # the embedding (Gather) and the projection (D x V), separately
    variant = load_manifest(tiny_export).data["variants"]["onnx-int8"]
    assert variant["quantization"]["folded_weight_transposes"] is True
    assert variant["quantization"]["float32_position_tables"] is True


def test_int8_weights_use_seven_bits(tiny_export: Path) -> None:
    """reduce_range: every int8 MatMul weight lies in [-64, 64], so x86 CPUs without VNNI (whose
    u8 x s8 multiply-add saturates int16 on full 8-bit weights) compute the same products as VNNI
    ones. With full-range weights an AVX2 host lost 4.8 BLEU on the Multi30k model's en-fr."""
    from onnx import numpy_helper

    for name in ("encoder.int8.onnx", "decoder.int8.onnx", "decoder.grow.int8.onnx"):
        graph = onnx.load(str(tiny_export / name)).graph
        weights = [numpy_helper.to_array(t) for t in graph.initializer
                   if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2]  # fmt: skip
        assert len(weights) >= 10, (name, len(weights))
        assert all(int(w.min()) >= -64 and int(w.max()) <= 64 for w in weights), name
    variant = load_manifest(tiny_export).data["variants"]["onnx-int8"]
    assert variant["quantization"]["reduce_range"] is True


def test_folding_weight_transposes_is_exact(tiny_export: Path, tmp_path: Path) -> None:
    """The fp32 decoder with its transposes folded gives bit-identical logits."""
    import onnxruntime as ort

    from export.onnx import fold_weight_transposes
    from runtime.onnx_backend import session_options

    model = onnx.load(str(tiny_export / "decoder.onnx"))
    assert fold_weight_transposes(model) != []
    assert "Transpose" not in {
        n.op_type for n in model.graph.node if n.input and n.input[0] == "model.embed.weight"
    }
    assert fold_weight_transposes(model) == []  # nothing left to fold
    onnx.save(model, str(tmp_path / "folded.onnx"))
    feeds = {
        i.name: np.zeros(
            [d.dim_value or 2 for d in i.type.tensor_type.shape.dim],
            dtype=onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type),
        )
        for i in model.graph.input
    }
    rng = np.random.default_rng(0)
    feeds["tokens"][:] = rng.integers(4, 100, feeds["tokens"].shape)
    feeds["src_mask"][:] = True
    for name in ("cross_k", "cross_v", "self_k", "self_v"):
        feeds[name] = rng.standard_normal(feeds[name].shape).astype(np.float32)
    outputs = [
        ort.InferenceSession(str(path), session_options(1)).run(None, feeds)
        for path in (tiny_export / "decoder.onnx", tmp_path / "folded.onnx")
    ]
    for before, after in zip(*outputs, strict=True):
        np.testing.assert_array_equal(before, after)


def test_tiny_parity_passed(tiny_export: Path) -> None:
    report = json.loads((tiny_export / "parity.json").read_text())
    assert report["passed"] is True
    checks = {c["name"]: c for c in report["variants"]["onnx-fp32"]["checks"]}
    for name in (
        "encoder max abs diff (random)",
        "decoder logits max abs diff (random)",
        "encoder max abs diff (real)",
        "decoder logits max abs diff (real)",
    ):
        assert checks[name]["gated"] and checks[name]["value"] <= 1e-4, name
    assert checks["greedy sentences identical to eager"]["value"] == 1.0
    # The growing-cache decoder passes the same exact gate.
    grow = {c["name"]: c for c in report["variants"]["onnx-fp32:grow"]["checks"]}
    assert {n: (c["gated"], c["ok"]) for n, c in grow.items() if c["gated"]} == {
        n: (True, True) for n, c in checks.items() if c["gated"]
    }
    assert grow["greedy sentences identical to eager"]["value"] == 1.0
    int8 = {c["name"]: c for c in report["variants"]["onnx-int8"]["checks"]}
    assert not any(c["gated"] for c in int8.values())  # untrained: reported only


def test_tiny_int8_graphs_run_with_dynamic_batch_and_length(tiny_export: Path) -> None:
    manifest = load_manifest(tiny_export)
    backends = [
        OnnxBackend(manifest, precision, threads=1, cache=cache)
        for precision in ("fp32", "int8")
        for cache in ("static", "grow")
    ]
    for batch, length in ((1, 5), (3, 32)):
        ids = np.random.default_rng(batch).integers(4, 150, (batch, length)).astype(np.int64)
        mask = np.ones((batch, length), dtype=np.bool_)
        for backend in backends:
            memory = backend.encode(ids, mask)
            assert memory.cross_k.shape == (3, batch, 2, length, 48)
            logits, cache = backend.decode_step(
                np.ones(batch, np.int64), 0, memory, backend.init_cache(batch)
            )
            assert logits.shape == (batch, 24000) and np.isfinite(logits).all()
            if backend.cache == "static":  # (L, b, h_kv, T, d) K and V
                assert [a.shape for a in cache] == [(3, batch, 2, 32, 48)] * 2
            else:  # K then V of each layer, (1, b, h_kv, t, d), 1 position fed
                assert [a.shape for a in cache] == [(1, batch, 2, 1, 48)] * 6


def test_parity_cli_rebuilds_an_untrained_export_from_its_seed(tiny_export: Path) -> None:
    with one_torch_thread():
        assert export.parity.main(["--artifacts", str(tiny_export)]) == 0


def test_translate_cli_int8(tiny_export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--artifacts", str(tiny_export), "--src", "en", "--tgt", "de", "--int8"]
    assert translate_main([*args, "A man.", "A dog sees a cat."]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


# ---------------------------------------------------------------------- checkpoint exports


def test_checkpoint_export(toy_export: tuple[Path, Path], toy_corpus_dir: Path) -> None:
    out, checkpoint = toy_export
    manifest = load_manifest(out)
    assert manifest.data["trained"] is True and manifest.data["source"] == str(checkpoint)
    assert ModelConfig.from_dict(manifest.model) == ModelConfig(**TOY_CONFIG)
    assert set(manifest.variants) == {"onnx-fp32"}
    report = json.loads((out / "parity.json").read_text())["variants"]["onnx-fp32"]
    assert report["passed"]
    greedy = {c["name"]: c for c in report["checks"]}["greedy sentences identical to eager"]
    # 24 built-in sample sentences plus 16 lines of --data's test set in each of the toy
    # checkpoint's 6 directions (it records no training pairs: every pair of en, de, fr).
    assert greedy["detail"] == "120/120 sentences"


def _toy_sources(tokenizer_dir: Path) -> list[TokenIds]:
    tokenizer = Tokenizer.from_pretrained(tokenizer_dir)
    texts = sample_texts()["en"][:6]
    return [tokenizer.encode_source(t, "de") for t in texts]


def test_grow_decoder_gives_the_static_decoders_tokens(toy_export: tuple[Path, Path]) -> None:
    """Greedy and beam search over the growing-cache graph give the static graph's tokens."""
    manifest = load_manifest(toy_export[0])
    static = OnnxBackend(manifest, "fp32", threads=1, cache="static")
    grow = OnnxBackend(manifest, "fp32", threads=1)
    assert (static.cache, grow.cache) == ("static", "grow")  # auto picks the growing cache
    sources = _toy_sources(toy_export[0])
    for beams in (1, 4):
        config = SearchConfig(num_beams=beams, max_length=12)
        outputs = [
            decode_batch(
                backend, sources, bos_id=BOS_ID, eos_id=EOS_ID, pad_id=PAD_ID, config=config
            )
            for backend in (static, grow)
        ]
        assert outputs[0] == outputs[1], beams
        assert any(outputs[0]), beams


def test_python_follows_the_growing_cache_rule(toy_export: tuple[Path, Path]) -> None:
    """The cache starts with 0 positions, grows by one per step, and must hold exactly ``pos``
    positions: any other cache is refused, naming both numbers."""
    backend = OnnxBackend(load_manifest(toy_export[0]), "fp32", threads=1, cache="grow")
    ids, mask = np.array([[5, 9, 11, 2], [7, 8, 2, 0]]), np.array([[1, 1, 1, 1], [1, 1, 1, 0]])
    memory = backend.encode(ids, mask.astype(np.bool_))
    cache = backend.init_cache(2)
    # One one-layer stack per layer, K then V: (1, b, h_kv, t, d).
    assert [a.shape for a in cache] == [(1, 2, 2, 0, 16)] * 4
    tokens = np.ones(2, np.int64)
    for pos in range(3):
        logits, cache = backend.decode_step(tokens, pos, memory, cache)
        assert [a.shape for a in cache] == [(1, 2, 2, pos + 1, 16)] * 4
        tokens = logits.argmax(axis=-1).astype(np.int64)
    with pytest.raises(SearchError, match="holds 3 positions but the step is at pos 5"):
        backend.decode_step(tokens, 5, memory, cache)
    with pytest.raises(SearchError, match=r"holds 2 arrays, expected 4 \(K then V of every"):
        backend.decode_step(tokens, 3, memory, cache[:2])


def test_manifest_records_and_hashes_the_grow_decoder(toy_copy_onnx: Path) -> None:
    manifest = load_manifest(toy_copy_onnx)
    files = manifest.data["variants"]["onnx-fp32"]["files"]
    assert files[GROW_DECODER] == "decoder.grow.onnx"
    assert set(manifest.data["files"]["decoder.grow.onnx"]) == {"sha256", "bytes"}
    graph = toy_copy_onnx / "decoder.grow.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0x01
    graph.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"'decoder\.grow\.onnx' does not match its sha256"):
        load_manifest(toy_copy_onnx)


def test_an_export_without_the_grow_decoder_still_loads(toy_copy_onnx: Path) -> None:
    """An artifact folder from before the growing-cache decoder: auto decodes with the static
    one; forcing the growing one is a clear error."""
    path = toy_copy_onnx / "manifest.json"
    data = json.loads(path.read_text())
    del data["variants"]["onnx-fp32"]["files"][GROW_DECODER]
    del data["variants"]["onnx-fp32"]["signatures"][GROW_DECODER]
    del data["files"]["decoder.grow.onnx"]
    (toy_copy_onnx / "decoder.grow.onnx").unlink()
    path.write_text(json.dumps(data))
    manifest = load_manifest(toy_copy_onnx)
    backend = create_backend(manifest, "onnxruntime", "fp32", 1)
    assert isinstance(backend, OnnxBackend) and backend.cache == "static"
    translator = Translator.from_manifest(manifest, "onnxruntime", "fp32", threads=1)
    assert translator.translate(["A man."], "en", "de")
    with pytest.raises(ArtifactError, match=r"growing-cache decoder is missing \('decoder_grow'"):
        create_backend(manifest, "onnxruntime", "fp32", 1, cache="grow")
    args = ["--artifacts", str(toy_copy_onnx), "--src", "en", "--tgt", "de", "A man."]
    assert translate_main([*args, "--onnx-cache", "grow"]) == 2


def test_a_grow_decoder_with_stacked_inputs_is_not_used(
    toy_copy_onnx: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An export from before the per-layer growing decoder (its manifest signature names stacked
    ``cross_k``, ``past_k``, ...): auto decodes with the static decoder; forcing the growing one
    is a clear error that says to re-export."""
    path = toy_copy_onnx / "manifest.json"
    data = json.loads(path.read_text())
    signature = data["variants"]["onnx-fp32"]["signatures"][GROW_DECODER]
    stacked = [2, "batch", 2, "past_len", 16]  # (L, b, h_kv, t, d)
    signature["inputs"] = signature["inputs"][:2] + [
        {"name": name, "dtype": "float32", "shape": stacked}
        for name in ("cross_k", "cross_v", "past_k", "past_v")
    ]
    path.write_text(json.dumps(data))
    manifest = load_manifest(toy_copy_onnx)
    with caplog.at_level(logging.WARNING, logger="runtime.onnx_backend"):
        backend = create_backend(manifest, "onnxruntime", "fp32", 1)
    assert isinstance(backend, OnnxBackend) and backend.cache == "static"
    assert "'onnx-fp32': its growing-cache decoder takes stacked" in caplog.text
    assert "re-export the folder" in caplog.text
    with pytest.raises(
        ArtifactError, match=r"takes stacked \(L, b, \.\.\.\) cross K/V .* re-export"
    ):
        create_backend(manifest, "onnxruntime", "fp32", 1, cache="grow")


def test_cache_is_refused_for_backends_without_one(toy_copy_onnx: Path) -> None:
    manifest = load_manifest(toy_copy_onnx)
    with pytest.raises(ArtifactError, match="ONNX cache 'paged' is not one of"):
        create_backend(manifest, "onnxruntime", "fp32", 1, cache="paged")
    with pytest.raises(ValueError, match="backend 'ctranslate2' has none"):
        create_backend(manifest, "ctranslate2", "int8", 1, cache="grow")


@pytest.fixture
def toy_copy_onnx(toy_export: tuple[Path, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(toy_export[0], tmp_path / "artifacts"))


def load_script(name: str) -> Any:
    """``scripts/NAME.py`` as a module (the folder is not a package)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_artifact_scores_match_the_eager_scores_line_for_line(
    toy_export: tuple[Path, Path], toy_corpus_dir: Path, tmp_path: Path
) -> None:
    """``scripts/evaluate_artifacts.py`` on the fp32 export scores what ``lingolite.evaluate``
    scores on its checkpoint (same sources, search and metrics); ``--out`` appends."""
    artifacts, checkpoint = toy_export
    out = tmp_path / "scores.json"
    args = [
        "--artifacts", str(artifacts), "--precision", "fp32", "--data", str(toy_corpus_dir),
        "--split", "test_2016_flickr", "--pairs", "en-de,fr-en", "--beams", "1,2",
        "--max-sentences", "12", "--threads", "1", "--out", str(out),
    ]  # fmt: skip
    script = load_script("evaluate_artifacts")
    assert script.main(args) == 0
    eager = evaluate(
        checkpoint, toy_corpus_dir, pairs="en-de,fr-en", beams=(1, 2), max_sentences=12
    )
    runtime = json.loads(out.read_text())
    assert (
        [(r["direction"], r["beams"], r["sentences"]) for r in runtime]
        == [(e.direction, e.num_beams, e.sentences) for e in eager]
        == [("en-de", 1, 12), ("en-de", 2, 12), ("fr-en", 1, 12), ("fr-en", 2, 12)]
    )
    for r, e in zip(runtime, eager, strict=True):
        assert (r["bleu"], r["bleu_lc"], r["chrf"]) == (
            round(e.bleu, 2),
            round(e.bleu_lc, 2),
            round(e.chrf, 2),
        ), r
    assert any(r["chrf"] > 0 for r in runtime)
    assert script.main(args) == 0
    again = json.loads(out.read_text())
    assert len(again) == 8 and [r["chrf"] for r in again[4:]] == [r["chrf"] for r in runtime]


def test_toy_model_output_depends_on_the_source(
    toy_export: tuple[Path, Path], toy_tokenizer: Tokenizer
) -> None:
    """Guards the parity tests above: identical tokens must not be trivially identical."""
    model = load_pretrained(toy_export[1])
    sources = [
        toy_tokenizer.encode_source(t, "de")
        for t, _ in parity_sentences([("de", "en"), ("en", "de")], 6)
    ]
    outputs = translate_ids(model, sources, SearchConfig(max_length=24))
    assert len({tuple(o) for o in outputs}) >= 3


def test_parity_cli_on_a_checkpoint_export(
    toy_export: tuple[Path, Path], toy_corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, checkpoint = toy_export
    assert export.parity.main(["--artifacts", str(out)]) == 2
    assert "pass --checkpoint DIR" in capsys.readouterr().err
    args = ["--artifacts", str(out), "--checkpoint", str(checkpoint), "--data", str(toy_corpus_dir)]
    with one_torch_thread():
        assert export.parity.main(args) == 0
    assert "parity onnx-fp32 [exact (fp32)]: PASSED" in capsys.readouterr().out


def test_failed_parity_leaves_no_finished_folder(
    toy_export: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    shutil.copytree(toy_export[0], out)  # a finished export that --force would replace
    before = sorted(p.name for p in out.iterdir())
    monkeypatch.setattr(export.parity, "FP32_ATOL", -1.0)
    args = ["--checkpoint", str(toy_export[1]), "--out", str(out), "--quantize", "none", "--force"]
    with one_torch_thread():
        assert main(args) == 1
    assert sorted(p.name for p in out.iterdir()) == before  # the old export is untouched
    load_manifest(out)
    failed = tmp_path / "out.failed"
    assert not (failed / "manifest.json").exists()
    assert json.loads((failed / "parity.json").read_text())["passed"] is False
    with pytest.raises(ArtifactError, match=r"manifest\.json is missing"):
        load_manifest(failed)
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_int8_only_export(
    toy_export: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The toy model is random, so its int8 agreement is far from a trained model's.
    monkeypatch.setattr(export.parity, "QUANTIZED_MIN_IDENTICAL", 0.0)
    options = ExportOptions(out=tmp_path / "int8", checkpoint=toy_export[1])
    with one_torch_thread():
        out = export_onnx(options, quantize="int8")
    manifest = load_manifest(out)
    assert set(manifest.variants) == {"onnx-int8"}
    assert sorted(p.name for p in out.glob("*.onnx")) == [
        "decoder.grow.int8.onnx",
        "decoder.int8.onnx",
        "encoder.int8.onnx",
    ]
    config = ModelConfig(**TOY_CONFIG)
    assert manifest.variants["onnx-int8"].signatures == exported_signatures(config)
    # parity.json also proves the fp32 graphs the int8 ones were made from.
    assert set(json.loads((out / "parity.json").read_text())["variants"]) == {
        "onnx-fp32",
        "onnx-fp32:grow",
        "onnx-int8",
        "onnx-int8:grow",
    }


def test_int4_only_export(
    toy_export: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--quantize int4: block-wise 4-bit MatMul and embedding weights, recorded in the manifest,
    through the same parity gate (the toy model is random: its agreement gates nothing)."""
    monkeypatch.setattr(export.parity, "QUANTIZED_MIN_IDENTICAL", 0.0)
    options = ExportOptions(out=tmp_path / "int4", checkpoint=toy_export[1])
    with one_torch_thread():
        out = export_onnx(options, quantize="int4")
    manifest = load_manifest(out)
    assert set(manifest.variants) == {"onnx-int4"}
    variant = manifest.data["variants"]["onnx-int4"]
    assert variant["files"] == {
        "encoder": "encoder.int4.onnx",
        "decoder": "decoder.int4.onnx",
        GROW_DECODER: "decoder.grow.int4.onnx",
    }
    assert variant["quantization"]["bits"] == 4 and variant["quantization"]["block_size"] == 32
    assert set(variant["files"].values()) <= set(manifest.data["files"])  # hashed
    for name in variant["files"].values():
        ops = {node.op_type for node in onnx.load(str(out / name)).graph.node}
        assert "MatMulNBits" in ops and "GatherBlockQuantized" in ops, name
    parity = json.loads((out / "parity.json").read_text())["variants"]
    assert set(parity) == {"onnx-fp32", "onnx-fp32:grow", "onnx-int4", "onnx-int4:grow"}
    backend = OnnxBackend(manifest, "int4", threads=1)
    assert backend.cache == "grow"
    ids, mask = np.array([[5, 9, 11, 2]]), np.ones((1, 4), dtype=np.bool_)
    logits, _ = backend.decode_step(
        np.ones(1, np.int64), 0, backend.encode(ids, mask), backend.init_cache(1)
    )
    assert np.isfinite(logits).all()


def test_refuses_a_non_empty_out_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["--size", "tiny", "--out", str(out)]) == 2
    assert "is not empty; pass --force" in caplog.text
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_options_report_every_problem(tmp_path: Path) -> None:
    options = ExportOptions(
        out=tmp_path / "o",
        checkpoint=tmp_path,
        tokenizer=tmp_path,
        max_tgt_len=1,
        data=tmp_path / "nope",
    )
    with pytest.raises(ExportError) as info:
        options.check()
    message = str(info.value)
    for part in (
        "not a checkpoint folder",
        "--tokenizer is only for untrained exports",
        "--max-tgt-len must be >= 2, got 1",
        "--data",
        "nope",
    ):
        assert part in message
    with pytest.raises(ExportError, match="give --size"):
        ExportOptions(out=tmp_path / "o").check()


def test_size_must_match_the_checkpoint(toy_export: tuple[Path, Path], tmp_path: Path) -> None:
    options = ExportOptions(out=tmp_path / "o", size="tiny", checkpoint=toy_export[1])
    with pytest.raises(ExportError, match="--size tiny has d_model=192 but the checkpoint has 64"):
        export_onnx(options)
    assert not (tmp_path / "o").exists()


def test_default_out_folder_names() -> None:
    parser = argparse.ArgumentParser()
    add_common_arguments(parser, "onnx")

    def out(*args: str) -> Path:
        return ExportOptions.from_args(parser.parse_args(list(args)), "onnx").out

    assert out("--size", "small") == Path("artifacts/small-onnx")
    checkpoint = "pretrained/lingolite-tiny-multi30k"
    assert out("--checkpoint", checkpoint) == Path("artifacts/lingolite-tiny-multi30k-onnx")
    assert out("--size", "tiny", "--out", "x") == Path("x")


def test_builtin_sample_is_deterministic() -> None:
    texts = sample_texts()
    assert sorted(texts) == ["cs", "de", "en", "fr"]
    assert all(len(v) == 256 for v in texts.values())
    assert texts == sample_texts()
    assert builtin_tokenizer().model_proto == builtin_tokenizer().model_proto


# ---------------------------------------------------------------------- the parity gates


class NoisyBackend(EagerBackend):
    """Eager plus uniform noise on the logits (a stand-in for a quantized program)."""

    def __init__(self, model: LingoLite, noise: float) -> None:
        super().__init__(model)
        self.noise = noise
        self.rng = np.random.default_rng(0)

    def decode_step(
        self, tokens: Any, pos: int, memory: Memory, cache: Cache
    ) -> tuple[FloatArray, Cache]:
        logits, cache = super().decode_step(tokens, pos, memory, cache)
        noise = self.rng.uniform(-self.noise, self.noise, logits.shape).astype(np.float32)
        return logits + noise, cache


@pytest.fixture(scope="module")
def toy_model(toy_export: tuple[Path, Path]) -> LingoLite:
    return load_pretrained(toy_export[1])


def test_exact_gate_fails_on_small_logit_differences(
    toy_model: LingoLite, toy_tokenizer: Tokenizer
) -> None:
    sentences = parity_sentences(TOY_DIRECTIONS, 4)
    report = check_parity(
        toy_model, toy_tokenizer, NoisyBackend(toy_model, 1e-3), sentences, exact=True, trained=True
    )
    assert not report.passed
    assert any("decoder logits max abs diff (random)" in f for f in report.failures())
    assert "FAILED" in report.summary()


def test_quantized_gates(toy_model: LingoLite, toy_tokenizer: Tokenizer) -> None:
    sentences = parity_sentences(TOY_DIRECTIONS, 8)
    noisy = NoisyBackend(toy_model, 50.0)  # changes most greedy outputs
    untrained = check_parity(toy_model, toy_tokenizer, noisy, sentences, exact=False, trained=False)
    assert untrained.passed and not any(c.gated for c in untrained.checks)
    trained = check_parity(
        toy_model,
        toy_tokenizer,
        NoisyBackend(toy_model, 50.0),
        sentences,
        exact=False,
        trained=True,
    )
    assert not trained.passed
    assert trained.failures()[0].startswith("FAIL  greedy sentences identical to eager")
    assert trained.examples


def test_bleu_gate(toy_model: LingoLite, toy_tokenizer: Tokenizer) -> None:
    sentences = parity_sentences(TOY_DIRECTIONS, 4)
    texts = sample_texts()
    bleu = BleuSet("sample en-de", "en", "de", texts["en"][:6], texts["de"][:6])
    same = check_parity(
        toy_model,
        toy_tokenizer,
        EagerBackend(toy_model),
        sentences,
        exact=False,
        trained=True,
        bleu_sets=[bleu],
    )
    check = next(c for c in same.checks if c.name == "BLEU drop on sample en-de")
    pooled = next(c for c in same.checks if c.name == "BLEU drop pooled over 1 test set(s)")
    assert same.passed and not check.gated and pooled.gated and pooled.value == check.value == 0.0


def test_bleu_gate_fails_on_a_backend_that_translates_worse(
    toy_model: LingoLite, toy_tokenizer: Tokenizer
) -> None:
    texts = sample_texts()
    sources = {lang: texts[lang][:6] for lang in ("en", "fr")}
    eager = Translator(toy_tokenizer, EagerBackend(toy_model), max_src_len=32)
    # References equal to eager's own output: eager scores 100, a worse backend less.
    sets = [
        BleuSet(f"self {src}-de", src, "de", sources[src], eager.translate(sources[src], src, "de"))
        for src in ("en", "fr")
    ]
    report = check_parity(
        toy_model, toy_tokenizer, NoisyBackend(toy_model, 50.0), parity_sentences(TOY_DIRECTIONS, 4),
        exact=False, trained=True, bleu_sets=sets,
    )  # fmt: skip
    pooled = next(c for c in report.checks if c.name == "BLEU drop pooled over 2 test set(s)")
    per_set = [c for c in report.checks if c.name.startswith("BLEU drop on self")]
    assert pooled.gated and not pooled.ok and pooled.value > 1.0
    assert len(per_set) == 2 and not any(c.gated for c in per_set)
    assert any("BLEU drop pooled" in f for f in report.failures())


def test_bleu_sets_follow_the_directions(toy_corpus_dir: Path) -> None:
    sets = load_bleu_sets(toy_corpus_dir, [("en", "cs"), ("fr", "en")], max_sentences=5)
    assert [(s.name, s.src, s.tgt, len(s.sources)) for s in sets] == [
        ("test_2016_flickr fr-en", "fr", "en", 5)
    ]
    assert sets[0].references == read_lines(toy_corpus_dir / "test_2016_flickr.en")[:5]
    with pytest.raises(
        DataError, match=r"no 'val' test set for any of the directions en-cs, cs-en"
    ):
        load_bleu_sets(toy_corpus_dir, [("en", "cs"), ("cs", "en")], split="val")


def test_export_of_a_model_without_english_or_german(tmp_path: Path, toy_corpus_dir: Path) -> None:
    """Directions, parity sentences and test sets come from the model and --data, not en-de."""
    data = tmp_path / "data"
    data.mkdir()
    # French, and English and German relabelled as Spanish and Italian
    for split in ("train", "test_2016_flickr"):
        for old, new in (("fr", "fr"), ("en", "es"), ("de", "it")):
            shutil.copy(toy_corpus_dir / f"{split}.{old}", data / f"{split}.{new}")
    tokenizer = Tokenizer.train(
        {lang: read_lines(data / f"train.{lang}") for lang in ("es", "fr", "it")},
        vocab_size=TOY_VOCAB_SIZE,
    )
    checkpoint = write_toy_checkpoint(tmp_path / "ckpt", tokenizer.save(tmp_path / "tok"))
    out = export_onnx(
        ExportOptions(out=tmp_path / "onnx", checkpoint=checkpoint, data=data), "none"
    )
    manifest = load_manifest(out)
    assert sorted(manifest.directions) == ["es-fr", "es-it", "fr-es", "fr-it", "it-es", "it-fr"]
    parity = json.loads((out / "parity.json").read_text())
    assert parity["passed"]
    # 24 sample sentences + 16 lines of each of the 6 directions' test sets, identical to eager,
    # through the static and the growing-cache decoder
    greedy = {
        name: c["detail"] for name, r in parity["variants"].items() for c in r["checks"]
        if c["name"] == "greedy sentences identical to eager"
    }  # fmt: skip
    assert greedy == {"onnx-fp32": "120/120 sentences", "onnx-fp32:grow": "120/120 sentences"}
    translator = Translator.from_artifacts(out)
    assert (
        translator.translate(["un homme"], "fr", "es")[0]
        == Translator(
            tokenizer, EagerBackend(load_pretrained(checkpoint)), max_src_len=32
        ).translate(["un homme"], "fr", "es")[0]
    )
    with pytest.raises(ValueError, match="unknown target language 'de'"):
        translator.translate(["un homme"], "fr", "de")
