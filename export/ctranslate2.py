"""Export LingoLite to CTranslate2: one model folder per precision, with proof.

``python -m export.ctranslate2 --size {tiny,small,medium} [--checkpoint DIR] [--out DIR]
[--quantize none|int8|both] [--max-src-len N] [--max-tgt-len N] [--data DIR] [--force]``

The flags, folder conventions, manifest and parity gate are those of ``export.onnx``
(:mod:`export.common`, :mod:`export.parity`). The artifact folder holds the tokenizer,
``parity.json``, ``manifest.json`` (sha256 of every file) and one CTranslate2 model folder per
precision, ``ct2-fp32/`` and ``ct2-int8/`` (``model.bin``, ``config.json``,
``shared_vocabulary.json``), read by ``runtime.ctranslate2_backend``. ``--quantize int8`` keeps
only the int8 model; the float32 one is still built, as the proof that the mapping is exact.

How LingoLite maps onto ``ctranslate2.specs.TransformerSpec`` (both encoder and decoder), for
LingoLite's own architecture (the variants of imported models map as well: post-norm
``pre_norm=False`` with no final norms, LayerNorm gamma and beta, Marian's sinusoidal table as
explicit ``position_encodings``, gelu/swish/relu feed-forward without ``ffn_glu``, the
projections' biases, and the logits bias as the output projection's bias):

- pre-norm layers, RMSNorm (``rms_norm=True``, gamma only, ``layer_norm_epsilon = norm_eps``) and
  a final norm after each stack;
- rotary embeddings on the self-attention of encoder and decoder, none on cross-attention:
  ``rotary_dim = head_dim``, ``rotary_base = rope_base`` and ``rotary_interleave=True``, because
  CTranslate2's interleaved form rotates the adjacent pairs ``(x[2i], x[2i+1])`` by
  ``pos * base^(-2i/d)`` exactly like :class:`lingolite.model.RotaryEmbedding` (``False`` is the
  rotate-half layout of Hugging Face models). With rotary layers the encoder adds no sinusoidal
  position encodings;
- grouped-query attention: ``num_heads_kv = n_kv_heads``; query head ``j`` reads KV head
  ``j // (n_heads / n_kv_heads)`` in both runtimes, so the projections keep their row order;
- fused projections: self-attention ``linear_0 = [wq; wk; wv]`` (rows ``D + 2 h_kv d``),
  cross-attention ``linear_0 = wq`` and ``linear_1 = [wk; wv]``; ``linear_last = wo``;
- SwiGLU: ``ffn_glu=True`` with the SWISH (SiLU) activation on ``linear_0 = w1``,
  ``linear_0_noact = w3``, ``linear_1 = w2``; no biases anywhere;
- embeddings scaled by ``sqrt(d_model)`` (``scale_embeddings``); one matrix for the encoder and
  decoder embeddings and the output projection (CTranslate2 stores it once, as aliases), or the
  separate ``lm_head`` when ``tie_embeddings`` is off;
- the vocabulary is the tokenizer's pieces in id order, so CTranslate2 token ids equal ours (an
  untrained preset has more ids than the built-in tokenizer has pieces: the rest are named
  ``<unused_N>`` and decode as ``<unk>``). Sources are passed whole (``[<2tgt>] + pieces +
  [eos]``) with ``add_source_bos/eos`` off, and decoding starts from ``decoder_start_token =
  "<s>"`` (our bos).

Every option CTranslate2 cannot express is reported before anything is converted (all problems in
one message); the spec is validated before it is saved. The parity gate is the shared one,
through CTranslate2's own search: the float32 model's greedy translations must equal eager
PyTorch's token for token; int8 reports its agreement and, for a trained model, must keep at
least :data:`export.parity.QUANTIZED_MIN_IDENTICAL` of the sentences identical and, with
``--data``, lose at most :data:`export.parity.MAX_BLEU_DROP` BLEU. Step-level logit checks do not
apply: CTranslate2 has no single-step call. A failure leaves the build in ``<out>.failed``
without a manifest and exits 1.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path
from typing import Any, Final

import ctranslate2
import numpy as np
import numpy.typing as npt
from ctranslate2.specs import common_spec, transformer_spec

from export.common import (
    ExportError,
    ExportOptions,
    ExportSource,
    ParityError,
    Progress,
    add_common_arguments,
    export_folder,
    load_source,
    manifest_base,
    package_versions,
    parity_gate,
)
from lingolite.config import ModelConfig
from lingolite.model import LingoLite
from lingolite.tokenizer import TokenId
from lingolite.tokenizers import TextTokenizer
from runtime.ctranslate2_backend import BACKEND, FILES, QUANTIZATION
from runtime.manifest import Manifest, write_manifest

log = logging.getLogger("export.ctranslate2")

QUANTIZE: Final = ("none", "int8", "both")
# Tested with ctranslate2 4.8.5 (the pinned version); 4.6.3 is the first release with pre-norm
# RMSNorm, rotary, GQA and gated FFNs in both stacks (not tested here).
MIN_CT2_VERSION: Final = (4, 6, 3)
UNUSED_PIECE: Final = "<unused_{}>"

FloatArray = npt.NDArray[np.float32]


def model_dir(precision: str) -> str:
    """The sub-folder of a precision's CTranslate2 model."""
    return f"ct2-{precision}"


