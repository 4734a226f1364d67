"""Export LingoLite to ONNX Runtime: ``encoder.onnx`` + ``decoder.onnx`` (+ int8, int4), with proof.

``python -m export.onnx --size {tiny,small,medium} [--checkpoint DIR] [--out DIR]
[--quantize none|int8|both|int4|all] [--max-src-len N] [--max-tgt-len N] [--data DIR] [--force]``

Graphs traced from :mod:`lingolite.exportable` with the dynamo exporter
(``torch.onnx.export(..., dynamo=True)``, opset 18) with ``batch`` and ``src_len`` dynamic:
the encoder; the static-cache ``decoder`` (KV-cache length static, one graph for every step, no
with/without-past pair, no ``If``: the contract of the Android and web runners); and
``decoder.grow.onnx``, the same step with the growing cache (cache length dynamic, see
:mod:`lingolite.signatures`), which desktop and server decoding use. Weights stay inside the
``.onnx`` files (every preset is far below protobuf's 2 GB).

``--quantize``: ``int8`` graphs (:data:`QUANTIZATION`, ONNX Runtime's dynamic quantization: int8
weights, per output channel for MatMul, activations quantized at run time) beside the fp32 ones
(``both``) or instead (``int8``); ``int4`` graphs (:data:`INT4_QUANTIZATION`, ONNX Runtime's
block-wise 4-bit weight quantizer ``MatMulNBitsQuantizer``: ``MatMulNBits`` and
``GatherBlockQuantized``; the quantizer raises such graphs to opset 21, the first with 4-bit
tensors) instead of the fp32 ones (``int4``); or all three (``all``).

Stages: build the model, export the three graphs, check them (``onnx.checker``, names, dtypes and
shapes against :func:`lingolite.signatures.onnx_signatures`, external data), quantize, run the
parity gate (``export.parity``: fp32 must match eager to 1e-4 with identical greedy tokens), write
``parity.json`` and then ``manifest.json`` last. Everything is built in a temporary folder beside
``--out`` and renamed at the end; a parity failure leaves it at ``<out>.failed`` and exits 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

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
from lingolite.exportable import (
    DecoderGrowProgram,
    DecoderStepProgram,
    EncoderProgram,
    dynamic_shapes,
    example_inputs,
    grow_dynamic_shapes,
    grow_example_inputs,
)
from lingolite.signatures import (
    DECODER_INPUTS,
    DECODER_OUTPUTS,
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    GROW_DECODER,
    grow_decoder_names,
    grow_decoder_signature,
    onnx_signatures,
)
from runtime.manifest import Manifest, write_manifest
from runtime.onnx_backend import BACKEND, check_external_data, read_signature

log = logging.getLogger("export.onnx")

OPSET = 18
QUANTIZE = ("none", "int8", "both", "int4", "all")
# The precisions each --quantize exports; fp32 is always exported (the quantizers' input and
# the parity gate's proof) and kept by the choices of KEEP_FP32 only.
PRECISIONS = {
    "none": ("fp32",),
    "int8": ("fp32", "int8"),
    "both": ("fp32", "int8"),
    "int4": ("fp32", "int4"),
    "all": ("fp32", "int8", "int4"),
}
KEEP_FP32 = ("none", "both", "all")
FILES = {
    precision: {
        "encoder": f"encoder{suffix}.onnx",
        "decoder": f"decoder{suffix}.onnx",
        GROW_DECODER: f"decoder.grow{suffix}.onnx",
    }
    for precision, suffix in (("fp32", ""), ("int8", ".int8"), ("int4", ".int4"))
}
QUANTIZATION = {
    "method": "onnxruntime.quantization.quantize_dynamic",
    "weight_type": "QInt8",
    "per_channel": True,
    # 7-bit weights: x86 CPUs without VNNI (AVX2, plain AVX-512) multiply u8 x s8 with an int16
    # pairwise add that saturates on 8-bit weights (measured: the Multi30k model lost 4.8 BLEU
    # en-fr on an AVX2 host, 0 on a VNNI one). ONNX Runtime's own advice for such CPUs.
    "reduce_range": True,
    "folded_weight_transposes": True,  # the tied output projection gets its own int8 weights
    "float32_position_tables": True,  # rotary cos/sin lookups are not quantized
}
# Block-wise 4-bit weights: every MatMul weight (MatMulNBits) and the token embedding
# (GatherBlockQuantized), blocks of 32 values along the input dimension, each with its own scale
# and zero point; accuracy level 4 computes with int8 activations (ONNX Runtime's fastest CPU
# kernels for MatMulNBits).
INT4_OP_TYPES = ("MatMul", "Gather")
INT4_QUANTIZATION = {
    "method": "onnxruntime.quantization.matmul_nbits_quantizer.MatMulNBitsQuantizer",
    "bits": 4,
    "block_size": 32,
    "is_symmetric": False,
    "accuracy_level": 4,
    "op_types": list(INT4_OP_TYPES),
    "folded_weight_transposes": True,
    "float32_position_tables": True,
}


class GraphError(RuntimeError):
    """An exported graph that does not have the promised interface."""


def export_graph(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    names: tuple[tuple[str, ...], tuple[str, ...]],
    shapes: dict[str, Any],
) -> None:
    """Trace ``module`` with the dynamo exporter into ``path`` (weights inside the file)."""
    with warnings.catch_warnings():
        # The exporter's own deprecation notices, about its internals, not about this model.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message="# The axis name", category=UserWarning)
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=list(names[0]),
            output_names=list(names[1]),
            dynamic_shapes=shapes,
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


def check_graph(path: Path, expected: dict[str, Any]) -> dict[str, Any]:
    """``onnx.checker``, then names, dtypes and shapes against ``expected``; returns the
    graph's signature. Raises :class:`GraphError` listing every difference."""
    check_external_data(path)
    onnx.checker.check_model(str(path), full_check=True)
    found = read_signature(onnx.load(str(path), load_external_data=False))
    problems = [
        f"{kind}: expected {want}, got {got}"
        for kind in ("inputs", "outputs")
        for want, got in [(expected[kind], found[kind])]
        if want != got
    ]
    if problems:
        raise GraphError(
            f"{path.name} does not have the promised interface: " + "; ".join(problems)
        )
    return found


