"""Export LingoLite to ExecuTorch: one ``.pte`` per precision, lowered to XNNPACK, with proof.

``python -m export.executorch --size {tiny,small,medium} [--checkpoint DIR] [--out DIR]
[--quantize fp32|8da8w|8da4w|all] [--mask-dtype bool|int64] [--max-src-len N] [--max-tgt-len N]
[--data DIR] [--force]``

Each program ``lingolite_<precision>.pte`` holds two methods, ``encode`` and ``decode_step``
(I/O defined in :mod:`lingolite.signatures`), traced from :mod:`export.executorch_programs` (the
model's math in operators XNNPACK takes, so that nothing heavy stays in portable kernels), plus
constant methods with the metadata a phone runner needs (:func:`program_metadata`). Batch 1; the
KV cache ``(L, 1, h_kv, max_tgt_len, d)`` is an explicit input and output of ``decode_step``, the
signature of the ONNX decoder. The source length is dynamic, 2 to ``max_src_len``: the methods'
signatures show that bound, so a runner may pass a sentence padded to it (the Android app does;
masked softmax makes padding exact) or at its own length (``runtime.executorch_backend`` does:
the encoder's work and the decoder's cross-attention scale with it; the variant records
``"src_len": "dynamic"``). ``src_mask`` is ``bool`` as in ONNX, or with
``--mask-dtype int64`` (1 = real token) for the Android app: executorch-android's Java ``Tensor``
has no bool type and ExecuTorch refuses an input of another dtype. Lowering uses public APIs
only: ``torch.export.export`` -> ``executorch.exir.to_edge_transform_and_lower(...,
partitioner=[XnnpackPartitioner()])`` -> ``.to_executorch()``.

Precisions (torchao ``quantize_`` with ``Int8DynamicActivationIntxWeightConfig``, the config
ExecuTorch's own XNNPACK recipes use; activations are quantized to int8 per token at run time):

- ``fp32``: no quantization.
- ``8da8w``: int8 weights, symmetric, one scale per output channel.
- ``8da4w``: int4 weights, symmetric, one scale per group of :data:`GROUP_SIZE` inputs.

Quantized programs quantize every ``nn.Linear`` and the output projection, which is the tied
embedding matrix: it gets an untied copy to quantize. The embedding lookup reads an int8 table
with one scale per row (:class:`export.executorch_programs.Int8RowEmbedding`): the lookup is the
portable ``embedding`` kernel on int8 rows, a cast and a multiply, operators every ExecuTorch
runtime registers. (torchao's ``IntxWeightOnlyConfig`` with ExecuTorch's quant fusion lowers to
``quantized_decomposed::embedding_4bit``/``embedding_byte``, but the ``executorch`` 1.5.1 pip
runtime registers no quantized kernel, so such a program does not load.)

Stages: build the model, lower each precision (checking the program's method signatures against
the manifest's and timing one decode step), run the parity gate (``export.parity``: fp32 must
match eager to 1e-4 with identical greedy tokens; quantized programs report token agreement, and
for a trained model with ``--data`` must stay within 1 BLEU of eager), write ``parity.json`` and
then ``manifest.json`` last. A parity failure leaves the build at ``<out>.failed`` and exits 1.
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.fx.experimental._config as fx_config
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.exir import (
    EdgeProgramManager,
    to_edge_transform_and_lower,
)
from torch import Tensor, nn
from torchao.quantization import (
    Int8DynamicActivationIntxWeightConfig,
    quantize_,
)
from torchao.quantization.granularity import PerAxis, PerGroup

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
from export.executorch_programs import Int8RowEmbedding, XnnpackDecoderStep, XnnpackEncoder
from lingolite.config import ModelConfig
from lingolite.exportable import example_inputs
from lingolite.model import LingoLite
from lingolite.signatures import MASK_DTYPES, SRC_LEN, STATIC_BATCH, executorch_signatures
from runtime.executorch_backend import (
    BACKEND,
    MIN_SRC_LEN,
    PROGRAM_ROLE,
    load_method,
    load_program,
    signature_problems,
    zero_inputs,
)
from runtime.manifest import Manifest, write_manifest

log = logging.getLogger("export.executorch")

PRECISIONS = ("fp32", "8da8w", "8da4w")
QUANTIZE = (*PRECISIONS, "all")
# int4 weights share one scale per GROUP_SIZE inputs; every preset's d_model and ffn_dim divide.
GROUP_SIZE = 32
# decode_step runs timed after lowering (median and best logged).
TIMING_RUNS = 30
# Source length of the tracing example (inside the dynamic range, away from its bounds).
EXAMPLE_LEN = 7


def _quantization(weights: str, **extra: Any) -> dict[str, Any]:
    """The manifest's description of a quantized variant."""
    return {
        "method": "torchao.quantization.quantize_, Int8DynamicActivationIntxWeightConfig",
        "weights": weights,
        "activations": "int8, dynamic (scale and zero point per token, computed at run time)",
        "modules": "every nn.Linear and the output projection (an untied copy of the "
                   "embedding)",
        "embedding": "weight-only int8, symmetric, one scale per row (token)",
        **extra,
    }  # fmt: skip


