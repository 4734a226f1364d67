"""Convert a LingoLite checkpoint into a CTranslate2 Transformer model, gated by parity.

    python -m export.ctranslate2 --checkpoint ckpt/ --out ct2-int8/ --quantization int8 \\
        --data ../shared/data/multi30k

How LingoLite maps onto ``ctranslate2.specs.TransformerSpec`` (both encoder and decoder):

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
- the vocabulary is the tokenizer's pieces in id order, so CTranslate2 token ids equal ours.
  Sources are passed whole (``[<2tgt>] + pieces + [eos]``) with ``add_source_bos/eos`` off, and
  decoding starts from ``decoder_start_token = "<s>"`` (our bos).

The conversion checks every option CTranslate2 cannot express before failing (all problems in one
message), refuses a non-empty output folder unless ``force``, validates the spec before saving
and writes the folder atomically. It is then gated by parity: greedy translations of at least
:data:`MIN_PARITY_SENTENCES` sentences must match eager PyTorch token for token (float32). An int8
model must in addition be backed by a float32 conversion of the same weights that matches exactly
and, for a trained checkpoint (its config.json has a ``training`` section), agree with eager on at
least :data:`DEFAULT_MIN_INT8_AGREEMENT` of the sentences; an untrained model's logits are nearly
flat, so its int8 agreement is reported only. The report is written to ``parity.json``; a failed
gate leaves ``out`` untouched, moves the conversion to ``<out>.failed`` (without
``lingolite.json``, so no runtime loads it) and exits non-zero.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import ctranslate2
import numpy as np
import numpy.typing as npt
import torch
from ctranslate2.specs import common_spec, transformer_spec
from tqdm import tqdm

from lingolite.checkpoint import CheckpointError, load_pretrained, read_config
from lingolite.config import ModelConfig
from lingolite.data import DataError, load_directions
from lingolite.generate import translate_ids
from lingolite.model import LingoLite
from lingolite.search import SearchConfig, TokenIds
from lingolite.tokenizer import CONFIG_FILE, MODEL_FILE, Tokenizer, TokenizerError
from lingolite.utils import EXPORT_MARKERS, atomic_directory
from runtime.ctranslate2_backend import (
    FORMAT_VERSION,
    METADATA_FILE,
    PARITY_FILE,
    CT2Translator,
)
from runtime.parity import QUANTIZED_MIN_IDENTICAL

log = logging.getLogger(__name__)

QUANTIZATIONS: Final = ("float32", "int8_float32", "int8")
# Tested with ctranslate2 4.8.5 (the pinned version). The benchmarks issue names 4.6.3 as the first
# release with pre-norm RMSNorm, rotary, GQA and gated FFNs in both stacks (not tested here).
MIN_CT2_VERSION: Final = (4, 6, 3)
MIN_PARITY_SENTENCES: Final = 50
PARITY_SPLIT: Final = "test_2016_flickr"
# int8 rounds weights and activations by ~1e-2, so greedy search takes another token wherever the
# top two logits are closer than that, and the rest of that sentence differs. A trained model's
# margins are usually far wider: int8 of a trained toy model agreed on 240 of 240 sentences, while a
# broken quantization agrees on next to nothing (0 of 240 when the weights were corrupted). The
# float32 conversion already proves the mapping exact. The floor is the ONNX/ExecuTorch one
# (runtime.parity.QUANTIZED_MIN_IDENTICAL, where its value is justified with measurements).
DEFAULT_MIN_INT8_AGREEMENT: Final = QUANTIZED_MIN_IDENTICAL
FAILED_SUFFIX: Final = ".failed"
EXAMPLES_IN_REPORT: Final = 5

FloatArray = npt.NDArray[np.float32]


class ConversionError(ValueError):
    """A checkpoint or option CTranslate2 cannot take; the message lists every problem."""


class ParityError(RuntimeError):
    """The converted model translates differently from eager PyTorch; carries the report."""

    def __init__(self, report: dict[str, Any], kept: Path) -> None:
        failed = [
            f"{name} agreement {part['agreement']} < {part['threshold']}"
            for name, part in report.items()
            if isinstance(part, dict) and part.get("passed") is False
        ]
        super().__init__(
            f"CTranslate2 parity gate failed: {'; '.join(failed)}; the conversion and its "
            f"{PARITY_FILE} are kept in {kept}"
        )
        self.report = report
        self.kept = kept


# ---------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class ConversionRequest:
    """What the checks look at: the checkpoint's config, its tokenizer and the options."""

    config: ModelConfig
    tokenizer: Tokenizer | None  # None when it failed to load: ``tokenizer_error`` says why
    tokenizer_error: str | None
    quantization: str
    checkpoint: Path
    out: Path
    max_length: int  # resolved: max_tgt_len when not given
    num_sentences: int
    min_int8_agreement: float