def fold_weight_transposes(model: onnx.ModelProto) -> list[str]:
    """Replace every ``Transpose`` of an initializer that only feeds MatMul weights (input B) by
    a transposed initializer; returns the names of the folded outputs.

    The tied output projection is ``MatMul(x, Transpose(embed.weight))``. ``quantize_dynamic``
    quantizes a MatMul only when its weight is an initializer, so without this the largest matrix
    of the decoder step stays float32 (the embedding's int8 copy is dequantized and transposed
    instead). Folding gives the projection its own int8 copy: ``V x D`` more bytes on disk, the
    float32 ``4 V D`` bytes ONNX Runtime folded at load gone, and an int8 MatMul per step.
    """
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, index))
    folded, keep = [], []
    for node in graph.node:
        users = consumers.get(node.output[0], []) if node.op_type == "Transpose" else []
        if (
            not users
            or node.input[0] not in initializers
            or any(user.op_type != "MatMul" or index != 1 for user, index in users)
            or any(o.name == node.output[0] for o in graph.output)
        ):
            keep.append(node)
            continue
        weight = numpy_helper.to_array(initializers[node.input[0]])
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        transposed = np.ascontiguousarray(np.transpose(weight, perm))
        graph.initializer.append(numpy_helper.from_array(transposed, node.output[0]))
        folded.append(node.output[0])
    del graph.node[:]
    graph.node.extend(keep)
    return folded