def vocabulary(tokenizer: TextTokenizer, vocab_size: int) -> list[str]:
    """One token string per model id: the tokenizer's pieces in id order, then ``<unused_N>``."""
    pieces = [tokenizer.id_to_piece(TokenId(i)) for i in range(tokenizer.vocab_size)]
    return pieces + [UNUSED_PIECE.format(i) for i in range(len(pieces), vocab_size)]


def conversion_problems(
    config: ModelConfig, tokenizer: TextTokenizer, options: ExportOptions
) -> list[str]:
    """Every reason this model cannot become a CTranslate2 model (empty if it can)."""
    problems = []
    found = tuple(int(part) for part in ctranslate2.__version__.split(".")[:3] if part.isdigit())
    if found < MIN_CT2_VERSION:
        wanted = ".".join(map(str, MIN_CT2_VERSION))
        problems.append(f"ctranslate2 {ctranslate2.__version__} is too old: need >= {wanted}")
    base = config.rope_base
    if float(np.float32(base)) != base:
        problems.append(
            f"rope_base {base!r} is not exactly representable in float32, which is how "
            f"CTranslate2 stores it ({float(np.float32(base))!r})"
        )
    pieces = vocabulary(tokenizer, max(config.vocab_size, tokenizer.vocab_size))
    if len(set(pieces)) != len(pieces):
        problems.append("the vocabulary has duplicate pieces; CTranslate2 maps tokens by string")
    if options.checkpoint is not None:
        out, ckpt = options.out.resolve(), options.checkpoint.resolve()
        if out == ckpt or ckpt.is_relative_to(out):
            problems.append(f"--out {options.out} would replace the checkpoint folder {ckpt}")
    return problems


# ---------------------------------------------------------------------------- the spec


_ACTIVATIONS: Final = {
    "swiglu": common_spec.Activation.SWISH, "swish": common_spec.Activation.SWISH,
    "gelu": common_spec.Activation.GELU, "relu": common_spec.Activation.RELU,
}  # fmt: skip


def _layer_options(c: ModelConfig) -> dict[str, Any]:
    """Keyword arguments shared by the encoder and decoder specs."""
    rotary: dict[str, Any] = dict(
        rotary_dim=c.head_dim,
        rotary_interleave=True,  # adjacent pairs (x[2i], x[2i+1]), see the module docstring
        rotary_base=c.rope_base,
    )
    return dict(
        pre_norm=c.norm_position == "pre",
        activation=_ACTIVATIONS[c.ffn],
        ffn_glu=c.ffn == "swiglu",
        rms_norm=c.norm == "rmsnorm",
        # The official converters leave num_heads_kv unset for plain multi-head attention.
        num_heads_kv=None if c.n_kv_heads == c.n_heads else c.n_kv_heads,
        **(rotary if c.positions == "rotary" else {}),
    )


