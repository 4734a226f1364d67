"""Marian (OPUS-MT) import: LingoLite's model with the Marian variants computes what
``transformers.MarianMTModel`` computes, and the one search decodes what ``generate`` does.

Models are built offline from ``MarianConfig`` with seeded random weights (every parameter and
the final logits bias perturbed, so that a wrongly mapped norm or bias cannot hide behind its
default value): a small one and one at the real ``opus-mt-en-de`` size.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from export.common import ExportOptions
from export.ctranslate2 import export_ctranslate2
from export.executorch import export_executorch
from export.onnx import export_onnx
from lingolite import cli
from lingolite.checkpoint import load_pretrained, read_config
from lingolite.config import ModelConfig
from lingolite.generate import EagerBackend
from lingolite.import_marian import MarianImportError, import_marian, marian_config, marian_state
from lingolite.model import LingoLite
from lingolite.search import SearchConfig, generate, pad_batch
from lingolite.tokenizer import TokenId
from lingolite.tokenizers import load_tokenizer
from runtime.translator import Translator
from tests.marian_fixtures import (
    OPUS_MT_EN_DE,
    SENTENCES,
    corpus,
    hf_config,
    hf_model,
    small_models,
    train_spm,
    write_marian_folder,
)

transformers = pytest.importorskip("transformers")


def imported(hf: Any, max_len: int = 64) -> LingoLite:
    c = hf.config.to_dict()
    config = marian_config(c, unk_id=1, max_src_len=max_len, max_tgt_len=max_len)
    model = LingoLite(config)
    model.load_state_dict(marian_state(hf.state_dict(), config))
    return model.eval()


def sources(config: ModelConfig, rows: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded random sources ending in eos, of lengths 3..12."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 13, (rows,), generator=gen).tolist()
    special = {config.pad_id, config.eos_id, config.bos_id}
    vocab = [i for i in range(2, config.vocab_size) if i not in special]
    seqs = [
        [TokenId(vocab[j]) for j in torch.randint(0, len(vocab), (n - 1,), generator=gen)]
        + [config.eos_id]
        for n in lengths
    ]
    ids, mask = pad_batch(seqs, config.pad_id)
    return torch.from_numpy(ids), torch.from_numpy(mask)


@pytest.mark.parametrize("activation", ["swish", "gelu", "relu"])
def test_encoder_and_decoder_match_marian(activation: str) -> None:
    hf = hf_model(hf_config(activation_function=activation))
    ours = imported(hf)
    src, mask = sources(ours.config, 4)
    tgt = torch.randint(2, 96, (4, 6))
    tgt[:, 0] = ours.config.bos_id
    with torch.no_grad():
        memory = hf.model.encoder(input_ids=src, attention_mask=mask.long()).last_hidden_state
        cross_k, cross_v = ours.encode(src, mask)
        for i, layer in enumerate(hf.model.decoder.layers):
            attn = layer.encoder_attn
            heads = ours.config.n_heads
            for got, proj in ((cross_k[i], attn.k_proj), (cross_v[i], attn.v_proj)):
                want = proj(memory).view(4, -1, heads, ours.config.head_dim).transpose(1, 2)
                # padded source positions feed nothing: compare the real ones
                keep = mask[:, None, :, None].expand_as(want)
                assert (got[keep] - want[keep]).abs().max() <= 1e-4
        want_logits = hf(input_ids=src, attention_mask=mask.long(), decoder_input_ids=tgt).logits
        got_logits = ours(src, mask, tgt)
        pad = ours.config.pad_id  # the one logit the import changes (PAD_LOGIT_BIAS)
        assert (got_logits[..., :pad] - want_logits[..., :pad]).abs().max() <= 1e-4
        assert (got_logits[..., pad] < -50).all()
        want_logits[..., pad] = got_logits[..., pad]
        # the cached step (the exported decoder) gives the same logits, position by position
        self_k, self_v = ours.empty_cache(4)
        for pos in range(tgt.shape[1]):
            step, self_k, self_v = ours.decode_step(
                tgt[:, pos : pos + 1], torch.tensor([pos]), mask, cross_k, cross_v, self_k, self_v
            )
            assert (step - want_logits[:, pos]).abs().max() <= 1e-4


def hf_generate(hf: Any, src: torch.Tensor, mask: torch.Tensor, **options: Any) -> list[list[int]]:
    """``generate``'s tokens per row, without the decoder start token and from eos on."""
    out = hf.generate(
        input_ids=src, attention_mask=mask.long(), do_sample=False,
        bad_words_ids=[[hf.config.pad_token_id]],
        forced_eos_token_id=None, num_return_sequences=1, **options,
    )  # fmt: skip
    rows = []
    eos = hf.config.eos_token_id
    for row in out[:, 1:].tolist():
        rows.append(row[: row.index(eos)] if eos in row else row)
    return rows