def _check_ctranslate2(request: ConversionRequest) -> list[str]:
    found = tuple(int(part) for part in ctranslate2.__version__.split(".")[:3] if part.isdigit())
    if found < MIN_CT2_VERSION:
        wanted = ".".join(map(str, MIN_CT2_VERSION))
        return [f"ctranslate2 {ctranslate2.__version__} is too old: need >= {wanted}"]
    return []


def _check_quantization(request: ConversionRequest) -> list[str]:
    if request.quantization not in QUANTIZATIONS:
        return [f"quantization {request.quantization!r} is not one of {list(QUANTIZATIONS)}"]
    return []


def _check_tokenizer(request: ConversionRequest) -> list[str]:
    tok, c = request.tokenizer, request.config
    if tok is None:
        return [f"tokenizer: {request.tokenizer_error}"]
    problems = []
    if tok.vocab_size != c.vocab_size:
        problems.append(
            f"the tokenizer has {tok.vocab_size} pieces but the model's vocab_size is "
            f"{c.vocab_size}; CTranslate2 needs one token string per embedding row"
        )
    for name in ("pad_id", "bos_id", "eos_id", "unk_id"):
        if getattr(tok, name) != getattr(c, name):
            problems.append(
                f"{name} is {getattr(c, name)} in the model but {getattr(tok, name)} in the "
                "tokenizer"
            )
    pieces = [tok.id_to_piece(i) for i in range(tok.vocab_size)]
    if len(set(pieces)) != len(pieces):
        problems.append("the tokenizer has duplicate pieces; CTranslate2 maps tokens by string")
    return problems


def _check_rotary_base(request: ConversionRequest) -> list[str]:
    base = request.config.rope_base
    if float(np.float32(base)) != base:
        return [
            f"rope_base {base!r} is not exactly representable in float32, which is how "
            f"CTranslate2 stores it ({float(np.float32(base))!r})"
        ]
    return []


def _check_paths(request: ConversionRequest) -> list[str]:
    out, ckpt = request.out.resolve(), request.checkpoint.resolve()
    if out == ckpt or ckpt.is_relative_to(out):
        return [f"output folder {request.out} would replace the checkpoint folder {ckpt}"]
    return []


def _check_parity_options(request: ConversionRequest) -> list[str]:
    problems = []
    if request.num_sentences < MIN_PARITY_SENTENCES:
        problems.append(
            f"num_sentences must be >= {MIN_PARITY_SENTENCES}, got {request.num_sentences}"
        )
    if not 0.0 <= request.min_int8_agreement <= 1.0:
        problems.append(f"min_int8_agreement must be in [0, 1], got {request.min_int8_agreement}")
    if not 1 <= request.max_length <= request.config.max_tgt_len:
        problems.append(
            f"max_length must be in [1, {request.config.max_tgt_len}], got {request.max_length}"
        )
    return problems


Check = Callable[[ConversionRequest], list[str]]
# Every check runs before any failure is raised, so the user sees all problems at once.
CHECKS: list[Check] = [
    _check_ctranslate2,
    _check_quantization,
    _check_tokenizer,
    _check_rotary_base,
    _check_paths,
    _check_parity_options,
]


def check_convertible(request: ConversionRequest) -> None:
    """Raise :class:`ConversionError` listing the problems found by every check."""
    problems = [problem for check in CHECKS for problem in check(request)]
    if problems:
        raise ConversionError(
            "cannot convert this LingoLite checkpoint to CTranslate2:\n- " + "\n- ".join(problems)
        )


# ---------------------------------------------------------------------------- the spec


def _layer_options(c: ModelConfig) -> dict[str, Any]:
    """Keyword arguments shared by the encoder and decoder specs."""
    return dict(
        pre_norm=True,
        activation=common_spec.Activation.SWISH,
        ffn_glu=True,
        rms_norm=True,
        # The official converters leave num_heads_kv unset for plain multi-head attention.
        num_heads_kv=None if c.n_kv_heads == c.n_heads else c.n_kv_heads,
        rotary_dim=c.head_dim,
        rotary_interleave=True,  # adjacent pairs (x[2i], x[2i+1]), see the module docstring
        rotary_base=c.rope_base,
    )