QUANTIZATION = {
    "8da8w": _quantization("int8, symmetric, per output channel"),
    "8da4w": _quantization(f"int4, symmetric, groups of {GROUP_SIZE} along the input dimension",
                           group_size=GROUP_SIZE),
}  # fmt: skip


def program_file(precision: str) -> str:
    return f"lingolite_{precision}.pte"


def quantization_problems(config: ModelConfig, precisions: Sequence[str]) -> list[str]:
    """Every reason the model cannot be quantized to ``precisions`` (empty if it can)."""
    if "8da4w" not in precisions:
        return []
    return [f"8da4w needs {name} ({value}) divisible by the group size {GROUP_SIZE}"
            for name, value in (("d_model", config.d_model), ("ffn_dim", config.ffn_dim))
            if value % GROUP_SIZE]  # fmt: skip


def quantized_copy(model: LingoLite, precision: str) -> LingoLite:
    """A copy of ``model`` with its linear layers quantized for ``precision`` (eval mode).

    A tied output projection becomes an untied ``nn.Linear`` with a copy of the embedding
    matrix first, so it is quantized like every other linear layer; the embedding lookup then
    reads an :class:`Int8RowEmbedding` of the same matrix.
    """
    if precision == "fp32":
        return model
    if precision not in QUANTIZATION:
        raise ExportError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    quantized = copy.deepcopy(model).eval()
    if quantized.lm_head is None:
        c = quantized.config
        head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        head.weight = nn.Parameter(quantized.embed.weight.detach().clone(), requires_grad=False)
        quantized.lm_head = head
    if precision == "8da8w":
        config = Int8DynamicActivationIntxWeightConfig(
            weight_dtype=torch.int8, weight_granularity=PerAxis(0)
        )
    else:
        config = Int8DynamicActivationIntxWeightConfig(
            weight_dtype=torch.int4,  # type: ignore[attr-defined]  # not in torch's stubs
            weight_granularity=PerGroup(GROUP_SIZE),
        )
    with torch.no_grad():
        quantize_(quantized, config)
    quantized.add_module("embed", Int8RowEmbedding(model.embed.weight.detach()))
    return quantized


def program_metadata(config: ModelConfig) -> dict[str, int]:
    """Constant methods stored in the ``.pte``, so that a runner needs no manifest to size its
    buffers: static batch, lengths, vocabulary, cache geometry and special ids."""
    return {
        "static_batch": STATIC_BATCH, "max_src_len": config.max_src_len,
        "max_tgt_len": config.max_tgt_len, "vocab_size": config.vocab_size,
        "n_decoder_layers": config.n_decoder_layers, "n_kv_heads": config.n_kv_heads,
        "head_dim": config.head_dim, "pad_id": config.pad_id, "bos_id": config.bos_id,
        "eos_id": config.eos_id,
    }  # fmt: skip


