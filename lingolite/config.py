"""Model configuration: one dataclass, named presets, validation that reports every problem.

This module is PyTorch-free: the ONNX Runtime and ExecuTorch runners read the same config from an
artifact manifest without importing torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from lingolite.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, TokenId


class ConfigError(ValueError):
    """A model config with one or more invalid fields; the message lists all of them."""


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "int": int, "float": (int, float), "bool": bool, "str": str,
    "TokenId": int,  # a NewType of int: a plain int at run time
}  # fmt: skip

# Upper bounds on the sizes, checked before anything is allocated: far above any LingoLite model
# (medium: d_model 768, 8 + 8 layers), far below sizes that would exhaust memory on their own.
SIZE_LIMITS: dict[str, int] = {
    "vocab_size": 1 << 20, "d_model": 1 << 14, "n_heads": 256, "n_kv_heads": 256,
    "n_encoder_layers": 128, "n_decoder_layers": 128, "ffn_dim": 1 << 16,
    "max_src_len": 1 << 16, "max_tgt_len": 1 << 16,
}  # fmt: skip
# At most this many parameters (8 GiB of float32 weights).
MAX_PARAMETERS = 2 * 1024**3

# The architecture variants and their allowed values, the first of each being the default.
VARIANTS: dict[str, tuple[str, ...]] = {
    "norm": ("rmsnorm", "layernorm"),
    "norm_position": ("pre", "post"),
    "positions": ("rotary", "sinusoidal"),
    "ffn": ("swiglu", "gelu", "swish", "relu"),
}
# Keys a config.json may leave out (written before the variants existed): their defaults apply.
OPTIONAL_KEYS = frozenset({*VARIANTS, "bias", "scale_embeddings", "logits_bias", "name"})


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of a LingoLite encoder-decoder.

    Derived sizes (``head_dim``, ``num_groups``) are properties, so a config can never hold
    inconsistent copies of them.

    >>> config = ModelConfig.from_name("tiny", vocab_size=8000)
    >>> config.d_model, config.head_dim, config.num_groups
    (192, 48, 2)
    >>> ModelConfig.from_dict(config.to_dict()) == config
    True

    Every invalid field is reported at once, with its value:

    >>> try:
    ...     ModelConfig(d_model=100, n_heads=3, norm_eps=0.0)
    ... except ConfigError as error:
    ...     for problem in str(error).split("; "):
    ...         print(problem)
    invalid model config: norm_eps must be finite and > 0, got 0.0
    d_model (100) must be divisible by n_heads (3)
    head_dim (d_model / n_heads = 33.333333333333336) must be even for rotary embeddings
    n_heads (3) must be divisible by n_kv_heads (2)
    """

    vocab_size: int = 24000
    d_model: int = 256
    n_heads: int = 4
    # Grouped-query attention: n_heads query heads share n_kv_heads key/value heads.
    n_kv_heads: int = 2
    n_encoder_layers: int = 3
    n_decoder_layers: int = 3
    # Hidden size of the feed-forward (SwiGLU: three d_model x ffn_dim matrices, others two).
    ffn_dim: int = 768
    # Static lengths: the rotary tables and the decoder's KV cache are allocated to these sizes.
    max_src_len: int = 128
    max_tgt_len: int = 128
    # Base of the position frequencies base ** (-2i / d), rotary or sinusoidal.
    rope_base: float = 10000.0
    norm_eps: float = 1e-6
    dropout: float = 0.1
    # Share the embedding matrix between encoder input, decoder input and output projection.
    tie_embeddings: bool = True
    pad_id: TokenId = PAD_ID
    # The decoder start token: the first input of every decoder sequence. LingoLite's own models
    # start from <s>; Marian (OPUS-MT) models start from pad, so bos_id may equal pad_id.
    bos_id: TokenId = BOS_ID
    eos_id: TokenId = EOS_ID
    unk_id: TokenId = UNK_ID
    # ---- architecture variants (VARIANTS): the defaults are LingoLite's own architecture; the
    # other values are those of imported models (lingolite.import_marian).
    # "rmsnorm" (weight only) or "layernorm" (weight and bias).
    norm: str = "rmsnorm"
    # "pre": x + f(norm(x)), with a final norm after each stack; "post": norm(x + f(x)), none.
    norm_position: str = "pre"
    # "rotary": queries and keys rotated in every attention; "sinusoidal": Marian's absolute
    # table (sines in the first half of the vector, cosines in the second) added to embeddings.
    positions: str = "rotary"
    # "swiglu": w2(silu(w1 x) * w3 x); "gelu", "swish", "relu": w2(act(w1 x)).
    ffn: str = "swiglu"
    # Biases on every attention and feed-forward projection.
    bias: bool = False
    # Multiply token embeddings by sqrt(d_model).
    scale_embeddings: bool = True
    # A learned bias added to the output logits (Marian's final_logits_bias).
    logits_bias: bool = False
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def num_groups(self) -> int:
        """Query heads per key/value head."""
        return self.n_heads // self.n_kv_heads

    def estimated_parameters(self) -> int:
        """Parameters of the weight matrices (norms and biases left out): embeddings, attention
        and SwiGLU of every layer; an upper-bound check before anything is allocated."""
        d, kv = self.d_model, self.n_kv_heads * (self.d_model // max(self.n_heads, 1))
        attention = 2 * d * d + 2 * d * kv  # q, o and k, v projections
        ffn = (3 if self.ffn == "swiglu" else 2) * d * self.ffn_dim
        embeddings = self.vocab_size * d * (1 if self.tie_embeddings else 2)
        layers = self.n_encoder_layers * (attention + ffn)
        layers += self.n_decoder_layers * (2 * attention + ffn)
        return embeddings + layers

    def validate(self) -> None:
        """Raise :class:`ConfigError` listing every invalid field with its value."""
        errors: list[str] = []

        def need(ok: bool, message: str) -> None:
            if not ok:
                errors.append(message)

        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            expected = _FIELD_TYPES[str(f.type)]
            is_bool = isinstance(value, bool)
            if (f.type != "bool" and is_bool) or not isinstance(value, expected):
                errors.append(f"{f.name} must be of type {f.type}, got {value!r}")
        if errors:
            raise ConfigError("invalid model config: " + "; ".join(errors))

        for name, limit in SIZE_LIMITS.items():
            value = getattr(self, name)
            need(value > 0, f"{name} must be > 0, got {value}")
            need(value <= limit, f"{name} must be <= {limit}, got {value}")
        for name in ("rope_base", "norm_eps"):
            value = getattr(self, name)
            need(value > 0 and math.isfinite(value), f"{name} must be finite and > 0, got {value}")
        need(
            not math.isfinite(self.norm_eps) or self.norm_eps < 1,
            f"norm_eps must be < 1, got {self.norm_eps}",
        )
        need(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        for name, allowed in VARIANTS.items():
            value = getattr(self, name)
            need(value in allowed, f"{name} must be one of {list(allowed)}, got {value!r}")
        if not errors and self.estimated_parameters() > MAX_PARAMETERS:
            errors.append(
                f"the model would have about {self.estimated_parameters():,} parameters; the "
                f"limit is {MAX_PARAMETERS:,}"
            )
        if self.n_heads > 0:
            need(
                self.d_model % self.n_heads == 0,
                f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})",
            )
            need(
                self.positions != "rotary" or (self.d_model // self.n_heads) % 2 == 0,
                f"head_dim (d_model / n_heads = {self.d_model / self.n_heads}) must be even "
                "for rotary embeddings",
            )
        need(
            self.positions != "sinusoidal" or self.d_model % 2 == 0,
            f"d_model ({self.d_model}) must be even for sinusoidal positions",
        )
        if self.n_kv_heads > 0:
            need(
                self.n_heads % self.n_kv_heads == 0,
                f"n_heads ({self.n_heads}) must be divisible by n_kv_heads ({self.n_kv_heads})",
            )
        special = {"pad_id": self.pad_id, "bos_id": self.bos_id, "eos_id": self.eos_id,
                   "unk_id": self.unk_id}  # fmt: skip
        for key, value in special.items():
            need(
                0 <= value < self.vocab_size,
                f"{key} must be in [0, vocab_size={self.vocab_size}), got {value}",
            )
        # The decoder start token (bos_id) may be pad (Marian's convention): it is only ever an
        # input, and pad is masked on the source side only.
        distinct = {k: v for k, v in special.items() if k != "bos_id"}
        if len(set(distinct.values())) != len(distinct) or self.bos_id in (
            self.eos_id,
            self.unk_id,
        ):
            errors.append(
                f"special token ids must be distinct (bos_id may equal pad_id), got {special}"
            )
        if errors:
            raise ConfigError("invalid model config: " + "; ".join(errors))

    # ------------------------------------------------------------------ presets and (de)serialising
    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> ModelConfig:
        """A named preset (``tiny``, ``small``, ``medium``), optionally with fields overridden."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        values = {**PRESETS[name], "name": name, **overrides}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> ModelConfig:
        """Build from JSON data, rejecting unknown and missing keys (all reported at once)."""
        if not isinstance(data, dict):
            raise ConfigError(f"model config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        required = known - OPTIONAL_KEYS
        problems = [f"unknown key {k!r}" for k in sorted(set(data) - known)]
        problems += [f"missing key {k!r}" for k in sorted(required - set(data))]
        if problems:
            raise ConfigError("invalid model config: " + "; ".join(problems))
        return cls(**data)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


# Total parameter counts at vocab_size=24000 with tied embeddings (checked by tests/test_config.py):
# tiny 7.38M, small 59.5M, medium 141.1M (targets 7M, 60M, 140M, +-10%).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        d_model=192, n_heads=4, n_kv_heads=2, n_encoder_layers=3, n_decoder_layers=3,
        ffn_dim=512,
    ),
    "small": dict(
        d_model=512, n_heads=8, n_kv_heads=4, n_encoder_layers=6, n_decoder_layers=6,
        ffn_dim=1792,
    ),
    "medium": dict(
        d_model=768, n_heads=12, n_kv_heads=4, n_encoder_layers=8, n_decoder_layers=8,
        ffn_dim=2304,
    ),
}  # fmt: skip