def build_spec(model: LingoLite, tokenizer: Tokenizer) -> transformer_spec.TransformerSpec:
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

    encoder.scale_embeddings = True  # multiply by sqrt(d_model), as LingoLite._embed does
    decoder.scale_embeddings = True
    encoder.embeddings[0].weight = w["embed.weight"]
    decoder.embeddings.weight = w["embed.weight"]
    decoder.projection.weight = w["embed.weight"] if c.tie_embeddings else w["lm_head.weight"]
    encoder.layer_norm.gamma = w["encoder_norm.weight"]
    decoder.layer_norm.gamma = w["decoder_norm.weight"]

    def fused(prefix: str, *parts: str) -> FloatArray:  # stacked along the output (row) dim
        return np.concatenate([w[f"{prefix}{part}.weight"] for part in parts], axis=0)

    def ffn(layer: Any, p: str) -> None:
        layer.ffn.layer_norm.gamma = w[p + "ffn_norm.weight"]
        layer.ffn.linear_0.weight = w[p + "ffn.w1.weight"]  # gate, through SiLU
        layer.ffn.linear_0_noact.weight = w[p + "ffn.w3.weight"]
        layer.ffn.linear_1.weight = w[p + "ffn.w2.weight"]

    for i, layer in enumerate(encoder.layer):
        p = f"encoder_layers.{i}."
        attn = layer.self_attention
        attn.layer_norm.gamma = w[p + "attn_norm.weight"]
        attn.linear[0].weight = fused(p + "attn.", "wq", "wk", "wv")
        attn.linear[1].weight = w[p + "attn.wo.weight"]
        ffn(layer, p)
    for i, layer in enumerate(decoder.layer):
        p = f"decoder_layers.{i}."
        attn = layer.self_attention
        attn.layer_norm.gamma = w[p + "self_norm.weight"]
        attn.linear[0].weight = fused(p + "self_attn.", "wq", "wk", "wv")
        attn.linear[1].weight = w[p + "self_attn.wo.weight"]
        cross = layer.attention
        cross.layer_norm.gamma = w[p + "cross_norm.weight"]
        cross.linear[0].weight = w[p + "cross_attn.wq.weight"]
        cross.linear[1].weight = fused(p + "cross_attn.", "wk", "wv")
        cross.linear[2].weight = w[p + "cross_attn.wo.weight"]
        ffn(layer, p)

    pieces = [tokenizer.id_to_piece(i) for i in range(c.vocab_size)]
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


def save_model(
    model: LingoLite, tokenizer: Tokenizer, folder: Path, quantization: str, source: str
) -> None:
    """Write the CTranslate2 model, the tokenizer files and lingolite.json into ``folder``."""
    spec = build_spec(model, tokenizer)
    spec.optimize(quantization=quantization)
    spec.save(str(folder))
    tokenizer.save(folder)
    metadata = {
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "quantization": quantization,
        "source": source,
        "tokenizer": {"config": CONFIG_FILE, "model": MODEL_FILE},
        "versions": _versions(),
    }
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")


def _versions() -> dict[str, str]:
    return {
        "lingolite": importlib.metadata.version("lingolite"),
        "ctranslate2": ctranslate2.__version__,
        "torch": torch.__version__,
    }


# ---------------------------------------------------------------------------- parity


