"""CTranslate2 export on the shared plumbing, its parity gate, and serving it (CLI and server)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

import export.ctranslate2 as ct2_export
from export.common import ExportError, ExportOptions, ParityError
from export.ctranslate2 import build_spec, export_ctranslate2, main, model_dir
from lingolite.checkpoint import load_pretrained, save_pretrained
from lingolite.config import ModelConfig
from lingolite.data import read_lines
from lingolite.generate import translate_ids
from lingolite.model import LingoLite
from lingolite.search import SearchConfig, SearchError, TokenIds
from lingolite.tokenizer import Tokenizer
from lingolite.utils import set_seed
from runtime.ctranslate2_backend import FILES, CT2Backend
from runtime.manifest import ArtifactError, load_manifest, write_manifest
from runtime.server import ServerSettings, create_app, load_translator
from runtime.translate import main as translate_main
from runtime.translator import Translator
from tests.helpers import token_ids

MAX_TGT_LEN = 24
THREADS = 1  # CPU cores are shared with other test runs
TEXTS = ["a man rides a bike", "two dogs see a red ball", "a girl throws a ball"]


def spread(model: LingoLite, seed: int = 0) -> LingoLite:
    """Seeded random weights under which greedy search does something worth comparing.

    A freshly initialised LingoLite (linears with std 0.02, tied embeddings) echoes its input, so
    every translation is ``<s> <s> ...`` and even a wrong mapping would pass. Linears with std 0.3,
    norm gains around 1 and a 3x longer EOS embedding give translations of many lengths over
    many distinct tokens.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim == 2 and name != "embed.weight":
                param.copy_(torch.randn(param.shape, generator=gen) * 0.3)
            elif param.ndim == 1:
                param.copy_(1 + 0.1 * torch.randn(param.shape, generator=gen))
        model.embed.weight[model.config.eos_id] *= 3
    return model.eval()


def small_config(**overrides: Any) -> ModelConfig:
    values: dict[str, Any] = dict(
        vocab_size=128, d_model=32, n_heads=4, n_kv_heads=2, n_encoder_layers=2,
        n_decoder_layers=2, ffn_dim=64, max_src_len=64, max_tgt_len=MAX_TGT_LEN, dropout=0.0,
    )  # fmt: skip
    values.update(overrides)
    return ModelConfig(**values)


def make_checkpoint(folder: Path, config: ModelConfig, tokenizer: Tokenizer) -> Path:
    set_seed(0)
    save_pretrained(spread(LingoLite(config)), folder)
    tokenizer.save(folder)
    return folder


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory: pytest.TempPathFactory, toy_tokenizer: Tokenizer) -> Path:
    assert toy_tokenizer.vocab_size == 128
    return make_checkpoint(tmp_path_factory.mktemp("ct2") / "small", small_config(), toy_tokenizer)


@pytest.fixture(scope="module")
def small_ct2(tmp_path_factory: pytest.TempPathFactory, small_checkpoint: Path) -> Path:
    """The float32 export of the spread checkpoint, through the shared exporter plumbing."""
    out = tmp_path_factory.mktemp("ct2") / "small-ct2"
    return export_ctranslate2(ExportOptions(out=out, checkpoint=small_checkpoint), quantize="none")


@pytest.fixture(scope="module")
def sources(toy_tokenizer: Tokenizer, toy_corpus_dir: Path) -> list[TokenIds]:
    """30 toy test sentences, 10 per direction en-de, de-fr, fr-en."""
    out = []
    for src, tgt in (("en", "de"), ("de", "fr"), ("fr", "en")):
        texts = read_lines(toy_corpus_dir / f"test_2016_flickr.{src}")[:10]
        out += [toy_tokenizer.encode_source(text, tgt) for text in texts]
    return out


def eager_text(checkpoint: Path, texts: list[str], tgt: str, config: SearchConfig) -> list[str]:
    model, tokenizer = load_pretrained(checkpoint), Tokenizer.from_pretrained(checkpoint)
    ids = translate_ids(model, [tokenizer.encode_source(t, tgt) for t in texts], config)
    return tokenizer.decode_batch(ids)


# ------------------------------------------------------------------------- export and parity