def build_spec(model: LingoLite, tokenizer: TextTokenizer) -> transformer_spec.TransformerSpec:
    """Fill a float32 :class:`TransformerSpec` with ``model``'s weights (validated)."""
    c = model.config
    # Copies, not views: spec.optimize(quantization="int8") rescales the arrays in place, which
    # would silently change the model's own weights.
    w = {k: v.detach().cpu().float().numpy().copy() for k, v in model.state_dict().items()}
    encoder = transformer_spec.TransformerEncoderSpec(
        c.n_encoder_layers, c.n_heads, **_layer_options(c)
    )
    decoder = transformer_spec.TransformerDecoderSpec(
        c.n_decoder_layers, c.n_heads, **_layer_options(c)
    )
    spec = transformer_spec.TransformerSpec(encoder, decoder)

    # multiply by sqrt(d_model) or not, as LingoLite._embed does
    encoder.scale_embeddings = decoder.scale_embeddings = c.scale_embeddings
    encoder.embeddings[0].weight = w["embed.weight"]
    decoder.embeddings.weight = w["embed.weight"]
    decoder.projection.weight = w["embed.weight"] if c.tie_embeddings else w["lm_head.weight"]
    if c.logits_bias:
        decoder.projection.bias = w["logits_bias"]
    if model.positions is not None:  # Marian's table, passed whole (CTranslate2 adds it as is)
        table = model.positions.table.numpy().copy()
        encoder.position_encodings.encodings = table
        decoder.position_encodings.encodings = table.copy()

    def norm(spec: Any, key: str) -> None:
        spec.gamma = w[key + ".weight"]
        if c.norm == "layernorm":
            spec.beta = w[key + ".bias"]

    def linear(spec: Any, prefix: str, *parts: str) -> None:
        """``spec`` gets the projections ``parts``, stacked along the output (row) dim."""
        spec.weight = np.concatenate([w[f"{prefix}{part}.weight"] for part in parts], axis=0)
        if c.bias:
            spec.bias = np.concatenate([w[f"{prefix}{part}.bias"] for part in parts], axis=0)

    if model.encoder_norm is not None:  # pre-norm stacks end with a norm
        norm(encoder.layer_norm, "encoder_norm")
        norm(decoder.layer_norm, "decoder_norm")

    def ffn(layer: Any, p: str) -> None:
        norm(layer.ffn.layer_norm, p + "ffn_norm")
        linear(layer.ffn.linear_0, p + "ffn.", "w1")  # through the activation (SwiGLU's gate)
        if c.ffn == "swiglu":
            linear(layer.ffn.linear_0_noact, p + "ffn.", "w3")
        linear(layer.ffn.linear_1, p + "ffn.", "w2")

    for i, layer in enumerate(encoder.layer):
        p = f"encoder_layers.{i}."
        attn = layer.self_attention
        norm(attn.layer_norm, p + "attn_norm")
        linear(attn.linear[0], p + "attn.", "wq", "wk", "wv")
        linear(attn.linear[1], p + "attn.", "wo")
        ffn(layer, p)
    for i, layer in enumerate(decoder.layer):
        p = f"decoder_layers.{i}."
        attn = layer.self_attention
        norm(attn.layer_norm, p + "self_norm")
        linear(attn.linear[0], p + "self_attn.", "wq", "wk", "wv")
        linear(attn.linear[1], p + "self_attn.", "wo")
        cross = layer.attention
        norm(cross.layer_norm, p + "cross_norm")
        linear(cross.linear[0], p + "cross_attn.", "wq")
        linear(cross.linear[1], p + "cross_attn.", "wk", "wv")
        linear(cross.linear[2], p + "cross_attn.", "wo")
        ffn(layer, p)

    pieces = vocabulary(tokenizer, c.vocab_size)
    spec.register_source_vocabulary(pieces)
    spec.register_target_vocabulary(pieces)
    spec.config.unk_token = pieces[c.unk_id]
    spec.config.bos_token = pieces[c.bos_id]
    spec.config.eos_token = pieces[c.eos_id]
    spec.config.decoder_start_token = pieces[c.bos_id]
    spec.config.add_source_bos = False  # the source already is [<2tgt>] + pieces + [eos]
    spec.config.add_source_eos = False
    spec.config.layer_norm_epsilon = c.norm_eps
    spec.validate()
    return spec


