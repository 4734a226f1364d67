"""Write ``vocab.json``: all a non-Python runtime needs to tokenize exactly like SentencePiece.

The Android app (``android_demo/``) cannot run the SentencePiece C++ library, so its pure-Java
tokenizer reads this file instead of ``spm.model``. The file holds, taken from the model proto:

- every piece with its score (the float32 value, written so that it parses back exactly) and its
  type (``NORMAL``, ``UNKNOWN``, ``CONTROL``, ``USER_DEFINED``, ``UNUSED``, ``BYTE``);
- the normalizer: its name, the flags ``add_dummy_prefix``, ``remove_extra_whitespaces`` and
  ``escape_whitespaces``, and the ``precompiled_charsmap`` (base64). The charsmap is the compiled
  normalization rule itself (for ``nmt_nfkc``: NFKC plus the NMT clean-ups, as a double-array
  trie over UTF-8 bytes); replaying it gives SentencePiece's normalization byte for byte, which
  ``java.text.Normalizer`` cannot promise (a different Unicode version, no NMT rules);
- the special ids, ``unk_surface`` (what ``<unk>`` decodes to), and, when written from a
  :class:`~lingolite.tokenizer.Tokenizer`, its languages and language-tag ids;
- ``spm_sha256``: the sha256 of the ``spm.model`` bytes it was derived from.

An imported Marian (OPUS-MT) tokenizer (:class:`~lingolite.marian_tokenizer.MarianTokenizer`)
gets a file of ``"type": "marian-sentencepiece"`` instead (:func:`vocab_from_marian`):

- ``source``: the ``"sentencepiece-unigram"`` object above for ``source.spm`` (no languages),
  which cuts sources into pieces and joins decoded pieces;
- ``pieces``: Marian's vocabulary, the piece string of every model id (index = id); the ids are
  these, never the SentencePiece model's own (a piece the list lacks is ``unk_id``);
- ``pad_id``, ``bos_id`` (the decoder's first input: pad), ``eos_id``, ``unk_id``;
- ``source_lang``, ``target_lang`` (null for a multilingual-target model), ``languages``,
  ``lang_ids`` (code -> id of ``>>code<<``; empty for a single-pair model);
- ``clean_up_tokenization_spaces`` (transformers' clean-up of spaces before punctuation);
- ``marian_vocab_sha256``: the sha256 of the pieces list as ``json.dumps`` (compact,
  ``ensure_ascii``) writes it, a fingerprint of the vocabulary.

The Java and JavaScript Marian tokenizers follow ``MarianTokenizer`` step by step: the text is
split around the literal ``</s>``, ``<unk>`` and ``<pad>`` (each becomes its id); a part starting
with ``>>...<<`` gives that code as one piece; the rest is cut by ``source`` into piece strings
(an unknown run keeps its normalized surface, as SentencePiece's ``encode(out_type=str)``) that
are looked up in ``pieces``; eos ends every source, and a multilingual-target source starts with
``>>tgt<<``. Decoding drops eos, pad and unk, joins the other pieces as SentencePiece's
``DecodePieces`` of ``source`` does (a piece ``source`` lacks is kept as it is), turns every
``"\u2581"`` into a space and strips Python's whitespace from both ends.

Options the Java tokenizer does not implement (BPE/word/char models, byte fallback, whitespace as
suffix, a denormalizer) are refused here, all problems at once, so an unsupported model never
reaches a phone.

Usage: ``python -m export.vocab --tokenizer DIR --out FOLDER`` (writes ``FOLDER/vocab.json``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from sentencepiece import sentencepiece_model_pb2

from lingolite.marian_tokenizer import TOKENIZER_TYPE as MARIAN_VOCAB_TYPE
from lingolite.marian_tokenizer import MarianTokenizer
from lingolite.tokenizer import TokenId, Tokenizer
from lingolite.tokenizers import load_tokenizer

# Generated protobuf code defines its classes at run time, out of mypy's sight.
spm_pb: Any = sentencepiece_model_pb2

logger = logging.getLogger(__name__)

VOCAB_FILE: Final = "vocab.json"
VOCAB_FORMAT_VERSION: Final = 1
VOCAB_TYPE: Final = "sentencepiece-unigram"
# SentencePiece's default surface of <unk> when decoding (kDefaultUnknownSymbol).
DEFAULT_UNK_SURFACE: Final = " \u2047 "
_UNIGRAM: Final = 1


class VocabError(ValueError):
    """A SentencePiece model this export cannot represent; the message lists every problem."""


def _piece_type_names() -> dict[int, str]:
    return {int(value): str(name) for name, value in spm_pb.ModelProto.SentencePiece.Type.items()}


def vocab_from_model_proto(
    model_proto: bytes,
    languages: Sequence[str] = (),
    lang_ids: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The contents of ``vocab.json`` for a serialized unigram SentencePiece model."""
    proto = spm_pb.ModelProto()
    try:
        proto.ParseFromString(model_proto)
    except DecodeError as exc:
        raise VocabError(f"not a SentencePiece model ({len(model_proto)} bytes): {exc}") from exc
    trainer, norm = proto.trainer_spec, proto.normalizer_spec
    problems: list[str] = []
    if trainer.model_type != _UNIGRAM:
        problems.append(f"model_type {trainer.model_type}: only unigram ({_UNIGRAM}) is supported")
    if trainer.byte_fallback:
        problems.append("byte_fallback is on; the Java tokenizer does not implement it")
    if trainer.treat_whitespace_as_suffix:
        problems.append("treat_whitespace_as_suffix is on; the Java tokenizer lacks it")
    if proto.denormalizer_spec.precompiled_charsmap:
        problems.append("the model has a denormalizer; the Java tokenizer does not implement it")
    if not norm.precompiled_charsmap and norm.name not in ("identity", ""):
        problems.append(f"normalizer {norm.name!r} has no precompiled_charsmap")
    names = _piece_type_names()
    pieces: list[list[Any]] = []
    for i, piece in enumerate(proto.pieces):
        kind = names.get(int(piece.type))
        if kind is None:
            problems.append(f"piece {i} ({piece.piece!r}) has unknown type {piece.type}")
            continue
        if kind == "BYTE":
            problems.append(f"piece {i} ({piece.piece!r}) is a BYTE piece")
        # A float32 score as a Python float is exactly representable: JSON keeps it bit-exact.
        pieces.append([piece.piece, float(piece.score), kind])
    unknown = [i for i, p in enumerate(pieces) if p[2] == "UNKNOWN"]
    if len(unknown) != 1:
        problems.append(f"expected exactly one UNKNOWN piece, found ids {unknown}")
    for lang, tag in (lang_ids or {}).items():
        if type(tag) is not int or not 0 <= tag < len(pieces) or pieces[tag][2] != "CONTROL":
            problems.append(f"language tag id {tag!r} of {lang!r} is not a CONTROL piece")
    if lang_ids is not None and sorted(lang_ids) != sorted(languages):
        problems.append(f"lang_ids {sorted(lang_ids)} do not match languages {list(languages)}")
    if problems:
        raise VocabError("cannot export this SentencePiece model for Java: " + "; ".join(problems))

    def special(piece: str) -> int:
        return next((i for i, p in enumerate(pieces) if p[0] == piece and p[2] != "NORMAL"), -1)

    has_surface = trainer.HasField("unk_surface")
    unk_surface = trainer.unk_surface if has_surface else DEFAULT_UNK_SURFACE
    return {
        "format_version": VOCAB_FORMAT_VERSION,
        "type": VOCAB_TYPE,
        "spm_sha256": hashlib.sha256(model_proto).hexdigest(),
        "normalizer": {
            "name": norm.name,
            "add_dummy_prefix": bool(norm.add_dummy_prefix),
            "remove_extra_whitespaces": bool(norm.remove_extra_whitespaces),
            "escape_whitespaces": bool(norm.escape_whitespaces),
            "precompiled_charsmap": base64.b64encode(norm.precompiled_charsmap).decode("ascii"),
        },
        "unk_surface": unk_surface,
        "unk_id": unknown[0],
        "bos_id": special(trainer.bos_piece or "<s>"),
        "eos_id": special(trainer.eos_piece or "</s>"),
        "pad_id": special(trainer.pad_piece or "<pad>"),
        "languages": list(languages),
        "lang_ids": dict(lang_ids or {}),
        "pieces": pieces,
    }