def parity_sources(
    tokenizer: Tokenizer, config: ModelConfig, data: Path | None, count: int, seed: int = 0
) -> tuple[list[TokenIds], str]:
    """``count`` source id lists and a description of where they come from.

    With ``data``, the first non-empty lines of ``test_2016_flickr`` in every direction between
    the tokenizer's languages, taken in turn; without it, seeded random pieces (the gate checks
    that two runtimes compute the same function, which needs no real text).
    """
    languages = tokenizer.languages
    if data is not None:
        directions = [(s, t) for s in languages for t in languages if s != t]
        per_direction: dict[tuple[str, str], list[str]] = {d: [] for d in directions}
        for pair in load_directions(data, PARITY_SPLIT, directions):
            if pair.src:
                per_direction[(pair.src_lang, pair.tgt_lang)].append(pair.src)
        sources: list[TokenIds] = []
        for row in range(max(map(len, per_direction.values()), default=0)):
            for (_, tgt), texts in per_direction.items():
                if row < len(texts) and len(sources) < count:
                    sources.append(tokenizer.encode_source(texts[row], tgt, config.max_src_len))
        if len(sources) < count:
            raise DataError(f"{data} has {len(sources)} {PARITY_SPLIT} sentences, need {count}")
        names = ", ".join(f"{s}-{t}" for s, t in directions)
        return sources, f"{data} {PARITY_SPLIT} ({names})"
    rng = np.random.default_rng(seed)
    special = {config.pad_id, config.bos_id, config.eos_id, config.unk_id}
    special |= {tokenizer.lang_id(lang) for lang in languages}
    ordinary = np.array([i for i in range(config.vocab_size) if i not in special])
    longest = max(1, min(30, config.max_src_len - 2))
    sources = []
    for i in range(count):
        pieces = rng.choice(ordinary, size=int(rng.integers(1, longest + 1)))
        tag = tokenizer.lang_id(languages[i % len(languages)])
        sources.append([tag, *map(int, pieces), config.eos_id])
    return sources, f"random pieces (seed {seed})"


@dataclass
class Agreement:
    """How many translations of one runtime equal a reference, token for token."""

    sentences: int
    identical: int
    examples: list[dict[str, Any]]

    @property
    def rate(self) -> float:
        return self.identical / self.sentences

    def to_dict(self, threshold: float | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sentences": self.sentences,
            "identical": self.identical,
            "agreement": round(self.rate, 6),
        }
        out["gated"] = threshold is not None
        if threshold is not None:
            out["threshold"] = threshold
            out["passed"] = self.rate >= threshold
        out["mismatches"] = self.examples
        return out


def agreement(
    sources: Sequence[TokenIds], reference: Sequence[TokenIds], candidate: Sequence[TokenIds]
) -> Agreement:
    differ = [i for i, (a, b) in enumerate(zip(reference, candidate, strict=True)) if a != b]
    examples = [
        {"index": i, "source": list(sources[i]), "reference": reference[i], "ct2": candidate[i]}
        for i in differ[:EXAMPLES_IN_REPORT]
    ]
    return Agreement(len(reference), len(reference) - len(differ), examples)


def eager_translations(
    model: LingoLite, sources: Sequence[TokenIds], search: SearchConfig, chunk: int = 32
) -> list[TokenIds]:
    out: list[TokenIds] = []
    for start in tqdm(range(0, len(sources), chunk), desc="eager", unit="batch", disable=None):
        out.extend(translate_ids(model, sources[start : start + chunk], search))
    return out


def check_parity(
    model: LingoLite,
    folder: Path,
    quantization: str,
    sources: Sequence[TokenIds],
    *,
    max_length: int,
    reference_folder: Path | None,
    min_int8_agreement: float | None,
    report_beams: int,
    threads: int,
) -> dict[str, Any]:
    """Translate ``sources`` eagerly and with CTranslate2 and build the parity report.

    ``min_int8_agreement=None`` reports the agreement of a quantized model without gating it.
    """
    greedy = SearchConfig(max_length=max_length)
    reference = eager_translations(model, sources, greedy)
    translator = CT2Translator(folder, intra_threads=threads)
    got = agreement(sources, reference, translator.translate_ids(sources, 1, max_length))
    report: dict[str, Any] = {"quantization": quantization}
    exact = quantization == "float32"
    report["greedy"] = got.to_dict(1.0 if exact else min_int8_agreement)
    passed = bool(report["greedy"].get("passed", True))
    if reference_folder is not None:
        fp32 = CT2Translator(reference_folder, intra_threads=threads)
        mapped = agreement(sources, reference, fp32.translate_ids(sources, 1, max_length))
        report["float32_conversion"] = mapped.to_dict(1.0)
        passed = passed and bool(report["float32_conversion"]["passed"])
    if report_beams > 1:
        beam = SearchConfig(max_length=max_length, num_beams=report_beams)
        ref_beam = eager_translations(model, sources, beam)
        ct2_beam = translator.translate_ids(sources, report_beams, max_length)
        report["beam"] = {
            "num_beams": report_beams,
            "note": "reported, not gated: CTranslate2 ends beam search once num_beams hypotheses "
            "are finished (patience 1), ours once no running beam can win",
            **agreement(sources, ref_beam, ct2_beam).to_dict(None),
        }
    report["passed"] = passed
    return report


# ---------------------------------------------------------------------------- convert