class _Int64MaskEncoder(XnnpackEncoder):
    """:class:`XnnpackEncoder` taking ``src_mask`` as int64, 1 on real tokens."""

    def forward(self, src_ids: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        return super().forward(src_ids, src_mask != 0)


class _Int64MaskDecoder(XnnpackDecoderStep):
    """:class:`XnnpackDecoderStep` taking ``src_mask`` as int64, 1 on real tokens."""

    def forward(
        self, tokens: Tensor, pos: Tensor, src_mask: Tensor, cross_k: Tensor, cross_v: Tensor,
        self_k: Tensor, self_v: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        return super().forward(tokens, pos, src_mask != 0, cross_k, cross_v, self_k, self_v)


def src_len_dim(config: ModelConfig) -> Any:
    """The programs' one dynamic dimension: the source length, :data:`MIN_SRC_LEN` to
    ``max_src_len``."""
    return torch.export.Dim(SRC_LEN, min=MIN_SRC_LEN, max=config.max_src_len)


def edge_program(model: LingoLite, mask_dtype: str = "bool") -> EdgeProgramManager:
    """Trace ``encode`` and ``decode_step`` (:mod:`export.executorch_programs`) and lower both to
    XNNPACK. Batch 1; the source length is dynamic up to ``max_src_len`` (the programs'
    signatures show that bound), so a runner may pass a sentence at its own length or padded."""
    if mask_dtype not in MASK_DTYPES:
        raise ExportError(f"mask dtype {mask_dtype!r} is not one of {MASK_DTYPES}")
    c = model.config
    # A short example: an example at a bound of the dynamic range would be specialised on.
    (src_ids, src_mask), dec_args = example_inputs(model, batch=STATIC_BATCH, src_len=EXAMPLE_LEN)
    int64 = mask_dtype == "int64"
    if int64:
        src_mask = src_mask.to(torch.int64)
        dec_args = (*dec_args[:2], src_mask, *dec_args[3:])
    encoder = (_Int64MaskEncoder if int64 else XnnpackEncoder)(model)
    decoder = (_Int64MaskDecoder if int64 else XnnpackDecoderStep)(model)
    s = src_len_dim(c)
    cross = {3: s}
    # Size-oblivious tracing (as ExecuTorch's own dynamic exports do): with batch 1 static, the
    # reshapes' stride guards are otherwise unprovable over the length range; it asks s != 1.
    with torch.no_grad(), fx_config.patch(backed_size_oblivious=True):  # type: ignore[attr-defined]
        programs = {
            "encode": torch.export.export(
                encoder, (src_ids, src_mask), dynamic_shapes={"src_ids": {1: s}, "src_mask": {1: s}}
            ),
            "decode_step": torch.export.export(decoder, dec_args, dynamic_shapes={
                "tokens": None, "pos": None, "src_mask": {1: s}, "cross_k": cross,
                "cross_v": cross, "self_k": None, "self_v": None,
            }),
        }  # fmt: skip
    return to_edge_transform_and_lower(
        programs, partitioner=[XnnpackPartitioner()], constant_methods=program_metadata(c)
    )


def lower(model: LingoLite, mask_dtype: str = "bool") -> bytes:
    """:func:`edge_program` as ``.pte`` bytes."""
    return bytes(edge_program(model, mask_dtype).to_executorch().buffer)


def check_program(
    data: bytes, config: ModelConfig, name: str, mask_dtype: str = "bool"
) -> dict[str, float]:
    """Load the program we just built, check its methods against the manifest's signatures and
    time them at batch 1 on this machine; returns ``{"encode_ms", "decode_step_ms",
    "decode_step_best_ms"}`` (medians, and the fastest decode step: on a busy machine the
    median measures the neighbours, the best run the program)."""
    program = load_program(data, name)
    problems = signature_problems(program, executorch_signatures(config, mask_dtype))
    if problems:
        raise ExportError(f"{name} does not have the promised interface: " + "; ".join(problems))
    timings = {}
    for method, runs in (("encode", 3), ("decode_step", TIMING_RUNS)):
        runner = load_method(program, method, name)
        inputs = zero_inputs(program, method)
        if method == "decode_step":
            inputs[1] = torch.tensor([config.max_tgt_len // 2])  # a mid-sentence position
        runner.execute(inputs)  # warm-up
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            runner.execute(inputs)
            samples.append(time.perf_counter() - start)
        timings[f"{method}_ms"] = 1e3 * statistics.median(samples)
    timings["decode_step_best_ms"] = 1e3 * min(samples)
    return timings


def precisions_for(quantize: str) -> list[str]:
    """The precisions ``--quantize`` asks for."""
    if quantize not in QUANTIZE:
        raise ExportError(f"--quantize {quantize!r} is not one of {QUANTIZE}")
    return list(PRECISIONS) if quantize == "all" else [quantize]


def export_executorch(
    options: ExportOptions, precisions: Sequence[str] = PRECISIONS, mask_dtype: str = "bool"
) -> Path:
    """Export one program per precision, check them, gate on parity and write the artifact
    folder; returns it.

    For the shipped model, ``export_executorch(ExportOptions(out=Path("artifacts/tiny-et"),
    checkpoint=Path("pretrained/lingolite-tiny-multi30k")), precisions=["fp32", "8da4w"])``
    (minutes of CPU per precision). Every invalid option is refused at once, before any work:

    >>> from export.common import ExportOptions
    >>> export_executorch(
    ...     ExportOptions(out=Path("artifacts/unused"), size="tiny"),
    ...     precisions=["fp16"], mask_dtype="float")
    Traceback (most recent call last):
    ...
    export.common.ExportError: cannot export: precisions must be among
    ('fp32', '8da8w', '8da4w'), got ['fp16']; --mask-dtype 'float' is not one of ('bool', 'int64')
    """
    problems = options.problems()
    if not precisions or any(p not in PRECISIONS for p in precisions):
        problems.append(f"precisions must be among {PRECISIONS}, got {list(precisions)}")
    if mask_dtype not in MASK_DTYPES:
        problems.append(f"--mask-dtype {mask_dtype!r} is not one of {MASK_DTYPES}")
    if problems:
        raise ExportError("cannot export: " + "; ".join(problems))
    progress = Progress(3 + len(precisions))
    with export_folder(options.out, force=options.force) as folder:
        with progress.stage("building the model and tokenizer"):
            src = load_source(options)
            problems = quantization_problems(src.config, precisions)
            if problems:
                raise ExportError("cannot export: " + "; ".join(problems))
        data = manifest_base(src, folder, "export.executorch", precisions=list(precisions),
                             mask_dtype=mask_dtype)  # fmt: skip
        for precision in precisions:
            name = program_file(precision)
            with progress.stage(f"lowering {name} to XNNPACK"):
                program = lower(quantized_copy(src.model, precision), mask_dtype)
                (folder / name).write_bytes(program)
                ms = check_program(program, src.config, name, mask_dtype)
            log.info("%s: %.1f MiB; batch 1 on this machine: encode %.1f ms, decode_step %.2f ms "
                     "(median of %d, best %.2f ms)", name, len(program) / 2**20, ms["encode_ms"],
                     ms["decode_step_ms"], TIMING_RUNS, ms["decode_step_best_ms"])  # fmt: skip
            variant = _variant(src.config, precision, len(program), mask_dtype)
            data["variants"][f"executorch-{precision}"] = variant
        data["versions"] = package_versions("executorch", "torchao")
        with progress.stage("parity gate against eager PyTorch"):
            parity_gate(src, Manifest(folder, data))
        with progress.stage("writing manifest.json"):
            write_manifest(folder, data)
    _log_summary(options.out, src, progress)
    return options.out


def _variant(config: ModelConfig, precision: str, size: int, mask_dtype: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "backend": BACKEND, "precision": precision,
        "files": {PROGRAM_ROLE: program_file(precision)},
        "signatures": executorch_signatures(config, mask_dtype),
        "static_batch": STATIC_BATCH, "src_len": "dynamic", "bytes": size,
        "delegate": "XnnpackBackend",
        "metadata_methods": sorted(program_metadata(config)),
    }  # fmt: skip
    if precision in QUANTIZATION:
        entry["quantization"] = dict(QUANTIZATION[precision])
    return entry


def _log_summary(out: Path, src: ExportSource, progress: Progress) -> None:
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 2**20:.1f} MiB"
                      for p in sorted(out.glob("*.pte")))  # fmt: skip
    state = "trained" if src.trained else "UNTRAINED"
    log.info("exported %s model to %s in %.1f s: %s", state, out, progress.elapsed(), sizes)


def main(argv: list[str] | None = None, prog: str = "python -m export.executorch") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_common_arguments(parser, "executorch")
    parser.add_argument("--quantize", choices=QUANTIZE, default="all",
                        help="which programs to build: one precision, or all three")  # fmt: skip
    parser.add_argument("--mask-dtype", choices=MASK_DTYPES, default="bool",
                        help="dtype of the programs' src_mask input; int64 (1 = real token) for "
                             "the Android app, whose Java Tensor has no bool")  # fmt: skip
    args = parser.parse_args(argv)
    # force: importing executorch/torchao has already configured the root logger.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", force=True)  # fmt: skip
    try:
        options = ExportOptions.from_args(args, "executorch")
        export_executorch(options, precisions_for(args.quantize), args.mask_dtype)
    except ParityError as exc:
        log.error("%s", exc)
        return 1
    except (ExportError, ValueError, FileExistsError) as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