def ours_generate(model: LingoLite, src: torch.Tensor, mask: torch.Tensor,
                  config: SearchConfig) -> list[list[int]]:  # fmt: skip
    c = model.config
    out = generate(
        EagerBackend(model), src.numpy(), mask.numpy(), bos_id=c.bos_id, eos_id=c.eos_id,
        pad_id=c.pad_id, config=config,
    )  # fmt: skip
    return [list(map(int, row)) for row in out]


# Random models whose outputs depend on the source (a plain random Marian model says the same,
# or nothing, for every source): attention/FFN weights x gain, embeddings x embed_gain, and an eos
# bias that (a) lets 24-token outputs differ between greedy and beam 4 or (b) ends some early.
VARIED = {"long": dict(gain=4.0, embed_gain=6.0, eos_boost=4.0),
          "mixed": dict(gain=8.0, embed_gain=6.0, eos_boost=6.0)}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(VARIED))
def test_greedy_and_beam_tokens_match_generate(kind: str) -> None:
    hf = hf_model(hf_config(), seed=3, **VARIED[kind])
    ours = imported(hf)
    src, mask = sources(ours.config, 8, seed=5)
    with torch.no_grad():
        want = hf_generate(hf, src, mask, num_beams=1, max_new_tokens=24)
        got = ours_generate(ours, src, mask, SearchConfig(max_length=24))
        assert got == want
        assert len({tuple(row) for row in want}) >= 3  # the outputs depend on the source
        beam = hf_generate(hf, src, mask, num_beams=4, max_new_tokens=24)
        if kind == "mixed":
            assert len({len(row) for row in want}) >= 2  # some rows ended with eos
        else:
            assert beam != want  # beam search found other outputs than greedy
        for length_penalty, early_stopping in ((1.0, False), (0.6, True), (0.0, False)):
            want = hf_generate(
                hf, src, mask, num_beams=4, max_new_tokens=24,
                length_penalty=length_penalty, early_stopping=early_stopping,
            )  # fmt: skip
            config = SearchConfig(
                num_beams=4, max_length=24, length_penalty=length_penalty,
                early_stopping=early_stopping,
            )  # fmt: skip
            assert ours_generate(ours, src, mask, config) == want, (length_penalty, early_stopping)


def test_real_opus_mt_en_de_size_matches_marian() -> None:
    """d_model 512, 6 + 6 layers, 8 heads, FFN 2048, vocabulary 58,101: opus-mt-en-de's sizes."""
    hf = hf_model(
        hf_config(
            vocab_size=58101, d_model=512, encoder_layers=6, decoder_layers=6,
            encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048,
            decoder_ffn_dim=2048, max_position_embeddings=512,
        ),
        eos_boost=6.0,
    )  # fmt: skip
    ours = imported(hf, max_len=128)
    assert ours.num_parameters() == sum(p.numel() for p in hf.parameters()) + 58101 - sum(
        p.numel() for p in hf.model.encoder.embed_positions.parameters()
    ) - sum(p.numel() for p in hf.model.decoder.embed_positions.parameters())
    src, mask = sources(ours.config, 3, seed=2)
    tgt = torch.randint(2, 58000, (3, 5))
    tgt[:, 0] = ours.config.bos_id
    with torch.no_grad():
        want = hf(input_ids=src, attention_mask=mask.long(), decoder_input_ids=tgt).logits
        assert (ours(src, mask, tgt)[..., :-1] - want[..., :-1]).abs().max() <= 1e-4
        config = SearchConfig(num_beams=4, max_length=12)
        assert ours_generate(ours, src, mask, config) == hf_generate(
            hf, src, mask, num_beams=4, max_new_tokens=12
        )


def test_unsupported_config_names_every_field() -> None:
    c = hf_config().to_dict()
    bad = {**c, "activation_function": "gelu_new", "decoder_attention_heads": 2,
           "share_encoder_decoder_embeddings": False, "decoder_vocab_size": 50,
           "eos_token_id": [0, 1]}  # fmt: skip
    with pytest.raises(MarianImportError) as error:
        marian_config(bad, unk_id=1, max_tgt_len=65)
    message = str(error.value)
    for field in ("activation_function is 'gelu_new'", "decoder_attention_heads (2)",
                  "share_encoder_decoder_embeddings is False", "decoder_vocab_size (50)",
                  "eos_token_id must be one integer, got [0, 1]",
                  "max_tgt_len 65 exceeds max_position_embeddings 64",
                  ):  # fmt: skip
        assert field in message