def test_export_is_an_artifact_folder_with_hashes_and_parity(small_ct2: Path) -> None:
    manifest = load_manifest(small_ct2)
    assert manifest.data["export"] == {
        "exporter": "export.ctranslate2",
        "seed": 0,
        "quantize": "none",
    }
    variant = manifest.variant("ctranslate2", "fp32")
    assert variant.files == {role: small_ct2 / "ct2-fp32" / name for role, name in FILES.items()}
    hashed = set(manifest.data["files"])
    assert {f"ct2-fp32/{name}" for name in FILES.values()} | {
        "parity.json",
        "tokenizer.json",
    } <= hashed
    parity = json.loads((small_ct2 / "parity.json").read_text())
    report = parity["variants"]["ctranslate2-fp32"]
    assert parity["passed"] and report["exact"]
    checks = {c["name"]: c for c in report["checks"]}
    # CTranslate2 has no single-step call: the shared gate compares whole greedy translations.
    assert not any("logits" in name for name in checks)
    identical = checks["greedy sentences identical to eager"]
    assert identical["gated"] and identical["value"] == 1.0 and identical["limit"] == 1.0


def test_float32_greedy_is_identical_to_eager(
    small_ct2: Path, small_checkpoint: Path, sources: list[TokenIds]
) -> None:
    backend = CT2Backend(load_manifest(small_ct2), "fp32", threads=THREADS)
    greedy = SearchConfig(max_length=MAX_TGT_LEN)
    eager = translate_ids(load_pretrained(small_checkpoint), sources, greedy)
    assert backend.translate_ids(sources, greedy) == eager
    # The comparison means something: translations of several lengths over many tokens.
    assert len({len(ids) for ids in eager}) >= 3
    assert len({t for ids in eager for t in ids}) > 10


def test_search_options_map_onto_ctranslate2(
    small_ct2: Path, small_checkpoint: Path, sources: list[TokenIds]
) -> None:
    backend = CT2Backend(load_manifest(small_ct2), "fp32", threads=THREADS)
    model = load_pretrained(small_checkpoint)
    short = SearchConfig(max_length=3)
    assert backend.translate_ids(sources, short) == translate_ids(model, sources, short)
    assert all(len(ids) <= 3 for ids in backend.translate_ids(sources, short))
    # Beams: CTranslate2 stops beam search by its own rule (our early_stopping=True).
    beam = SearchConfig(max_length=MAX_TGT_LEN, num_beams=4, early_stopping=True)
    got, want = backend.translate_ids(sources, beam), translate_ids(model, sources, beam)
    assert sum(g == w for g, w in zip(got, want, strict=True)) >= 0.75 * len(sources)
    sample = SearchConfig(max_length=8, do_sample=True, top_k=5, temperature=2.0)
    sampled = backend.translate_ids(sources, sample)
    assert sampled != translate_ids(model, sources, SearchConfig(max_length=8))
    assert all(len(ids) <= 8 and all(0 <= t < 128 for t in ids) for ids in sampled)
    with pytest.raises(SearchError, match="seed 3 cannot be honoured"):
        backend.translate_ids(sources, dataclasses.replace(sample, seed=3))
    with pytest.raises(SearchError) as info:
        backend.translate_ids([token_ids(5, *range(10, 80), 2), []], SearchConfig())
    assert "at least one token" in str(info.value) and "longer than max_src_len (64)" in str(
        info.value
    )
    with pytest.raises(SearchError, match=r"token ids \[500\] out of range \[0, 128\)"):
        backend.translate_ids([token_ids(5, 500, 2)], SearchConfig())
    with pytest.raises(SearchError, match=r"max_length must be in \[1, 24\], got 25"):
        backend.translate_ids(sources, SearchConfig(max_length=25))


@pytest.mark.parametrize(
    "sabotage", [{"rotary_interleave": False}, {"rotary_base": 500.0}], ids=["rotate-half", "base"]
)
def test_wrong_rotary_mapping_fails_the_gate(
    tmp_path: Path, small_checkpoint: Path, monkeypatch: pytest.MonkeyPatch,
    sabotage: dict[str, Any],
) -> None:  # fmt: skip
    """The shared gate is sharp: the other rotary layout or base is caught, nothing is published."""
    real = ct2_export._layer_options
    monkeypatch.setattr(ct2_export, "_layer_options", lambda c: {**real(c), **sabotage})
    out = tmp_path / "ct2"
    with pytest.raises(ParityError, match="greedy sentences identical to eager") as info:
        export_ctranslate2(ExportOptions(out=out, checkpoint=small_checkpoint), quantize="none")
    assert info.value.reports["ctranslate2-fp32"].examples
    kept = tmp_path / "ct2.failed"
    assert not out.exists() and (kept / "parity.json").is_file()
    assert not (kept / "manifest.json").exists()
    with pytest.raises(ArtifactError, match=r"manifest\.json is missing"):
        load_manifest(kept)


