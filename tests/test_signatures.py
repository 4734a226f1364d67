"""lingolite.signatures: the one definition of the programs' I/O and of the cache geometry.

Here: the definition's internal consistency and that every consumer reads it. That it matches
the real exported programs is tested where they are built: tests/test_onnx_export.py (the ONNX
graphs' names, dtypes and shapes) and tests/test_executorch.py (the lowered methods).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from lingolite.config import ConfigError, ModelConfig
from lingolite.search import SearchError, check_source, zero_cache
from lingolite.signatures import (
    BATCH,
    DECODER_INPUTS,
    DECODER_OUTPUTS,
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    GROW_DECODER_INPUTS,
    GROW_DECODER_OUTPUTS,
    GROW_LAYER_INPUTS,
    GROW_LAYER_OUTPUTS,
    PAST_LEN,
    PRESENT_LEN,
    SRC_LEN,
    STATIC_BATCH,
    CacheGeometry,
    executorch_signatures,
    grow_decoder_names,
    grow_decoder_signature,
    onnx_signatures,
)
from lingolite.tokenizer import Tokenizer
from runtime.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ModelConfig.from_name("small", vocab_size=1000, max_src_len=40, max_tgt_len=24)


def _names(signature: dict[str, list[dict[str, object]]], kind: str) -> tuple[object, ...]:
    return tuple(spec["name"] for spec in signature[kind])


def test_cache_geometry_is_derived_from_the_config() -> None:
    geometry = CacheGeometry.of(CONFIG)
    assert geometry == CacheGeometry.of(CONFIG.to_dict())  # a manifest's model dict
    assert geometry.head_dim == CONFIG.d_model // CONFIG.n_heads == 64
    assert geometry.self_shape(3) == (6, 3, 4, 24, 64)
    assert geometry.cross_shape(BATCH, SRC_LEN) == (6, BATCH, 4, SRC_LEN, 64)
    assert geometry.cache_bytes(2) == 2 * 4 * 6 * 2 * 4 * 24 * 64
    k, v = zero_cache(CONFIG.to_dict(), 3)
    assert k.shape == v.shape == geometry.self_shape(3) and k.dtype == np.float32
    assert not k.any()


def test_a_bad_model_dict_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="missing key 'n_kv_heads'"):
        CacheGeometry.of({k: v for k, v in CONFIG.to_dict().items() if k != "n_kv_heads"})


def test_onnx_signatures_are_dynamic_in_batch_and_source_length() -> None:
    sig = onnx_signatures(CONFIG)
    assert set(sig) == {"encoder", "decoder"}
    assert _names(sig["encoder"], "inputs") == ENCODER_INPUTS
    assert _names(sig["encoder"], "outputs") == ENCODER_OUTPUTS
    assert _names(sig["decoder"], "inputs") == DECODER_INPUTS
    assert _names(sig["decoder"], "outputs") == DECODER_OUTPUTS
    assert sig["encoder"]["inputs"][0] == {
        "name": "src_ids",
        "dtype": "int64",
        "shape": [BATCH, SRC_LEN],
    }
    assert sig["decoder"]["inputs"][5]["shape"] == [6, BATCH, 4, 24, 64]
    assert sig["decoder"]["outputs"][0] == {
        "name": "logits",
        "dtype": "float32",
        "shape": [BATCH, 1000],
    }
    # The cache goes out with the shape it came in with (the cache rule).
    assert [s["shape"] for s in sig["decoder"]["inputs"][-2:]] == [
        s["shape"] for s in sig["decoder"]["outputs"][1:]
    ]


def test_grow_decoder_signature_grows_each_layers_cache_by_one() -> None:
    sig = grow_decoder_signature(CONFIG)
    layers = [f"_{i}" for i in range(6)]
    assert _names(sig, "inputs") == grow_decoder_names(6)[0] == (
        "tokens", "src_mask", *(f"{n}{i}" for n in GROW_LAYER_INPUTS for i in layers)
    )  # fmt: skip
    assert _names(sig, "outputs") == grow_decoder_names(6)[1] == (
        "logits", *(f"{n}{i}" for n in GROW_LAYER_OUTPUTS for i in layers)
    )  # fmt: skip
    assert (
        GROW_LAYER_INPUTS == GROW_DECODER_INPUTS[2:] == ("cross_k", "cross_v", "past_k", "past_v")
    )
    assert GROW_LAYER_OUTPUTS == GROW_DECODER_OUTPUTS[1:] == ("present_k", "present_v")
    geometry = CacheGeometry.of(CONFIG)
    shapes = {s["name"]: s["shape"] for s in [*sig["inputs"], *sig["outputs"]]}
    assert (
        shapes["past_k_5"] == list(geometry.grow_shape(BATCH, PAST_LEN)) == [BATCH, 4, PAST_LEN, 64]
    )
    assert shapes["present_v_0"] == [BATCH, 4, PRESENT_LEN, 64]
    assert shapes["cross_v_3"] == [BATCH, 4, SRC_LEN, 64]
    # A layer's cross K/V is the static decoder's stacked one without the layer axis.
    static = {s["name"]: s for s in onnx_signatures(CONFIG)["decoder"]["inputs"]}
    assert shapes["cross_k_0"] == static["cross_k"]["shape"][1:]
    for spec in sig["inputs"][:2]:
        assert spec == static[spec["name"]]


@pytest.mark.parametrize("mask_dtype", ["bool", "int64"])
def test_executorch_signatures_are_the_onnx_ones_at_static_shapes(mask_dtype: str) -> None:
    dynamic = onnx_signatures(CONFIG)
    static = executorch_signatures(CONFIG, mask_dtype)
    assert set(static) == {"encode", "decode_step"}
    sizes = {BATCH: STATIC_BATCH, SRC_LEN: CONFIG.max_src_len}
    for method, program in (("encode", "encoder"), ("decode_step", "decoder")):
        for kind in ("inputs", "outputs"):
            for want, got in zip(dynamic[program][kind], static[method][kind], strict=True):
                assert got["name"] == want["name"]
                assert got["shape"] == [sizes.get(d, d) for d in want["shape"]]
                is_mask = want["name"] == "src_mask"
                assert got["dtype"] == (mask_dtype if is_mask else want["dtype"])


def test_an_unknown_mask_dtype_is_refused() -> None:
    with pytest.raises(ValueError, match="src_mask dtype 'float32' is not one of"):
        executorch_signatures(CONFIG, "float32")


def test_check_source_names_the_bad_shape() -> None:
    ids, mask = np.ones((2, 5), np.int64), np.ones((2, 5), np.bool_)
    check_source(ids, mask, 5)
    with pytest.raises(SearchError, match=r"got \(2, 5\) and \(2, 4\)"):
        check_source(ids, mask[:, :4], 5)
    with pytest.raises(SearchError, match=r"source length 5 exceeds the model's max_src_len \(4\)"):
        check_source(ids, mask, 4)


def _goldens_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_android_goldens", ROOT / "scripts/make_android_goldens.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_android_golden_artifact_uses_the_definition(
    toy_tokenizer: Tokenizer, tmp_path: Path
) -> None:
    """The golden generator's manifest once named decode_step's outputs ``self_k``/``self_v``
    while the exporter wrote ``new_self_k``/``new_self_v``; both now read the definition."""
    folder = _goldens_script().artifact_folder(toy_tokenizer, tmp_path)
    manifest = load_manifest(folder)
    signatures = manifest.variants["executorch-8da8w"].signatures
    assert signatures == executorch_signatures(manifest.model)
    assert _names(signatures["decode_step"], "outputs") == DECODER_OUTPUTS
