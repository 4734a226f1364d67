"""CTranslate2 export: exact greedy parity with eager PyTorch, refusals and the runtime wrapper."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import export.ctranslate2 as ct2_export
from export.ctranslate2 import (
    ConversionError,
    ConversionRequest,
    ParityError,
    build_spec,
    convert,
    main,
    parity_sources,
)
from lingolite.checkpoint import load_pretrained, save_pretrained
from lingolite.config import ModelConfig
from lingolite.generate import translate_ids
from lingolite.model import LingoLite
from lingolite.search import SearchConfig, SearchError
from lingolite.tokenizer import Tokenizer, TokenizerError
from lingolite.utils import set_seed
from runtime.ctranslate2_backend import PARITY_FILE, VOCABULARY_FILE, CT2ModelError, CT2Translator

MAX_LENGTH = 20  # random weights rarely say EOS early: cap every translation
SENTENCES = 50
THREADS = 1  # CPU cores are shared with other test runs


def spread(model: LingoLite, seed: int = 0) -> LingoLite:
    """Seeded random weights under which greedy search does something worth comparing.

    A freshly initialised LingoLite (linears with std 0.02, tied embeddings) echoes its input, so
    every translation is ``<s> <s> ...`` and even a wrong mapping would pass. Linears with std 0.3,
    norm gains around 1 and a 3x longer EOS embedding give translations of every length from 0 to
    MAX_LENGTH over ~70 distinct tokens.
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
        n_decoder_layers=2, ffn_dim=64, max_src_len=64, max_tgt_len=24, dropout=0.0,
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
def small_ct2(
    tmp_path_factory: pytest.TempPathFactory, small_checkpoint: Path, toy_corpus_dir: Path
) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("ct2") / "small-float32"
    report = convert(
        small_checkpoint, out, data=toy_corpus_dir, num_sentences=SENTENCES,
        max_length=MAX_LENGTH, threads=THREADS,
    )  # fmt: skip
    return out, report


@pytest.fixture(scope="module")
def toy_sources(small_checkpoint: Path, toy_corpus_dir: Path) -> list[list[int]]:
    tokenizer = Tokenizer.from_pretrained(small_checkpoint)
    sources, _ = parity_sources(tokenizer, small_config(), toy_corpus_dir, 30)
    return sources


# ------------------------------------------------------------------------- parity


def test_float32_greedy_is_identical_to_eager(
    small_ct2: tuple[Path, dict[str, Any]], small_checkpoint: Path, toy_sources: list[list[int]]
) -> None:
    out, report = small_ct2
    assert report["passed"] and report["greedy"]["agreement"] == 1.0
    assert report["greedy"]["sentences"] == SENTENCES
    assert json.loads((out / PARITY_FILE).read_text()) == report
    assert {p.name for p in out.iterdir()} >= {"model.bin", "config.json", VOCABULARY_FILE,
                                               "tokenizer.json", "spm.model", "lingolite.json"}  # fmt: skip

    model = load_pretrained(small_checkpoint)
    eager = translate_ids(model, toy_sources, SearchConfig(max_length=MAX_LENGTH))
    ct2 = CT2Translator(out, intra_threads=THREADS).translate_ids(toy_sources, 1, MAX_LENGTH)
    assert ct2 == eager
    # The comparison means something: EOS at many lengths (even first), many distinct tokens.
    lengths = {len(ids) for ids in eager}
    assert min(lengths) < 3 and MAX_LENGTH in lengths and len(lengths) > 8
    assert len({t for ids in eager for t in ids}) > 30


def test_beam_agreement_is_reported(small_ct2: tuple[Path, dict[str, Any]]) -> None:
    """CTranslate2 normalises beam scores exactly as we do (sum of log-probs / length with EOS),
    but ends the search once num_beams hypotheses are finished (patience 1) where we go on while
    a running beam can still win, and ranks hypotheses cut at max_length differently. On this
    random model 45 of 50 sentences agree; on a trained toy model 238 of 240 (240 with
    patience >= 1.5). So beam agreement is reported, not gated."""
    beam = small_ct2[1]["beam"]
    assert beam["num_beams"] == 4 and beam["sentences"] == SENTENCES
    assert 0.8 <= beam["agreement"] <= 1.0


def test_tiny_preset_greedy_is_identical(
    tmp_path: Path, toy_tokenizer: Tokenizer, toy_corpus_dir: Path
) -> None:
    config = ModelConfig.from_name(
        "tiny", vocab_size=128, max_src_len=64, max_tgt_len=24, dropout=0.0
    )
    checkpoint = make_checkpoint(tmp_path / "tiny", config, toy_tokenizer)
    report = convert(
        checkpoint, tmp_path / "ct2", data=toy_corpus_dir, num_sentences=SENTENCES,
        max_length=MAX_LENGTH, report_beams=0, threads=THREADS,
    )  # fmt: skip
    assert report["greedy"]["identical"] == SENTENCES and "beam" not in report