def test_untrained_int8_export_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--quantize int8`` builds the float32 model as parity's proof, then keeps only int8;
    the CLI translates with it (an untrained model's int8 agreement is reported, not gated)."""
    out = tmp_path / "tiny-ct2"
    lengths = ["--max-src-len", "16", "--max-tgt-len", "16"]
    assert main(["--size", "tiny", "--out", str(out), "--quantize", "int8", *lengths]) == 0
    manifest = load_manifest(out)
    assert set(manifest.variants) == {"ctranslate2-int8"}
    assert not (out / model_dir("fp32")).exists()
    parity = json.loads((out / "parity.json").read_text())["variants"]
    assert parity["ctranslate2-fp32"]["passed"] and not parity["ctranslate2-int8"]["trained"]
    assert main(["--size", "tiny", "--out", str(out), *lengths]) == 2  # not empty, no --force
    capsys.readouterr()
    args = ["--artifacts", str(out), "--backend", "ctranslate2", "--src", "en", "--tgt", "de"]
    assert translate_main([*args, "--int8", "--max-length", "5", *TEXTS]) == 0
    lines = capsys.readouterr().out.splitlines()
    want = Translator.from_artifacts(out, "ctranslate2", "int8").translate(
        TEXTS, "en", "de", max_length=5
    )
    assert lines == want and len(lines) == len(TEXTS)
    assert translate_main([*args, "--precision", "fp32", "x"]) == 2
    assert "has no ctranslate2 program in precision 'fp32'" in capsys.readouterr().err


def test_cli_translation_equals_eager(
    small_ct2: Path, small_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--artifacts", str(small_ct2), "--backend", "ctranslate2", "--src", "en", "--tgt"]
    assert translate_main([*args, "de", "--beams", "1", *TEXTS]) == 0
    want = eager_text(small_checkpoint, TEXTS, "de", SearchConfig())
    assert capsys.readouterr().out.splitlines() == want
    assert translate_main([*args, "fr", "--beams", "4", "--length-penalty", "0.6", *TEXTS]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(TEXTS)


def test_server_serves_ctranslate2(small_ct2: Path, small_checkpoint: Path) -> None:
    translator = load_translator(small_ct2, "fp32", THREADS, "ctranslate2")
    client = TestClient(create_app(translator, ServerSettings(rate_limit=None)))
    body = {"q": [*TEXTS, ""], "source": "en", "target": "de", "max_length": 10}
    response = client.post("/translate", json=body)
    assert response.status_code == 200, response.text
    want = eager_text(small_checkpoint, TEXTS, "de", SearchConfig(max_length=10))
    assert response.json()["translatedText"] == [*want, ""]
    assert response.json()["truncated"] == [False] * 4  # every sentence ended before 10 tokens
    beams = client.post("/translate", json={**body, "beam_size": 4})
    assert beams.status_code == 200 and len(beams.json()["translatedText"]) == 4
    too_long = client.post("/translate", json={**body, "max_length": MAX_TGT_LEN + 1})
    assert too_long.status_code == 400 and "max_length" in too_long.json()["error"]
    with pytest.raises(ValueError, match="backend 'executorch' is not one of"):
        load_translator(small_ct2, "fp32", THREADS, "executorch")


# ------------------------------------------------------------------------- refusals


def _copy(small_ct2: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(small_ct2, folder)
    return folder


def test_a_tampered_model_is_refused(small_ct2: Path, tmp_path: Path) -> None:
    folder = _copy(small_ct2, tmp_path)
    model = folder / "ct2-fp32" / "model.bin"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"'ct2-fp32/model\.bin' does not match its sha256"):
        Translator.from_artifacts(folder, "ctranslate2")
    assert translate_main(["--artifacts", str(folder), "--backend", "ctranslate2", "--src",
                           "en", "--tgt", "de", "a dog"]) == 2  # fmt: skip
    with pytest.raises(SystemExit):
        from runtime.server import main as server_main

        server_main(["--artifacts", str(folder), "--backend", "ctranslate2", "--port", "0"])


def test_an_unlisted_file_in_the_model_folder_is_refused(small_ct2: Path, tmp_path: Path) -> None:
    folder = _copy(small_ct2, tmp_path)
    (folder / "ct2-fp32" / "source_vocabulary.json").write_text('["a"]')
    with pytest.raises(
        ArtifactError, match=r"does not list for 'ctranslate2-fp32': \['source_vocabulary\.json'\]"
    ):
        Translator.from_artifacts(folder, "ctranslate2")


def test_a_vocabulary_out_of_id_order_is_refused(small_ct2: Path, tmp_path: Path) -> None:
    """Even with hashes that match (a manifest rewritten over the swapped vocabulary)."""
    folder = _copy(small_ct2, tmp_path)
    path = folder / "ct2-fp32" / FILES["vocabulary"]
    pieces = json.loads(path.read_text())
    pieces[40], pieces[41] = pieces[41], pieces[40]
    path.write_text(json.dumps(pieces))
    data = json.loads((folder / "manifest.json").read_text())
    write_manifest(folder, {k: v for k, v in data.items() if k != "files"})
    with pytest.raises(ArtifactError, match=r"disagrees with the tokenizer at ids \[40, 41\]"):
        Translator.from_artifacts(folder, "ctranslate2")


def test_every_unsupported_option_is_reported_at_once(
    tmp_path: Path, toy_tokenizer: Tokenizer
) -> None:
    checkpoint = tmp_path / "ckpt"
    save_pretrained(LingoLite(small_config(rope_base=10000.1)), checkpoint)
    toy_tokenizer.save(checkpoint)
    options = ExportOptions(out=tmp_path / "ct2", checkpoint=checkpoint, force=True)
    with pytest.raises(ExportError) as info:
        export_ctranslate2(options)
    assert "rope_base 10000.1 is not exactly representable in float32" in str(info.value)
    # --force never replaces a folder that is not an earlier export, such as the checkpoint.
    over = ExportOptions(out=checkpoint, checkpoint=checkpoint, force=True)
    with pytest.raises(ExportError, match="holds no earlier LingoLite export"):
        export_ctranslate2(over)
    assert (checkpoint / "model.safetensors").is_file() and not (tmp_path / "ct2").exists()
    with pytest.raises(ExportError, match="--quantize 'int16' is not one of"):
        export_ctranslate2(options, quantize="int16")


def test_int8_conversion_leaves_the_model_weights_alone(
    small_checkpoint: Path, toy_tokenizer: Tokenizer
) -> None:
    """ctranslate2 quantizes the spec's arrays in place; they must be copies of the weights."""
    model = load_pretrained(small_checkpoint)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    build_spec(model, toy_tokenizer).optimize(quantization="int8")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_spec_layout(small_checkpoint: Path, toy_tokenizer: Tokenizer) -> None:
    """Fused projections: [q; k; v] rows for self-attention, [k; v] for cross-attention."""
    model = load_pretrained(small_checkpoint)
    spec = build_spec(model, toy_tokenizer)
    c = model.config
    kv = c.n_kv_heads * c.head_dim
    self_qkv = spec.encoder.layer[0].self_attention.linear[0].weight.numpy()
    assert self_qkv.shape == (c.d_model + 2 * kv, c.d_model)
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    wk = weights["encoder_layers.0.attn.wk.weight"]
    np.testing.assert_array_equal(self_qkv[c.d_model : c.d_model + kv], wk)
    cross_kv = spec.decoder.layer[1].attention.linear[1].weight.numpy()
    wv = weights["decoder_layers.1.cross_attn.wv.weight"]
    np.testing.assert_array_equal(cross_kv[kv:], wv)
    attn = spec.encoder.layer[0].self_attention
    assert bool(attn.rotary_interleave.numpy()) and int(attn.rotary_dim.numpy()) == c.head_dim
    assert not hasattr(spec.decoder.layer[0].attention, "rotary_dim")  # none on cross-attention
