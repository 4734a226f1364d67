"""Translate text with an exported artifact folder (ONNX Runtime, CTranslate2: without PyTorch).

``python -m runtime.translate --artifacts DIR --src en --tgt de "A man rides a bike." ...``

Texts come from the arguments, else from ``--input FILE``, else from stdin, one per line (empty
lines stay empty); translations go to stdout or ``--output FILE``, one per line, in order. A text
of several sentences is translated sentence by sentence; a translation that stopped at the length
limit is still written, with a warning on stderr. A direction the model was not trained on is
refused (exit 2). Input must be UTF-8 without NUL characters (else exit 2, naming the line).

Input is streamed: lines are read, translated and written ``CHUNK_LINES`` at a time, so memory
stays bounded for any input size (by the longest line), and stdout gets each chunk as soon as it
is done. ``--output`` is written to a temporary file beside ``FILE`` and renamed over it only when
everything succeeded, so an existing file is never left truncated or half-written. A progress bar
(lines done) goes to stderr when stderr is a terminal, unless ``--quiet``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from lingolite.search import SearchError
from lingolite.tokenizer import TokenizerError
from lingolite.utils import add_quiet_argument, atomic_writer
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


# Texts per translation call: what the CLI holds in memory at once (plus their translations).
CHUNK_LINES = 64


def decode_utf8(raw: bytes, source: str, *, offset: int = 0, line: int = 1) -> str:
    """``raw`` as UTF-8; :class:`InputError` naming the line and byte of the first bad byte.

    ``offset`` and ``line`` are where ``raw`` starts in its source (byte offset, 1-based line).
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line += raw.count(b"\n", 0, exc.start)
        bad = raw[exc.start : exc.end]
        raise InputError(
            f"{source} is not valid UTF-8: byte(s) {bad!r} at offset {offset + exc.start} "
            f"(line {line})"
        ) from None


def read_lines(stream: BinaryIO, source: str) -> Iterator[str]:
    """The lines of ``stream`` decoded one at a time, without their ``\n`` or ``\r\n``."""
    offset = 0
    for number, raw in enumerate(stream, start=1):
        text = decode_utf8(raw, source, offset=offset, line=number)
        offset += len(raw)
        yield text.removesuffix("\n").removesuffix("\r")


def input_texts(args: argparse.Namespace, stack: contextlib.ExitStack) -> tuple[Iterable[str], str]:
    """The texts to translate (streamed from a file or stdin) and what to call each one."""
    if args.text:
        return list(args.text), "argument"
    if args.input:
        stream = stack.enter_context(args.input.open("rb"))
        return read_lines(stream, f"--input {args.input}"), "line"
    if hasattr(sys.stdin, "buffer"):
        return read_lines(sys.stdin.buffer, "stdin"), "line"
    # A text stream without bytes underneath (tests, embedding).
    return (line.removesuffix("\n").removesuffix("\r") for line in sys.stdin), "line"


def chunks(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


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
        help="a variant by name: fp32, int8 (ONNX Runtime, CTranslate2), int4 (ONNX Runtime), "
        "8da8w, 8da4w (ExecuTorch)",
    )
    parser.add_argument(
        "--onnx-cache",
        choices=["auto", "static", "grow"],
        default="auto",
        help="ONNX Runtime decoder: the growing-cache one when the export has it (auto), or "
        "force the static-cache or the growing-cache one",
    )
    parser.add_argument("--beams", type=int, default=1, help="beam size (1: greedy)")
    parser.add_argument("--max-length", type=int, help="max generated tokens (default max_tgt_len)")
    parser.add_argument(
        "--length-penalty", type=float, default=1.0, help="beam score / length^alpha (default 1)"
    )
    add_quiet_argument(parser)
    args = parser.parse_args(argv)
    if args.text and args.input:
        parser.error("give texts as arguments or --input FILE, not both")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        with contextlib.ExitStack() as stack:
            manifest = load_manifest(args.artifacts)
            precision = args.precision or (
                quantized_precision(manifest, args.backend) if args.int8 else "fp32"
            )
            translator = Translator.from_manifest(
                manifest, args.backend, precision, cache=args.onnx_cache
            )
            texts, what = input_texts(args, stack)
            out: BinaryIO | None = (
                stack.enter_context(atomic_writer(args.output)) if args.output else None
            )
            progress = stack.enter_context(
                tqdm(
                    desc="translate",
                    unit="line",
                    file=sys.stderr,
                    disable=True if args.quiet else None,  # None: only on a terminal
                    leave=False,
                )
            )
            done = 0
            for chunk in chunks(texts, CHUNK_LINES):
                # Arguments are decoded with surrogateescape: invalid UTF-8 shows up as lone
                # surrogates. Numbers are 1-based, like editors and shells.
                problems = text_problems(chunk, what, start=done + 1)
                if problems:
                    raise InputError("invalid input: " + "; ".join(problems[:10]))
                results = translator.translate_detailed(
                    chunk,
                    args.src,
                    args.tgt,
                    num_beams=args.beams,
                    max_length=args.max_length,
                    length_penalty=args.length_penalty,
                )
                for number, result in enumerate(results, start=done + 1):
                    if result.truncated:
                        progress.write(
                            f"warning: text {number}: a sentence reached the length limit "
                            "without ending; its translation is cut short (raise --max-length "
                            "up to the model's max_tgt_len)",
                            file=sys.stderr,
                        )
                text = "".join(f"{result.text}\n" for result in results)
                if out is not None:
                    out.write(text.encode("utf-8"))
                else:
                    sys.stdout.write(text)
                    sys.stdout.flush()
                done += len(chunk)
                progress.update(len(chunk))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
