"""Translate text with an exported artifact folder (ONNX Runtime, CTranslate2: without PyTorch).

``python -m runtime.translate --artifacts DIR --src en --tgt de "A man rides a bike." ...``

Texts come from the arguments, else from ``--input FILE``, else from stdin, one per line (empty
lines stay empty); translations go to stdout or ``--output FILE``, one per line, in order. A text
of several sentences is translated sentence by sentence; a translation that stopped at the length
limit is still written, with a warning on stderr. A direction the model was not trained on is
refused (exit 2). Input must be UTF-8 without NUL characters (else exit 2, naming the line).
``--output`` is written to a temporary file and renamed over ``FILE`` only when everything
succeeded, so an existing file is never left truncated or half-written.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lingolite.search import SearchError
from lingolite.tokenizer import TokenizerError
from lingolite.utils import atomic_write_bytes
from runtime.manifest import ArtifactError, load_manifest
from runtime.translator import (
    BACKENDS,
    Translator,
    TranslatorError,
    quantized_precision,
    text_problems,
)


class InputError(ValueError):
    """Input text that is not valid UTF-8 or contains NUL; the message names where."""


def decode_utf8(raw: bytes, source: str) -> str:
    """``raw`` as UTF-8; :class:`InputError` naming the line and byte of the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        bad = raw[exc.start : exc.end]
        raise InputError(
            f"{source} is not valid UTF-8: byte(s) {bad!r} at offset {exc.start} (line {line})"
        ) from None


def read_texts(args: argparse.Namespace) -> list[str]:
    if args.text:
        texts, what = list(args.text), "argument"
    else:
        if args.input:
            raw = decode_utf8(args.input.read_bytes(), f"--input {args.input}")
        elif hasattr(sys.stdin, "buffer"):
            raw = decode_utf8(sys.stdin.buffer.read(), "stdin")
        else:  # a text stream without bytes underneath (tests, embedding)
            raw = sys.stdin.read()
        lines = raw.split("\n")
        if raw.endswith("\n"):
            lines.pop()
        texts, what = [line.rstrip("\r") for line in lines], "line"
    # Arguments are decoded with surrogateescape: invalid UTF-8 shows up as lone surrogates.
    problems = text_problems(texts, what, start=1)  # 1-based, like editors and shells
    if problems:
        raise InputError("invalid input: " + "; ".join(problems[:10]))
    return texts


def main(argv: list[str] | None = None, prog: str = "python -m runtime.translate") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
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
    except (
        ArtifactError,
        InputError,
        TranslatorError,
        SearchError,
        TokenizerError,
        OSError,
    ) as exc:
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
        try:
            atomic_write_bytes(args.output, text.encode("utf-8"))
        except OSError as exc:
            print(f"error: cannot write --output {args.output}: {exc}", file=sys.stderr)
            return 2
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
