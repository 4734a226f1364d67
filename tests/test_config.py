"""ModelConfig: presets, derived sizes, validation that reports every problem at once."""

from __future__ import annotations

import math

import pytest

from lingolite.config import PRESETS, ConfigError, ModelConfig
from lingolite.model import LingoLite
from lingolite.tokenizer import TokenId

TARGETS = {"tiny": 7e6, "small": 60e6, "medium": 140e6}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_preset_parameter_counts_within_ten_percent(name: str) -> None:
    config = ModelConfig.from_name(name, vocab_size=24000)
    n = LingoLite(config).num_parameters()
    assert abs(n - TARGETS[name]) <= 0.10 * TARGETS[name], f"{name}: {n / 1e6:.2f}M"


def test_presets_are_valid_and_named() -> None:
    assert set(PRESETS) == {"tiny", "small", "medium"}
    tiny = ModelConfig.from_name("tiny", vocab_size=1000)
    assert tiny.name == "tiny" and tiny.vocab_size == 1000
    assert tiny.head_dim * tiny.n_heads == tiny.d_model
    assert tiny.num_groups == tiny.n_heads // tiny.n_kv_heads


def test_unknown_preset_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"huge.*medium"):
        ModelConfig.from_name("huge")


def test_validation_reports_every_invalid_field_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        ModelConfig(
            d_model=100, n_heads=3, n_kv_heads=2, norm_eps=0.0, rope_base=-1.0, max_src_len=0,
            max_tgt_len=-5, dropout=1.5, vocab_size=10, eos_id=TokenId(10),
        )  # fmt: skip
    message = str(info.value)
    for expected in (
        "norm_eps must be finite and > 0, got 0.0",
        "rope_base must be finite and > 0, got -1.0",
        "max_src_len must be > 0, got 0",
        "max_tgt_len must be > 0, got -5",
        "dropout must be in [0, 1), got 1.5",
        "d_model (100) must be divisible by n_heads (3)",
        "n_heads (3) must be divisible by n_kv_heads (2)",
        "eos_id must be in [0, vocab_size=10), got 10",
    ):
        assert expected in message


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_non_finite_eps_and_rope_base_are_rejected(value: float) -> None:
    with pytest.raises(ConfigError) as info:
        ModelConfig(norm_eps=value, rope_base=value)
    for name in ("norm_eps", "rope_base"):
        assert f"{name} must be finite and > 0, got {value}" in str(info.value)


def test_odd_head_dim_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"head_dim .* must be even"):
        ModelConfig(d_model=12, n_heads=4, n_kv_heads=2)


def test_types_are_checked() -> None:
    with pytest.raises(ConfigError, match="d_model must be of type int, got '256'"):
        ModelConfig(d_model="256")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n_heads must be of type int, got True"):
        ModelConfig(n_heads=True)
    with pytest.raises(ConfigError, match="eos_id must be of type TokenId, got '2'"):
        ModelConfig(eos_id="2")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pad_id must be of type TokenId, got False"):
        ModelConfig(pad_id=False)  # type: ignore[arg-type]


def test_dict_round_trip_and_key_checks() -> None:
    config = ModelConfig.from_name("tiny", vocab_size=500)
    assert ModelConfig.from_dict(config.to_dict()) == config
    data = config.to_dict()
    del data["d_model"]
    data["colour"] = "blue"
    with pytest.raises(ConfigError) as info:
        ModelConfig.from_dict(data)
    assert "unknown key 'colour'" in str(info.value)
    assert "missing key 'd_model'" in str(info.value)
    with pytest.raises(ConfigError, match="JSON object"):
        ModelConfig.from_dict([1, 2])