def save_model(model: LingoLite, tokenizer: TextTokenizer, folder: Path, precision: str) -> None:
    """Convert ``model`` and save the CTranslate2 files of ``precision`` into ``folder``."""
    spec = build_spec(model, tokenizer)
    spec.optimize(quantization=QUANTIZATION[precision])
    spec.save(str(folder))
    written = sorted(p.name for p in folder.iterdir())
    if written != sorted(FILES.values()):
        raise ExportError(
            f"CTranslate2 wrote {written} into {folder}, expected {sorted(FILES.values())}"
        )


def export_ctranslate2(options: ExportOptions, quantize: str = "both") -> Path:
    """Convert, gate on parity and write the artifact folder; returns it.

    For the shipped model, ``export_ctranslate2(ExportOptions(out=Path("artifacts/tiny-ct2"),
    checkpoint=Path("pretrained/lingolite-tiny-multi30k")))`` writes ``ct2-fp32/`` and
    ``ct2-int8/`` behind the parity gate. Every invalid option is refused before any work:

    >>> from export.common import ExportOptions
    >>> export_ctranslate2(ExportOptions(out=Path("artifacts/unused")), quantize="int4")
    Traceback (most recent call last):
    ...
    export.common.ExportError: --quantize 'int4' is not one of ('none', 'int8', 'both')
    """
    if quantize not in QUANTIZE:
        raise ExportError(f"--quantize {quantize!r} is not one of {QUANTIZE}")
    options.check()
    precisions = ["fp32"] if quantize == "none" else ["fp32", "int8"]
    progress = Progress(3 + len(precisions))
    with export_folder(options.out, force=options.force) as folder:
        with progress.stage("building the model and tokenizer"):
            src = load_source(options)
            problems = conversion_problems(src.config, src.tokenizer, options)
            if problems:
                raise ExportError("cannot export to CTranslate2: " + "; ".join(problems))
        data = manifest_base(src, folder, "export.ctranslate2", quantize=quantize)
        for precision in precisions:
            with progress.stage(f"converting to CTranslate2 {QUANTIZATION[precision]}"):
                (folder / model_dir(precision)).mkdir()
                save_model(src.model, src.tokenizer, folder / model_dir(precision), precision)
            data["variants"][f"{BACKEND}-{precision}"] = _variant(precision)
        data["versions"] = package_versions("ctranslate2")
        with progress.stage("parity gate against eager PyTorch"):
            parity_gate(src, Manifest(folder, data))
        if quantize == "int8":  # the float32 model was parity's proof that the mapping is exact
            shutil.rmtree(folder / model_dir("fp32"))
            del data["variants"][f"{BACKEND}-fp32"]
        with progress.stage("writing manifest.json"):
            write_manifest(folder, data)
    _log_summary(options.out, src, progress)
    return options.out


def _variant(precision: str) -> dict[str, Any]:
    return {
        "backend": BACKEND,
        "precision": precision,
        "files": {role: f"{model_dir(precision)}/{name}" for role, name in FILES.items()},
        "quantization": QUANTIZATION[precision],
    }


def _log_summary(out: Path, src: ExportSource, progress: Progress) -> None:
    sizes = ", ".join(
        f"{p.parent.name}/{p.name} {p.stat().st_size / 2**20:.1f} MiB"
        for p in sorted(out.glob("*/model.bin"))
    )
    state = "trained" if src.trained else "UNTRAINED"
    log.info("exported %s model to %s in %.1f s: %s", state, out, progress.elapsed(), sizes)


def main(argv: list[str] | None = None, prog: str = "python -m export.ctranslate2") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_common_arguments(parser, "ctranslate2")
    parser.add_argument(
        "--quantize",
        choices=QUANTIZE,
        default="both",
        help="an int8 model beside the float32 one (both), instead (int8), or none",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for name in ("export", "runtime", "lingolite"):
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        export_ctranslate2(ExportOptions.from_args(args, "ctranslate2"), quantize=args.quantize)
    except ParityError as exc:
        log.error("%s", exc)
        return 1
    except (ExportError, ValueError, FileExistsError) as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
