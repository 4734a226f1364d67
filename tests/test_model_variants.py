"""The architecture variants of ModelConfig (norm kind and position, positions, feed-forward,
biases, embedding scale, logits bias): every decoding form of the one model agrees with the
others, and the XNNPACK programs compute what the model computes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from export.executorch_programs import XnnpackDecoderStep, XnnpackEncoder
from lingolite.config import OPTIONAL_KEYS, VARIANTS, ConfigError, ModelConfig
from lingolite.generate import EagerBackend
from lingolite.model import LingoLite
from lingolite.search import SearchConfig, generate
from lingolite.tokenizer import TokenId

MARIAN: dict[str, Any] = dict(
    norm="layernorm", norm_position="post", positions="sinusoidal", ffn="swish", bias=True,
    scale_embeddings=True, logits_bias=True, n_kv_heads=4, bos_id=TokenId(0),
)  # fmt: skip
VARIANT_CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "marian": MARIAN,
    "gelu-unscaled": {**MARIAN, "ffn": "gelu", "scale_embeddings": False},
    "relu-untied": {**MARIAN, "ffn": "relu", "tie_embeddings": False},
    "pre-layernorm-sinusoidal": {"norm": "layernorm", "positions": "sinusoidal", "bias": True},
    "post-rmsnorm-rotary-swiglu": {"norm_position": "post", "logits_bias": True},
}


def build(**variant: Any) -> LingoLite:
    sizes: dict[str, Any] = dict(
        vocab_size=60, d_model=32, n_heads=4, n_kv_heads=2, n_encoder_layers=2,
        n_decoder_layers=2, ffn_dim=48, max_src_len=16, max_tgt_len=8, dropout=0.0,
    )  # fmt: skip
    config = ModelConfig(**{**sizes, **variant})
    torch.manual_seed(0)
    model = LingoLite(config).eval()
    with torch.no_grad():  # away from the init's ones and zeros, so every tensor matters
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def batch(model: LingoLite) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    src = torch.randint(5, 60, (3, 7), generator=gen)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 4:] = False
    mask[2, 2:] = False
    src[~mask] = model.config.pad_id
    tgt = torch.randint(5, 60, (3, 6), generator=gen)
    tgt[:, 0] = model.config.bos_id
    return src, mask, tgt


@pytest.mark.parametrize("name", sorted(VARIANT_CONFIGS))
def test_cached_steps_match_the_whole_sequence_decoder(name: str) -> None:
    model = build(**VARIANT_CONFIGS[name])
    src, mask, tgt = batch(model)
    with torch.no_grad():
        full = model(src, mask, tgt)
        cross_k, cross_v = model.encode(src, mask)
        self_k, self_v = model.empty_cache(3)
        past_k, past_v = model.empty_grow_cache(3)
        for pos in range(tgt.shape[1]):
            token = tgt[:, pos : pos + 1]
            step, self_k, self_v = model.decode_step(
                token, torch.tensor([pos]), mask, cross_k, cross_v, self_k, self_v
            )
            grow, past_k, past_v = model.decode_step_grow(
                token, mask, cross_k, cross_v, past_k, past_v
            )
            assert (step - full[:, pos]).abs().max() <= 1e-5
            assert (grow - full[:, pos]).abs().max() <= 1e-5


@pytest.mark.parametrize("name", sorted(VARIANT_CONFIGS))
def test_xnnpack_programs_compute_what_the_model_computes(name: str) -> None:
    model = build(**VARIANT_CONFIGS[name])
    src, mask, tgt = batch(model)
    with torch.no_grad():
        cross_k, cross_v = model.encode(src, mask)
        got_k, got_v = XnnpackEncoder(model)(src, mask)
        assert (got_k - cross_k).abs().max() <= 1e-5 and (got_v - cross_v).abs().max() <= 1e-5
        self_k, self_v = model.empty_cache(3)
        step = XnnpackDecoderStep(model)
        for pos in range(3):
            args = (tgt[:, pos : pos + 1], torch.tensor([pos]), mask, cross_k, cross_v)
            want = model.decode_step(*args, self_k, self_v)
            got = step(*args, self_k, self_v)
            for a, b in zip(got, want, strict=True):
                assert (a - b).abs().max() <= 1e-5
            self_k, self_v = want[1], want[2]


def test_variants_change_the_parameters_they_should() -> None:
    keys = set(build(**MARIAN).state_dict())
    assert "logits_bias" in keys and "encoder_layers.0.attn.wq.bias" in keys
    assert "encoder_layers.0.attn_norm.bias" in keys  # LayerNorm
    assert not any(k.startswith(("encoder_norm", "decoder_norm")) for k in keys)  # post-norm
    assert not any(".w3." in k for k in keys)  # a plain (ungated) feed-forward
    default = set(build().state_dict())
    assert "encoder_norm.weight" in default and "encoder_layers.0.ffn.w3.weight" in default
    assert not any(k.endswith(".bias") for k in default)


def test_config_written_before_the_variants_loads_with_the_defaults() -> None:
    config = ModelConfig(vocab_size=60, d_model=32, n_heads=4, n_kv_heads=2)
    old = {k: v for k, v in config.to_dict().items() if k not in OPTIONAL_KEYS}
    assert ModelConfig.from_dict(old) == config
    marian = ModelConfig(vocab_size=60, d_model=32, n_heads=4, **MARIAN)
    assert ModelConfig.from_dict(marian.to_dict()) == marian


def test_bad_variants_are_named_with_their_values() -> None:
    with pytest.raises(ConfigError) as error:
        ModelConfig(norm="batchnorm", ffn="gelu_new", positions="alibi", norm_position="mid")
    for name, value in (("norm", "batchnorm"), ("ffn", "gelu_new"), ("positions", "alibi"),
                        ("norm_position", "mid")):  # fmt: skip
        assert f"{name} must be one of {list(VARIANTS[name])}, got {value!r}" in str(error.value)
    with pytest.raises(ConfigError, match="bos_id may equal pad_id"):
        ModelConfig(bos_id=TokenId(2))  # bos equal to eos
    ModelConfig(bos_id=TokenId(0))  # Marian's decoder start: pad


class _Pieces:
    """A stand-in tokenizer for the CTranslate2 spec: piece ``i`` is ``t<i>``."""

    vocab_size = 60

    def id_to_piece(self, token_id: int) -> str:
        return f"t{token_id}"


@pytest.mark.parametrize("name", sorted(VARIANT_CONFIGS))
def test_ctranslate2_spec_decodes_like_eager(name: str, tmp_path: Path) -> None:
    ctranslate2 = pytest.importorskip("ctranslate2")
    from export.ctranslate2 import build_spec

    model = build(**VARIANT_CONFIGS[name])
    src, mask, _ = batch(model)
    spec = build_spec(model, _Pieces())  # type: ignore[arg-type]
    spec.save(str(tmp_path))
    translator = ctranslate2.Translator(str(tmp_path), device="cpu")
    c = model.config
    sources = [[f"t{i}" for i in row[m].tolist()] for row, m in zip(src, mask, strict=True)]
    results = translator.translate_batch(sources, beam_size=1, max_decoding_length=c.max_tgt_len)
    want = generate(
        EagerBackend(model), src.numpy(), mask.numpy(), bos_id=c.bos_id, eos_id=c.eos_id,
        pad_id=c.pad_id, config=SearchConfig(max_length=c.max_tgt_len),
    )  # fmt: skip
    got = [[int(t[1:]) for t in r.hypotheses[0]] for r in results]
    assert got == [list(map(int, row)) for row in want]