def vocab_from_tokenizer(tokenizer: Tokenizer) -> dict[str, Any]:
    langs = tokenizer.languages
    ids = {lang: tokenizer.lang_id(lang) for lang in langs}
    return vocab_from_model_proto(tokenizer.model_proto, langs, ids)


def vocab_from_marian(tokenizer: MarianTokenizer) -> dict[str, Any]:
    """The contents of ``vocab.json`` for a Marian tokenizer (the docstring's second form)."""
    source = vocab_from_model_proto(tokenizer.source_model_proto)
    pieces = [tokenizer.id_to_piece(TokenId(i)) for i in range(tokenizer.vocab_size)]
    listed = json.dumps(pieces, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return {
        "format_version": VOCAB_FORMAT_VERSION,
        "type": MARIAN_VOCAB_TYPE,
        "marian_vocab_sha256": hashlib.sha256(listed).hexdigest(),
        "source_lang": tokenizer.source_lang,
        "target_lang": tokenizer.target_lang,
        "languages": list(tokenizer.languages),
        "lang_ids": tokenizer.lang_ids,
        "pad_id": tokenizer.pad_id,
        "bos_id": tokenizer.bos_id,
        "eos_id": tokenizer.eos_id,
        "unk_id": tokenizer.unk_id,
        "clean_up_tokenization_spaces": tokenizer.clean_up_tokenization_spaces,
        "pieces": pieces,
        "source": source,
    }


def vocab_for(tokenizer: Tokenizer | MarianTokenizer) -> dict[str, Any]:
    """``vocab.json`` of either tokenizer kind."""
    if isinstance(tokenizer, MarianTokenizer):
        return vocab_from_marian(tokenizer)
    return vocab_from_tokenizer(tokenizer)


def write_vocab(vocab: dict[str, Any], folder: Path) -> Path:
    """Write ``folder/vocab.json`` atomically (temp file + rename); return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / VOCAB_FILE
    fd, tmp = tempfile.mkstemp(prefix=f".{VOCAB_FILE}.tmp-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            # ensure_ascii keeps the file 7-bit: no reader can get the encoding wrong.
            json.dump(vocab, handle, ensure_ascii=True, separators=(",", ":"))
            handle.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    logger.info("wrote %s (%d pieces)", target, len(vocab["pieces"]))
    return target


def export_vocab(tokenizer_dir: Path, out: Path) -> Path:
    """Read a saved tokenizer (LingoLite or Marian) and write ``out/vocab.json``."""
    return write_vocab(vocab_for(load_tokenizer(tokenizer_dir)), out)


def main(argv: list[str] | None = None, prog: str = "python -m export.vocab") -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", type=Path, required=True, help="folder with tokenizer.json")
    parser.add_argument("--out", type=Path, required=True, help="artifact folder to write into")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    export_vocab(args.tokenizer, args.out)


if __name__ == "__main__":
    main()