@pytest.mark.parametrize(
    "sabotage", [{"rotary_interleave": False}, {"rotary_base": 500.0}], ids=["rotate-half", "base"]
)
def test_wrong_rotary_mapping_fails_the_gate(
    tmp_path: Path, small_checkpoint: Path, monkeypatch: pytest.MonkeyPatch,
    sabotage: dict[str, Any],
) -> None:  # fmt: skip
    """The gate is sharp: the other rotary layout or base is caught, and nothing is published."""
    real = ct2_export._layer_options
    monkeypatch.setattr(ct2_export, "_layer_options", lambda c: {**real(c), **sabotage})
    out = tmp_path / "ct2"
    with pytest.raises(ParityError, match="parity gate failed") as info:
        convert(small_checkpoint, out, num_sentences=SENTENCES, max_length=MAX_LENGTH,
                report_beams=0, threads=THREADS)  # fmt: skip
    assert info.value.report["greedy"]["agreement"] < 0.5
    assert info.value.report["greedy"]["mismatches"]
    assert not out.exists() and not list(tmp_path.glob(".ct2.tmp-*"))
    kept = tmp_path / "ct2.failed"
    assert info.value.kept == kept and "greedy agreement" in str(info.value)
    assert json.loads((kept / PARITY_FILE).read_text()) == info.value.report
    with pytest.raises(CT2ModelError, match=r"lingolite\.json is missing"):
        CT2Translator(kept)


def test_untrained_int8_is_reported_against_an_exact_float32_conversion(
    tmp_path: Path, small_checkpoint: Path, toy_corpus_dir: Path
) -> None:
    """Random weights have small logit margins: int8 agrees on about half the sentences here (a
    trained toy model agreed on all 240), so for an untrained model it is reported, not gated."""
    report = convert(
        small_checkpoint, tmp_path / "int8", quantization="int8", data=toy_corpus_dir,
        num_sentences=SENTENCES, max_length=MAX_LENGTH, report_beams=0, threads=THREADS,
    )  # fmt: skip
    assert report["quantization"] == "int8" and not report["trained"]
    assert report["float32_conversion"]["agreement"] == 1.0
    assert report["float32_conversion"]["passed"]
    assert not report["greedy"]["gated"] and "threshold" not in report["greedy"]
    assert report["passed"]
    assert CT2Translator(tmp_path / "int8").quantization == "int8"


def test_trained_int8_is_gated(
    tmp_path: Path, toy_tokenizer: Tokenizer, toy_corpus_dir: Path
) -> None:
    """The same random weights marked as trained fail a 90% int8 gate; a later successful
    conversion to the same folder removes the kept failure."""
    checkpoint = tmp_path / "ckpt"
    set_seed(0)
    save_pretrained(spread(LingoLite(small_config())), checkpoint, extra={"training": {}})
    toy_tokenizer.save(checkpoint)
    out = tmp_path / "int8"
    options: dict[str, Any] = dict(data=toy_corpus_dir, num_sentences=SENTENCES,
                                   max_length=MAX_LENGTH, report_beams=0, threads=THREADS)  # fmt: skip
    with pytest.raises(ParityError) as info:
        convert(checkpoint, out, quantization="int8", min_int8_agreement=0.9, **options)
    report = info.value.report
    assert report["trained"] and report["greedy"]["threshold"] == 0.9
    assert report["greedy"]["agreement"] < 0.9 and not report["greedy"]["passed"]
    assert report["float32_conversion"]["passed"] and not out.exists()
    assert (tmp_path / "int8.failed" / PARITY_FILE).is_file()
    assert convert(checkpoint, out, **options)["passed"]
    assert (out / PARITY_FILE).is_file() and not (tmp_path / "int8.failed").exists()


def test_int8_conversion_leaves_the_model_weights_alone(
    small_checkpoint: Path, toy_tokenizer: Tokenizer
) -> None:
    """ctranslate2 quantizes the spec's arrays in place; they must be copies of the weights."""
    model = load_pretrained(small_checkpoint)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    build_spec(model, toy_tokenizer).optimize(quantization="int8")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_random_sources_without_data(small_checkpoint: Path, toy_tokenizer: Tokenizer) -> None:
    sources, described = parity_sources(toy_tokenizer, small_config(), None, 60)
    assert len(sources) == 60 and "seed 0" in described
    tags = {toy_tokenizer.lang_id(lang) for lang in toy_tokenizer.languages}
    assert all(s[0] in tags and s[-1] == 2 and len(s) <= 64 for s in sources)
    assert all(not ({0, 1, 2, 3} | tags) & set(s[1:-1]) for s in sources)
    assert parity_sources(toy_tokenizer, small_config(), None, 60)[0] == sources


# ------------------------------------------------------------------------- refusals