def test_weights_that_do_not_map_are_all_named() -> None:
    hf = hf_model(hf_config())
    config = marian_config(hf.config.to_dict(), unk_id=1, max_src_len=64, max_tgt_len=64)
    state = dict(hf.state_dict())
    del state["model.encoder.layers.1.fc2.bias"]
    state["model.extra.weight"] = torch.zeros(2)
    state["model.decoder.embed_tokens.weight"] = state["model.shared.weight"] + 1.0
    state["model.encoder.embed_positions.weight"] = torch.zeros(64, 32)
    with pytest.raises(MarianImportError) as error:
        marian_state(state, config)
    message = str(error.value)
    assert "missing tensor 'model.encoder.layers.1.fc2.bias'" in message
    assert "unexpected tensor 'model.extra.weight'" in message
    assert "model.decoder.embed_tokens.weight differs from model.shared.weight" in message
    assert "model.encoder.embed_positions.weight is not Marian's sinusoidal table" in message


def test_position_table_is_marians() -> None:
    hf = hf_model(hf_config())
    ours = imported(hf)
    table = hf.model.encoder.embed_positions.weight
    assert ours.positions is not None
    assert torch.allclose(ours.positions.table, table[: ours.positions.table.shape[0]], atol=1e-6)
    assert np.isclose(float(ours.embed_scale), 32**0.5)


