"""Translate text with an exported artifact folder (ONNX Runtime, CTranslate2: without PyTorch).

``python -m runtime.translate --artifacts DIR --src en --tgt de "A man rides a bike." ...``

Texts come from the arguments, else from ``--input FILE``, else from stdin, one per line (empty
lines stay empty); translations go to stdout or ``--output FILE``, one per line, in order. A text
of several sentences is translated sentence by sentence; a translation that stopped at the length
limit is still written, with a warning on stderr. A direction the model was not trained on is
refused (exit 2).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lingolite.search import SearchError
from lingolite.tokenizer import TokenizerError
from runtime.manifest import ArtifactError, load_manifest
from runtime.translator import BACKENDS, Translator, TranslatorError, quantized_precision


def read_texts(args: argparse.Namespace) -> list[str]:
    if args.text:
        return list(args.text)
    raw = args.input.read_text(encoding="utf-8") if args.input else sys.stdin.read()
    lines = raw.split("\n")
    if raw.endswith("\n"):
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", nargs="*", help="texts to translate (default: --input or stdin)")
    parser.add_argument("--artifacts", type=Path, required=True, help="exported artifact folder")
    parser.add_argument("--src", required=True, help="source language code, e.g. en")
    parser.add_argument("--tgt", required=True, help="target language code, e.g. de")
    parser.add_argument("--input", type=Path, help="file of texts, one per line")
    parser.add_argument("--output", type=Path, help="write translations here (default stdout)")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="onnxruntime")
    variant = parser.add_mutually_exclusive_group()
    variant.add_argument("--int8", action="store_true", help="use the int8 variant")
    variant.add_argument(
        "--precision",
        help="a variant by name: fp32, int8 (ONNX Runtime, CTranslate2), 8da8w, 8da4w (ExecuTorch)",
    )
    parser.add_argument("--beams", type=int, default=1, help="beam size (1: greedy)")
    parser.add_argument("--max-length", type=int, help="max generated tokens (default max_tgt_len)")
    parser.add_argument(
        "--length-penalty", type=float, default=1.0, help="beam score / length^alpha (default 1)"
    )
    args = parser.parse_args(argv)
    if args.text and args.input:
        parser.error("give texts as arguments or --input FILE, not both")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        texts = read_texts(args)
        manifest = load_manifest(args.artifacts)
        precision = args.precision or (
            quantized_precision(manifest, args.backend) if args.int8 else "fp32"
        )
        translator = Translator.from_manifest(manifest, args.backend, precision)
        results = translator.translate_detailed(
            texts,
            args.src,
            args.tgt,
            num_beams=args.beams,
            max_length=args.max_length,
            length_penalty=args.length_penalty,
        )
    except (ArtifactError, TranslatorError, SearchError, TokenizerError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for number, result in enumerate(results, start=1):
        if result.truncated:
            print(
                f"warning: text {number}: a sentence reached the length limit without ending; "
                "its translation is cut short (raise --max-length up to the model's max_tgt_len)",
                file=sys.stderr,
            )
    outputs = [result.text for result in results]
    text = "".join(f"{line}\n" for line in outputs)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