def position_tables(model: onnx.ModelProto) -> list[str]:
    """The Gather nodes that read a weight with indices that are not a graph input: the rotary
    cos/sin lookups by position. They stay float32 (a few KiB; int8 would only add error to
    every rotation); the token-embedding Gathers, indexed by the graph's id inputs, are
    quantized."""
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    inputs = {i.name for i in graph.input}
    return [
        node.name
        for node in graph.node
        if node.op_type == "Gather" and node.input[0] in weights and node.input[1] not in inputs
    ]


def quantize_graph(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of every MatMul weight and token-embedding Gather of ``src``
    into ``dst``, after :func:`fold_weight_transposes` (on a temporary copy; ``src`` is not
    changed) and leaving the :func:`position_tables` in float32."""
    model = onnx.load(str(src))
    folded = fold_weight_transposes(model)
    keep_float = position_tables(model)
    staged = dst.with_name(dst.name + ".folded.partial")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint on the root logger
    try:
        if folded:
            log.info("%s: folded %s into int8-quantizable weights", src.name, ", ".join(folded))
            onnx.save(model, str(staged))
        quantize_dynamic(
            staged if folded else src,
            dst,
            per_channel=QUANTIZATION["per_channel"],
            reduce_range=QUANTIZATION["reduce_range"],
            weight_type=QuantType.QInt8,
            nodes_to_exclude=keep_float,
        )
    finally:
        root.setLevel(level)
        staged.unlink(missing_ok=True)


def quantize_graph_int4(src: Path, dst: Path) -> None:
    """Block-wise 4-bit weights (:data:`INT4_QUANTIZATION`) for every MatMul weight and the
    token-embedding Gather of ``src`` into ``dst``, after :func:`fold_weight_transposes` and
    leaving the :func:`position_tables` in float32."""
    model = onnx.load(str(src))
    folded = fold_weight_transposes(model)
    if folded:
        log.info("%s: folded %s into int4-quantizable weights", src.name, ", ".join(folded))
    quantizer = MatMulNBitsQuantizer(
        model,
        bits=INT4_QUANTIZATION["bits"],
        block_size=INT4_QUANTIZATION["block_size"],
        is_symmetric=INT4_QUANTIZATION["is_symmetric"],
        accuracy_level=INT4_QUANTIZATION["accuracy_level"],
        nodes_to_exclude=position_tables(model),
        op_types_to_quantize=INT4_OP_TYPES,
        quant_axes=(("MatMul", 0), ("Gather", 1)),
    )
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs every node it visits
    try:
        quantizer.process()
    finally:
        root.setLevel(level)
    onnx.save(quantizer.model.model, str(dst))


QUANTIZERS = {"int8": quantize_graph, "int4": quantize_graph_int4}


def export_onnx(options: ExportOptions, quantize: str = "both") -> Path:
    """Export, check, quantize, gate on parity and write the artifact folder; returns it.

    For the shipped model, ``export_onnx(ExportOptions(out=Path("artifacts/tiny-onnx"),
    checkpoint=Path("pretrained/lingolite-tiny-multi30k")))`` (minutes of CPU: tracing, int8
    quantization, the parity gate). Every invalid option is refused at once, before any work:

    >>> from export.common import ExportOptions
    >>> export_onnx(ExportOptions(out=Path("artifacts/unused"), size="huge", max_src_len=1))
    Traceback (most recent call last):
    ...
    export.common.ExportError: cannot export: --size 'huge' is not one of
    ['medium', 'small', 'tiny']; --max-src-len must be >= 2, got 1
    """
    if quantize not in QUANTIZE:
        raise ExportError(f"--quantize {quantize!r} is not one of {QUANTIZE}")
    options.check()
    progress = Progress(8)
    with export_folder(options.out, force=options.force) as folder:
        with progress.stage("building the model and tokenizer"):
            src = load_source(options)
        expected = {
            **onnx_signatures(src.config),
            GROW_DECODER: grow_decoder_signature(src.config),
        }
        enc_args, dec_args = example_inputs(src.model, src_len=min(7, src.config.max_src_len))
        enc_shapes, dec_shapes = dynamic_shapes(src.config)
        programs = {
            "encoder": (EncoderProgram, enc_args, (ENCODER_INPUTS, ENCODER_OUTPUTS), enc_shapes),
            "decoder": (
                DecoderStepProgram,
                dec_args,
                (DECODER_INPUTS, DECODER_OUTPUTS),
                dec_shapes,
            ),
            GROW_DECODER: (
                DecoderGrowProgram,
                grow_example_inputs(dec_args, past_len=min(3, src.config.max_tgt_len - 1)),
                grow_decoder_names(src.config.n_decoder_layers),
                grow_dynamic_shapes(src.config),
            ),
        }
        for role, (program, args, names, shapes) in programs.items():
            with progress.stage(f"exporting {FILES['fp32'][role]} (dynamo, opset {OPSET})"):
                export_graph(program(src.model), args, folder / FILES["fp32"][role], names, shapes)
        precisions = PRECISIONS[quantize]
        found: dict[str, dict[str, Any]] = {p: {} for p in precisions}
        with progress.stage("checking the graphs (onnx.checker, signatures)"):
            for role, name in FILES["fp32"].items():
                found["fp32"][role] = check_graph(folder / name, expected[role])
        quantized = [p for p in precisions if p != "fp32"]
        with progress.stage(f"quantizing to {', '.join(quantized) or 'nothing'}"):
            for precision in quantized:
                for role, name in FILES[precision].items():
                    QUANTIZERS[precision](folder / FILES["fp32"][role], folder / name)
                    found[precision][role] = check_graph(folder / name, expected[role])
        data = manifest_base(src, folder, "export.onnx", quantize=quantize)
        data["variants"] = {f"onnx-{p}": _variant(p, found[p]) for p in precisions}
        data["versions"] = {**package_versions("onnx", "onnxruntime", "onnxscript"), "opset": OPSET}
        with progress.stage("parity gate against eager PyTorch"):
            parity_gate(src, Manifest(folder, data))
        if quantize not in KEEP_FP32:  # the fp32 graphs were the quantizer's input and proof
            for name in FILES["fp32"].values():
                (folder / name).unlink()
            del data["variants"]["onnx-fp32"]
        with progress.stage("writing manifest.json"):
            write_manifest(folder, data)
    _log_summary(options.out, src, progress)
    return options.out


def _variant(precision: str, found: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "backend": BACKEND,
        "precision": precision,
        "files": dict(FILES[precision]),
        "signatures": found,
    }
    if precision == "int8":
        entry["quantization"] = dict(QUANTIZATION)
    elif precision == "int4":
        entry["quantization"] = dict(INT4_QUANTIZATION)
    return entry


def _log_summary(out: Path, src: ExportSource, progress: Progress) -> None:
    sizes = ", ".join(
        f"{p.name} {p.stat().st_size / 2**20:.1f} MiB" for p in sorted(out.glob("*.onnx"))
    )
    state = "trained" if src.trained else "UNTRAINED"
    log.info("exported %s model to %s in %.1f s: %s", state, out, progress.elapsed(), sizes)


def main(argv: list[str] | None = None, prog: str = "python -m export.onnx") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_common_arguments(parser, "onnx")
    parser.add_argument(
        "--quantize",
        choices=QUANTIZE,
        default="both",
        help="int8 graphs beside the fp32 ones (both) or instead (int8); block-wise int4 "
        "graphs instead of the fp32 ones (int4); fp32, int8 and int4 (all); or none",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for name in ("export", "runtime", "lingolite"):  # not the exporter's own INFO chatter
        logging.getLogger(name).setLevel(logging.INFO)
    # "torchvision is not installed" notices of the ONNX exporter's op registry.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    try:
        export_onnx(ExportOptions.from_args(args, "onnx"), quantize=args.quantize)
    except ParityError as exc:
        log.error("%s", exc)
        return 1
    except (ExportError, GraphError, ValueError, FileExistsError) as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
