"""Import a Hugging Face Marian (OPUS-MT) model folder as a LingoLite checkpoint folder.

``lingolite import-marian SRC_DIR --out DIR`` reads a local folder as the Hugging Face hub holds
``Helsinki-NLP/opus-mt-*`` models (``config.json``, ``model.safetensors``,
``source.spm``, ``target.spm``, ``vocab.json``, ``tokenizer_config.json``)
and writes a checkpoint folder (``config.json`` + ``model.safetensors`` + the tokenizer files)
that every LingoLite stage takes unchanged: the exporters, the runtimes, the server.

A Marian model is LingoLite's encoder-decoder with these :class:`~lingolite.config.ModelConfig`
variants (the mapping is :func:`marian_config`)::

    norm="layernorm", norm_position="post", positions="sinusoidal", ffn=<activation_function>,
    bias=True, scale_embeddings=<scale_embedding>, logits_bias=True,
    n_kv_heads=n_heads (full multi-head attention), bos_id=<decoder_start_token_id> (pad)

and its weights map one to one (:data:`_LAYER_NAMES`), but for one change: pad's logit bias
becomes :data:`PAD_LOGIT_BIAS`, so that pad, Marian's decoder start token, is never generated
(what ``bad_words_ids=[[pad]]`` in opus-mt's generation config does). The sinusoidal tables are
computed, not read, and checked against the file's copies when it has them. Every config option
LingoLite does not implement is refused, all at once, naming the field and its value.

Weights: only ``model.safetensors`` is read, with ``safetensors`` (a JSON header and raw bytes: no
code can run). A folder with only ``pytorch_model.bin`` is refused, naming where to get the
safetensors file: a ``.bin`` is a pickle, and LingoLite never unpickles, not even through
PyTorch's weights-only loading mode, whose restricted unpickler has had bypasses
(CVE-2025-32434). Weights are converted to float32.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from lingolite.checkpoint import CheckpointError, check_finite, check_state_dict, write_model_files
from lingolite.config import ConfigError, ModelConfig
from lingolite.model import LingoLite, SinusoidalPositions
from lingolite.tokenizer import TokenId
from lingolite.utils import atomic_directory, read_json_object, resolve_inside

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
PICKLE_FILE = "pytorch_model.bin"
# The activations of Marian's feed-forward (transformers' ACT2FN names) and LingoLite's.
ACTIVATIONS = {"swish": "swish", "silu": "swish", "gelu": "gelu", "relu": "relu"}
# Flags of older Marian config.json files (BART-era keys) and the only value LingoLite runs.
_FIXED_FLAGS: dict[str, object] = {
    "normalize_before": False,
    "normalize_embedding": False,
    "add_final_layer_norm": False,
    "static_position_embeddings": True,
    "add_bias_logits": False,
    "share_encoder_decoder_embeddings": True,
    "is_decoder": False,
}
# The logit bias the importer gives pad: pad only starts the decoder and is never an output
# (transformers bans it with the generation config's bad_words_ids, CTranslate2's converter drops
# it from the vocabulary). exp(-100) is about 4e-44, below float64's resolution next to any real
# token's probability, so pad gets no probability mass in the search's float64 arithmetic; and
# float32 still resolves 1e-5 at that magnitude, so the parity gates' 1e-4 logit checks hold
# (-1e4, where a float32 step is 1e-3, did not).
PAD_LOGIT_BIAS = -100.0
# Default static lengths of an imported model (at most its max_position_embeddings): the decoder's
# KV cache has max_tgt_len slots, and longer inputs are split into sentences by the runtime.
DEFAULT_MAX_LEN = 256


class MarianImportError(ValueError):
    """A Marian folder LingoLite cannot import; the message lists every problem."""


def _int_field(hf: dict[str, Any], key: str, problems: list[str]) -> int:
    value = hf.get(key)
    if type(value) is not int:
        problems.append(f"{key} must be an integer, got {value!r}")
        return 0
    return value


def marian_config(
    hf: dict[str, Any], *, unk_id: int, max_src_len: int | None = None,
    max_tgt_len: int | None = None,
) -> ModelConfig:  # fmt: skip
    """The :class:`ModelConfig` of a Marian ``config.json`` (as a dict), with static lengths
    ``max_src_len``/``max_tgt_len`` (default: :data:`DEFAULT_MAX_LEN`, or the model's
    ``max_position_embeddings`` if smaller); raises
    :class:`MarianImportError` naming every unsupported field and value at once.

    >>> hf = {"model_type": "marian", "vocab_size": 100, "d_model": 32, "encoder_layers": 2,
    ...       "decoder_layers": 2, "encoder_attention_heads": 4, "decoder_attention_heads": 4,
    ...       "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "max_position_embeddings": 64,
    ...       "activation_function": "swish", "scale_embedding": True, "pad_token_id": 99,
    ...       "eos_token_id": 0, "decoder_start_token_id": 99}
    >>> c = marian_config(hf, unk_id=1, max_src_len=64, max_tgt_len=64)
    >>> c.norm, c.norm_position, c.positions, c.ffn, c.n_kv_heads, c.bos_id == c.pad_id
    ('layernorm', 'post', 'sinusoidal', 'swish', 4, True)
    >>> marian_config({**hf, "activation_function": "gelu_new", "decoder_ffn_dim": 32},
    ...               unk_id=1, max_src_len=256)
    Traceback (most recent call last):
    ...
    lingolite.import_marian.MarianImportError: unsupported Marian config: activation_function is
    'gelu_new', LingoLite implements ['gelu', 'relu', 'silu', 'swish']; decoder_ffn_dim (32) must
    equal encoder_ffn_dim (64); max_src_len 256 exceeds max_position_embeddings 64
    """
    problems: list[str] = []
    if hf.get("model_type") != "marian":
        problems.append(f"model_type is {hf.get('model_type')!r}, not 'marian'")
    sizes = {
        key: _int_field(hf, key, problems)
        for key in ("vocab_size", "d_model", "encoder_layers", "decoder_layers",
                    "encoder_attention_heads", "encoder_ffn_dim", "max_position_embeddings",
                    "pad_token_id", "decoder_start_token_id")
    }  # fmt: skip
    eos = hf.get("eos_token_id")
    if type(eos) is not int:
        problems.append(f"eos_token_id must be one integer, got {eos!r}")
        eos = 0
    act = hf.get("activation_function", "gelu")
    if act not in ACTIVATIONS:
        problems.append(
            f"activation_function is {act!r}, LingoLite implements {sorted(ACTIVATIONS)}"
        )
    for key, encoder_key in (("decoder_attention_heads", "encoder_attention_heads"),
                             ("decoder_ffn_dim", "encoder_ffn_dim")):  # fmt: skip
        if hf.get(key, hf.get(encoder_key)) != hf.get(encoder_key):
            problems.append(
                f"{key} ({hf.get(key)!r}) must equal {encoder_key} ({hf.get(encoder_key)!r})"
            )
    decoder_vocab = hf.get("decoder_vocab_size")
    if decoder_vocab is not None and decoder_vocab != hf.get("vocab_size"):
        problems.append(
            f"decoder_vocab_size ({decoder_vocab!r}) differs from vocab_size "
            f"({hf.get('vocab_size')!r}): separate target vocabularies are not supported"
        )
    for key, want in _FIXED_FLAGS.items():
        if key in hf and hf[key] != want:
            problems.append(f"{key} is {hf[key]!r}; LingoLite runs {want!r} only")
    if type(hf.get("scale_embedding", False)) is not bool:
        problems.append(f"scale_embedding must be true or false, got {hf['scale_embedding']!r}")
    positions = sizes["max_position_embeddings"]
    default = min(DEFAULT_MAX_LEN, positions) if positions > 0 else DEFAULT_MAX_LEN
    max_src_len = default if max_src_len is None else max_src_len
    max_tgt_len = default if max_tgt_len is None else max_tgt_len
    for name, value in (("max_src_len", max_src_len), ("max_tgt_len", max_tgt_len)):
        if positions and value > positions:
            problems.append(f"{name} {value} exceeds max_position_embeddings {positions}")
    if problems:
        raise MarianImportError("unsupported Marian config: " + "; ".join(problems))
    heads = sizes["encoder_attention_heads"]
    try:
        return ModelConfig(
            vocab_size=sizes["vocab_size"],
            d_model=sizes["d_model"],
            n_heads=heads,
            n_kv_heads=heads,
            n_encoder_layers=sizes["encoder_layers"],
            n_decoder_layers=sizes["decoder_layers"],
            ffn_dim=sizes["encoder_ffn_dim"],
            max_src_len=max_src_len,
            max_tgt_len=max_tgt_len,
            rope_base=10000.0,
            norm_eps=1e-5,  # torch.nn.LayerNorm's default, which Marian's layers use
            dropout=float(hf.get("dropout", 0.1)),
            tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
            pad_id=TokenId(sizes["pad_token_id"]),
            bos_id=TokenId(sizes["decoder_start_token_id"]),
            eos_id=TokenId(eos),
            unk_id=TokenId(unk_id),
            norm="layernorm",
            norm_position="post",
            positions="sinusoidal",
            ffn=ACTIVATIONS[act],
            bias=True,
            scale_embeddings=bool(hf.get("scale_embedding", False)),
            logits_bias=True,
            name="marian",
        )
    except ConfigError as exc:
        raise MarianImportError(f"the Marian config gives an invalid model: {exc}") from exc


# Marian's per-layer parameter names -> LingoLite's (prefix ``model.encoder.layers.{i}.`` ->
# ``encoder_layers.{i}.``, ``model.decoder.layers.{i}.`` -> ``decoder_layers.{i}.``).
_PROJECTIONS = {"q_proj": "wq", "k_proj": "wk", "v_proj": "wv", "out_proj": "wo"}
_LAYER_NAMES: dict[str, dict[str, str]] = {
    "encoder": {
        **{f"self_attn.{a}": f"attn.{b}" for a, b in _PROJECTIONS.items()},
        "self_attn_layer_norm": "attn_norm",
        "fc1": "ffn.w1",
        "fc2": "ffn.w2",
        "final_layer_norm": "ffn_norm",
    },
    "decoder": {
        **{f"self_attn.{a}": f"self_attn.{b}" for a, b in _PROJECTIONS.items()},
        **{f"encoder_attn.{a}": f"cross_attn.{b}" for a, b in _PROJECTIONS.items()},
        "self_attn_layer_norm": "self_norm",
        "encoder_attn_layer_norm": "cross_norm",
        "fc1": "ffn.w1",
        "fc2": "ffn.w2",
        "final_layer_norm": "ffn_norm",
    },
}
# Copies of the shared embedding that a file may hold (tied, so they must equal it).
_EMBEDDING_COPIES = ("model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight")
_POSITION_TABLES = ("model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight")


def marian_state(hf_state: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """LingoLite's state dict from a Marian one (float32); raises :class:`MarianImportError`
    listing every missing, unexpected or inconsistent tensor."""
    problems: list[str] = []
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def take(hf_key: str, key: str) -> None:
        if hf_key not in hf_state:
            problems.append(f"missing tensor {hf_key!r}")
            return
        used.add(hf_key)
        state[key] = hf_state[hf_key].to(torch.float32)

    take("model.shared.weight", "embed.weight")
    if "final_logits_bias" in hf_state:
        used.add("final_logits_bias")
        state["logits_bias"] = hf_state["final_logits_bias"].to(torch.float32).reshape(-1)
    else:  # a folder saved without it: Marian's output bias is then zero
        state["logits_bias"] = torch.zeros(config.vocab_size)
    state["logits_bias"][config.pad_id] = PAD_LOGIT_BIAS
    if config.tie_embeddings:
        copies = [k for k in (*_EMBEDDING_COPIES, "lm_head.weight") if k in hf_state]
    else:
        copies = [k for k in _EMBEDDING_COPIES if k in hf_state]
        take("lm_head.weight", "lm_head.weight")
    shared = state.get("embed.weight")
    for key in copies:
        used.add(key)
        if shared is not None and not torch.equal(hf_state[key].to(torch.float32), shared):
            problems.append(f"{key} differs from model.shared.weight: untied embeddings")
    table = SinusoidalPositions(config.d_model, 1, config.rope_base)  # for the formula only
    for key in _POSITION_TABLES:
        if key not in hf_state:
            continue
        used.add(key)
        found = hf_state[key].to(torch.float32)
        ours = type(table)(config.d_model, found.shape[0], config.rope_base).table
        if found.shape != ours.shape or not torch.allclose(found, ours, atol=1e-5):
            problems.append(f"{key} is not Marian's sinusoidal table (sines, then cosines)")
    for stack, layers in (("encoder", config.n_encoder_layers),
                          ("decoder", config.n_decoder_layers)):  # fmt: skip
        for i in range(layers):
            for hf_name, name in _LAYER_NAMES[stack].items():
                for part in ("weight", "bias"):
                    take(f"model.{stack}.layers.{i}.{hf_name}.{part}",
                         f"{stack}_layers.{i}.{name}.{part}")  # fmt: skip
    problems += [f"unexpected tensor {k!r}" for k in sorted(hf_state.keys() - used)]
    if problems:
        raise MarianImportError("cannot map the Marian weights: " + "; ".join(problems))
    return state


def read_hf_weights(folder: Path) -> tuple[dict[str, torch.Tensor], Path]:
    """The tensors of a Hugging Face folder's ``model.safetensors``; a folder with only
    ``pytorch_model.bin`` (a pickle) is refused with the way to get safetensors (see the module
    docstring)."""
    try:
        path = resolve_inside(folder, SAFETENSORS_FILE, "weights file")
        pickled = resolve_inside(folder, PICKLE_FILE, "weights file")
    except ValueError as exc:
        raise MarianImportError(str(exc)) from exc
    if not path.is_file():
        if pickled.is_file():
            raise MarianImportError(
                f"{folder} has only {PICKLE_FILE}, a pickle, which LingoLite never loads (a "
                f"pickle can run code). Get {SAFETENSORS_FILE} instead: most Helsinki-NLP "
                "models have one on the Hugging Face hub (download it with the other files), "
                "and for the others the hub's safetensors conversion pull request has it"
            )
        raise MarianImportError(
            f"{folder} has no {SAFETENSORS_FILE}: not a Hugging Face model folder"
        )
    try:
        return load_file(str(path)), path
    except (SafetensorError, OSError, ValueError) as exc:
        raise MarianImportError(f"{path} is not a valid safetensors file: {exc}") from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unk_id(src_dir: Path) -> int:
    """The id of ``<unk>`` in the folder's ``vocab.json`` (the piece -> id map)."""
    path = resolve_inside(src_dir, "vocab.json", "vocabulary")
    vocab = read_json_object(path, MarianImportError, f"{path} is missing")
    unk = vocab.get("<unk>")
    if type(unk) is not int:
        raise MarianImportError(f"{path} has no integer id for '<unk>', got {unk!r}")
    return unk