def convert(
    checkpoint: Path | str,
    out: Path | str,
    *,
    quantization: str = "float32",
    force: bool = False,
    data: Path | str | None = None,
    num_sentences: int = 100,
    max_length: int | None = None,
    min_int8_agreement: float = DEFAULT_MIN_INT8_AGREEMENT,
    report_beams: int = 4,
    threads: int = 0,
) -> dict[str, Any]:
    """Convert ``checkpoint`` into a CTranslate2 folder ``out`` and return the parity report.

    Raises :class:`ConversionError` (every unsupported option at once), ``FileExistsError`` for a
    non-empty ``out`` without ``force`` and :class:`ParityError` when the gate fails, in which case
    ``out`` is left as it was.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    failed = out.with_name(out.name + FAILED_SUFFIX)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} is not empty; pass force=True (--force) to overwrite it")
    try:
        config, checkpoint_json = read_config(checkpoint)
    except CheckpointError as exc:
        raise ConversionError(str(exc)) from exc
    tokenizer: Tokenizer | None = None
    tokenizer_error = None
    try:
        tokenizer = Tokenizer.from_pretrained(checkpoint)
    except TokenizerError as exc:
        tokenizer_error = str(exc)
    length = config.max_tgt_len if max_length is None else max_length
    check_convertible(
        ConversionRequest(
            config, tokenizer, tokenizer_error, quantization, checkpoint, out, length,
            num_sentences, min_int8_agreement,
        )
    )  # fmt: skip
    assert tokenizer is not None, "check_convertible reports a tokenizer that failed to load"

    trained = "training" in checkpoint_json
    model = load_pretrained(checkpoint).float().eval()
    sources, described = parity_sources(
        tokenizer, config, None if data is None else Path(data), num_sentences
    )
    with atomic_directory(out, force=force, markers=EXPORT_MARKERS) as tmp:
        save_model(model, tokenizer, tmp, quantization, str(checkpoint))
        with tempfile.TemporaryDirectory(prefix="lingolite-ct2-float32-") as scratch:
            reference_folder = None
            if quantization != "float32":
                reference_folder = Path(scratch) / "model"
                reference_folder.mkdir()
                save_model(model, tokenizer, reference_folder, "float32", str(checkpoint))
            parity = check_parity(
                model, tmp, quantization, sources, max_length=length,
                reference_folder=reference_folder,
                min_int8_agreement=min_int8_agreement if trained else None,
                report_beams=report_beams, threads=threads,
            )  # fmt: skip
        report = {
            "checkpoint": str(checkpoint),
            "trained": trained,
            "sources": described,
            "max_length": length,
            **parity,
            "versions": _versions(),
        }
        (tmp / PARITY_FILE).write_text(
            json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        if not report["passed"]:
            (tmp / METADATA_FILE).unlink()  # no runtime loads a conversion that failed parity
            shutil.rmtree(failed, ignore_errors=True)
            os.replace(tmp, failed)
            raise ParityError(report, failed)
    shutil.rmtree(failed, ignore_errors=True)  # a stale failure of an earlier run
    log.info(
        "wrote %s (%s): greedy agreement %.4f on %d sentences",
        out, quantization, report["greedy"]["agreement"], len(sources),
    )  # fmt: skip
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export.ctranslate2", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="LingoLite checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="CTranslate2 model folder")
    parser.add_argument("--quantization", choices=QUANTIZATIONS, default="float32")
    parser.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    parser.add_argument(
        "--data", type=Path, help=f"corpus folder whose {PARITY_SPLIT} split feeds the parity "
        "check (default: seeded random sources)"
    )  # fmt: skip
    parser.add_argument("--num-sentences", type=int, default=100, help="parity sentences (>= 50)")
    parser.add_argument("--max-length", type=int, help="tokens per translation (max_tgt_len)")
    parser.add_argument("--report-beams", type=int, default=4, help="beam agreement (0: skip)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = convert(
            args.checkpoint, args.out, quantization=args.quantization, force=args.force,
            data=args.data, num_sentences=args.num_sentences, max_length=args.max_length,
            report_beams=args.report_beams,
        )  # fmt: skip
    except (ConversionError, ParityError, FileExistsError, DataError) as exc:
        log.error("%s", exc)
        return 1
    summary = {k: report[k] for k in ("quantization", "passed")}
    summary["greedy_agreement"] = report["greedy"]["agreement"]
    if "beam" in report:
        summary["beam_agreement"] = report["beam"]["agreement"]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