def test_refuses_a_non_empty_output_without_force(tmp_path: Path, small_checkpoint: Path) -> None:
    out = tmp_path / "ct2"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--force"):
        convert(small_checkpoint, out, num_sentences=SENTENCES, max_length=4, report_beams=0)
    assert (out / "keep.txt").read_text() == "mine"
    # --force replaces only an earlier export (its lingolite.json), never an unrelated folder.
    with pytest.raises(FileExistsError, match="holds no earlier LingoLite export"):
        convert(small_checkpoint, out, force=True, num_sentences=SENTENCES, max_length=4,
                report_beams=0, threads=THREADS)  # fmt: skip
    assert (out / "keep.txt").read_text() == "mine"
    (out / "lingolite.json").write_text("{}")
    convert(small_checkpoint, out, force=True, num_sentences=SENTENCES, max_length=4,
            report_beams=0, threads=THREADS)  # fmt: skip
    assert not (out / "keep.txt").exists() and (out / PARITY_FILE).is_file()


def test_reports_every_unsupported_option_at_once(tmp_path: Path, toy_tokenizer: Tokenizer) -> None:
    checkpoint = tmp_path / "ckpt"
    save_pretrained(LingoLite(small_config(vocab_size=100, rope_base=10000.1)), checkpoint)
    toy_tokenizer.save(checkpoint)
    with pytest.raises(ConversionError) as info:
        convert(checkpoint, checkpoint, quantization="int16", force=True, num_sentences=10,
                max_length=25)  # fmt: skip
    message = str(info.value)
    assert "quantization 'int16' is not one of" in message
    assert "the tokenizer has 128 pieces but the model's vocab_size is 100" in message
    assert "rope_base 10000.1 is not exactly representable in float32" in message
    assert "would replace the checkpoint folder" in message
    assert "num_sentences must be >= 50, got 10" in message
    assert "max_length must be in [1, 24], got 25" in message
    assert (checkpoint / "model.safetensors").is_file()


def test_every_check_runs_before_failing(
    tmp_path: Path, small_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def first(request: ConversionRequest) -> list[str]:
        return [f"first problem with {request.config.n_heads} heads"]

    def second(request: ConversionRequest) -> list[str]:
        return ["second problem", "third problem"]

    monkeypatch.setattr(ct2_export, "CHECKS", [first, *ct2_export.CHECKS, second])
    with pytest.raises(ConversionError) as info:
        convert(small_checkpoint, tmp_path / "ct2")
    assert str(info.value).count("\n- ") == 3
    assert "first problem with 4 heads" in str(info.value) and "third problem" in str(info.value)
    assert not (tmp_path / "ct2").exists()


def test_missing_tokenizer_is_one_of_the_problems(tmp_path: Path) -> None:
    checkpoint = tmp_path / "ckpt"
    save_pretrained(LingoLite(small_config()), checkpoint)
    with pytest.raises(ConversionError) as info:
        convert(checkpoint, tmp_path / "ct2", quantization="int4")
    assert "tokenizer:" in str(info.value) and "quantization 'int4'" in str(info.value)


# ------------------------------------------------------------------------- CLI and runtime


def test_cli(
    tmp_path: Path, small_checkpoint: Path, toy_corpus_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "ct2"
    args = ["--checkpoint", str(small_checkpoint), "--out", str(out), "--data",
            str(toy_corpus_dir), "--num-sentences", "50", "--max-length", "8",
            "--report-beams", "0"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"quantization": "float32", "passed": True, "greedy_agreement": 1.0}
    assert main(args) == 1  # out is not empty now


def test_translator_texts_and_errors(
    small_ct2: tuple[Path, dict[str, Any]], small_checkpoint: Path
) -> None:
    translator = CT2Translator(small_ct2[0], intra_threads=THREADS)
    model, tokenizer = load_pretrained(small_checkpoint), translator.tokenizer
    texts = ["a man rides a bike", "two dogs see a red ball", ""]
    eager = translate_ids(
        model, [tokenizer.encode_source(t, "de") for t in texts], SearchConfig(max_length=10)
    )
    assert translator.translate(texts, "en", "de", max_length=10) == tokenizer.decode_batch(eager)
    assert translator.translate([], "en", "de") == []
    with pytest.raises(TokenizerError, match="unknown languages"):
        translator.translate(texts, "en", "xx")
    with pytest.raises(SearchError) as info:
        translator.translate_ids([[5, *range(10, 80), 2], []], num_beams=0, max_length=25)
    for expected in ("max_length must be in [1, 24], got 25", "num_beams must be >= 1",
                     "at least one token", "longer than max_src_len (64)"):  # fmt: skip
        assert expected in str(info.value)


def test_translator_refuses_a_vocabulary_out_of_id_order(
    tmp_path: Path, small_ct2: tuple[Path, dict[str, Any]]
) -> None:
    folder = tmp_path / "ct2"
    shutil.copytree(small_ct2[0], folder)
    pieces = json.loads((folder / VOCABULARY_FILE).read_text())
    pieces[40], pieces[41] = pieces[41], pieces[40]
    (folder / VOCABULARY_FILE).write_text(json.dumps(pieces))
    with pytest.raises(CT2ModelError, match=r"disagrees with the tokenizer at ids \[40, 41\]"):
        CT2Translator(folder)


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