def import_marian(
    src_dir: Path | str, out: Path | str, *, max_src_len: int | None = None,
    max_tgt_len: int | None = None, force: bool = False,
) -> Path:  # fmt: skip
    """Convert the Marian folder ``src_dir`` into the LingoLite checkpoint folder ``out``
    (written to a temporary folder, then renamed; ``force`` replaces an existing ``out``)."""
    src_dir, out = Path(src_dir), Path(out)
    if not src_dir.is_dir():
        raise MarianImportError(f"{src_dir} does not exist or is not a folder")
    config_path = resolve_inside(src_dir, CONFIG_FILE, "config file")
    hf = read_json_object(config_path, MarianImportError, f"{config_path} is missing")
    config = marian_config(
        hf, unk_id=_unk_id(src_dir), max_src_len=max_src_len, max_tgt_len=max_tgt_len
    )
    hf_state, weights_path = read_hf_weights(src_dir)
    state = marian_state(hf_state, config)
    model = LingoLite(config)
    try:
        check_finite(state, str(weights_path))
        check_state_dict(model.state_dict(), state, str(weights_path))
    except CheckpointError as exc:
        raise MarianImportError(str(exc)) from exc
    model.load_state_dict(state)
    from lingolite.marian_tokenizer import MarianTokenizer

    tokenizer = MarianTokenizer.from_hf_folder(src_dir)
    if tokenizer.vocab_size > config.vocab_size:
        raise MarianImportError(
            f"the tokenizer has {tokenizer.vocab_size} pieces, the model {config.vocab_size}"
        )
    extra = {
        "training": {"pairs": list(tokenizer.directions)},
        "imported": {
            "format": "huggingface-marian",
            "source": str(src_dir.resolve()),
            "weights": {"file": weights_path.name, "sha256": _sha256(weights_path)},
            "config": {k: hf[k] for k in sorted(hf) if not isinstance(hf[k], dict)},
        },
    }
    with atomic_directory(out, force=force) as tmp:
        write_model_files(model, tmp, extra=extra)
        tokenizer.save(tmp)
    log.info(
        "imported %s (%.1fM parameters, %s) into %s",
        src_dir,
        model.num_parameters() / 1e6,
        ", ".join(tokenizer.directions),
        out,
    )
    return out


def main(argv: Sequence[str] | None = None, prog: str = "python -m lingolite.import_marian") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="Import a Hugging Face Marian (OPUS-MT) folder as a checkpoint."
    )
    parser.add_argument("src_dir", type=Path, help="local Hugging Face Marian model folder")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    for flag in ("--max-src-len", "--max-tgt-len"):
        parser.add_argument(
            flag, type=int, default=None,
            help=f"static length in tokens (default {DEFAULT_MAX_LEN}, or the model's "
            "max_position_embeddings if smaller)",
        )  # fmt: skip
    parser.add_argument("--force", action="store_true", help="replace an existing --out folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        import_marian(
            args.src_dir, args.out, max_src_len=args.max_src_len,
            max_tgt_len=args.max_tgt_len, force=args.force,
        )  # fmt: skip
    except (MarianImportError, FileExistsError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["MarianImportError", "import_marian", "main", "marian_config", "marian_state"]