# ---------------------------------------------------------------------- the whole pipeline


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small Hugging Face Marian en-de folder: tokenizer files and a random model whose
    translations of SENTENCES differ (small_checkpoint's weights)."""
    folder = tmp_path_factory.mktemp("hf") / "opus-mt-en-de"
    return write_marian_folder(folder, small_models(), eos_boost=1.1, gain=4.0)


@pytest.fixture(scope="module")
def checkpoint(hf_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("imported") / "marian-en-de"
    assert cli.main(["import-marian", str(hf_folder), "--out", str(out),
                     "--max-src-len", "48", "--max-tgt-len", "32"]) == 0  # fmt: skip
    return out


def hf_translations(folder: Path, texts: list[str], **options: Any) -> list[str]:
    tok = transformers.MarianTokenizer.from_pretrained(str(folder))
    model = transformers.MarianMTModel.from_pretrained(str(folder)).eval()
    batch = tok(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(
            **batch, do_sample=False, bad_words_ids=[[model.config.pad_token_id]],
            forced_eos_token_id=None, **options,
        )  # fmt: skip
    return [str(t) for t in tok.batch_decode(out, skip_special_tokens=True)]


def test_imported_folder_translates_like_transformers(hf_folder: Path, checkpoint: Path) -> None:
    config, data = read_config(checkpoint)
    assert (config.norm, config.positions) == ("layernorm", "sinusoidal")
    assert config.bos_id == config.pad_id == config.vocab_size - 1  # Marian: pad is last
    assert data["training"]["pairs"] == ["en-de"]
    assert data["imported"]["weights"]["file"] == "model.safetensors"
    tokenizer = load_tokenizer(checkpoint)
    translator = Translator(tokenizer, EagerBackend(load_pretrained(checkpoint)), max_src_len=48)
    outputs = []
    for beams in (1, 4):
        want = hf_translations(hf_folder, SENTENCES, num_beams=beams, max_new_tokens=32)
        assert translator.translate(SENTENCES, "en", "de", num_beams=beams) == want
        assert len(set(want)) >= 3 and all(want[:2])  # not one (empty) output for every text
        outputs.append(want)
    assert outputs[0] != outputs[1]


def test_import_refuses_a_pickle_only_folder(hf_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bin-only"
    shutil.copytree(hf_folder, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(MarianImportError, match=r"only pytorch_model\.bin, a pickle"):
        import_marian(folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_import_keeps_an_existing_folder_unless_forced(checkpoint: Path, hf_folder: Path) -> None:
    before = (checkpoint / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError):
        import_marian(hf_folder, checkpoint)
    assert (checkpoint / "model.safetensors").read_bytes() == before


def passed_parity(out: Path, variant: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """An export's ``parity.json`` (which must say passed) and ``variant``'s checks by name."""
    parity = json.loads((out / "parity.json").read_text(encoding="utf-8"))
    assert parity["passed"] is True
    return parity, {c["name"]: c for c in parity["variants"][variant]["checks"]}


@pytest.mark.slow
def test_onnx_export_of_the_imported_model_passes_parity(
    hf_folder: Path, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """fp32, static and growing cache, behind the exact gate. (The int8 gate, which an imported
    model meets as a trained one, is shown at real size below: this small random model's
    near-tied logits keep too few sentences identical under int8 to be a fair test of it.)"""
    out = tmp_path_factory.mktemp("marian-onnx") / "onnx"
    export_onnx(ExportOptions(out=out, checkpoint=checkpoint), "none")
    parity, checks = passed_parity(out, "onnx-fp32")
    assert set(parity["variants"]) == {"onnx-fp32", "onnx-fp32:grow"}
    assert checks["decoder logits max abs diff (real)"]["value"] <= 1e-4
    assert checks["greedy sentences identical to eager"]["value"] == 1.0
    want = hf_translations(hf_folder, SENTENCES, num_beams=4, max_new_tokens=32)
    translator = Translator.from_artifacts(out, precision="fp32")
    assert translator.translate(SENTENCES, "en", "de", num_beams=4) == want


@pytest.mark.slow
def test_executorch_export_of_the_imported_model_passes_parity(
    hf_folder: Path, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The fp32 XNNPACK program behind the exact gate (8da4w's gate is shown at opus-mt size by
    the committed benchmark run; see the ONNX test for why not on this small model)."""
    out = tmp_path_factory.mktemp("marian-et") / "et"
    export_executorch(ExportOptions(out=out, checkpoint=checkpoint), ["fp32"])
    _, checks = passed_parity(out, "executorch-fp32")
    assert checks["greedy sentences identical to eager"]["value"] == 1.0
    want = hf_translations(hf_folder, SENTENCES, num_beams=4, max_new_tokens=32)
    translator = Translator.from_artifacts(out, backend="executorch", precision="fp32")
    assert translator.translate(SENTENCES, "en", "de", num_beams=4) == want


@pytest.mark.slow
def test_real_size_model_imports_and_exports_to_onnx(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """opus-mt-en-de's sizes (74M parameters, vocabulary 58,101) through import, the ONNX fp32
    and int8 parity gates and the runtime, token for token like transformers."""
    root = tmp_path_factory.mktemp("opus-size")
    models = train_spm(corpus(0, 300), 400, 0.995), train_spm(corpus(1, 300), 350, 1.0)
    sizes = {k: v for k, v in OPUS_MT_EN_DE.items() if k != "vocab_size"}
    hf = write_marian_folder(root / "hf", models, vocab_size=58101, eos_boost=6.0, **sizes)
    ckpt = import_marian(hf, root / "ckpt", max_src_len=64, max_tgt_len=48)
    reference = transformers.MarianMTModel.from_pretrained(str(hf))
    weights = {n: p.numel() for n, p in reference.named_parameters() if "positions" not in n}
    # every Marian weight, and the logits bias (a buffer there, a parameter here)
    assert load_pretrained(ckpt).num_parameters() == sum(weights.values()) + 58101 == 73_944_309
    out = export_onnx(ExportOptions(out=root / "onnx", checkpoint=ckpt), "both")
    passed_parity(out, "onnx-int8")
    want = hf_translations(hf, SENTENCES, num_beams=4, max_new_tokens=48)
    # a real comparison: most outputs are long (up to 48 tokens) and they differ
    assert sum(map(bool, want)) >= 3 and len(set(want)) >= 3
    translator = Translator.from_artifacts(out, precision="fp32")
    assert translator.translate(SENTENCES, "en", "de", num_beams=4) == want


@pytest.mark.slow
def test_ctranslate2_export_of_the_imported_model_passes_parity(
    hf_folder: Path, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = tmp_path_factory.mktemp("marian-ct2") / "ct2"
    export_ctranslate2(ExportOptions(out=out, checkpoint=checkpoint), "none")
    _, checks = passed_parity(out, "ctranslate2-fp32")
    assert checks["greedy sentences identical to eager"]["value"] == 1.0
    want = hf_translations(hf_folder, SENTENCES, num_beams=1, max_new_tokens=32)
    translator = Translator.from_artifacts(out, backend="ctranslate2", precision="fp32")
    assert translator.translate(SENTENCES, "en", "de") == want
