"""The tokenizer of imported OPUS-MT models (Hugging Face Marian): ids identical to
``transformers.MarianTokenizer`` (5.x, ``separate_vocabs=False``), without transformers.

A Marian model has two SentencePiece models, ``source.spm`` (encodes sources) and ``target.spm``
(encodes targets), and one shared vocabulary mapping pieces to ids. The ids are the
vocabulary's, not the SentencePiece models' own; a piece the vocabulary lacks is ``<unk>``. The
vocabulary holds ``</s>`` (eos), ``<unk>`` and ``<pad>``; there is no bos: Marian's decoder starts
from pad (``decoder_start_token_id == pad_token_id``), so :attr:`MarianTokenizer.bos_id`, the
decoder's first input in LingoLite, is the pad id.

Encoding follows transformers step by step: the text is split around the literal special tokens
``</s>``, ``<unk>`` and ``<pad>`` (each becomes its id); a part that starts with ``>>...<<`` gives
that whole code as one token (``<unk>`` if the vocabulary lacks it); the rest is cut into pieces
by SentencePiece, which normalises the text with the model's own rule. Every encoded sequence
ends with eos. No other normalisation happens (transformers builds a Moses punctuation
normaliser but never calls it while encoding).

Decoding follows ``decode(ids, skip_special_tokens=True)``: eos, pad and unk are dropped, the
remaining pieces are joined by the *source* SentencePiece model (transformers 5 decodes with it
unless ``separate_vocabs``), ``"▁"`` becomes a space and the ends are stripped; language codes
are not special there, so ``>>fr<<`` decodes as that text.

Language codes: a vocabulary with ``>>xx<<`` entries belongs to a multilingual-target model, and
its :attr:`~MarianTokenizer.languages` are the source language plus those codes, spelled as
inside the brackets (OPUS uses ISO 639-1/639-3 codes with optional script or region parts, e.g.
``fra``, ``pt_br``, ``zh_Hant``: :data:`MARIAN_LANGUAGE_RE`). A source then starts with the
target's code. Otherwise the model translates one pair and its languages are its source and
target language.

This module must not import torch or transformers: the PyTorch-free runtimes import it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import sentencepiece as spm

from lingolite.tokenizer import (
    CONFIG_FILE,
    EOS_PIECE,
    PAD_PIECE,
    UNK_PIECE,
    TokenId,
    TokenizerError,
    resolve_file_inside,
    save_files,
)
from lingolite.utils import read_json_object

logger = logging.getLogger(__name__)

TOKENIZER_TYPE: Final = "marian-sentencepiece"
FORMAT_VERSION: Final = 1
SOURCE_MODEL_FILE: Final = "source.spm"
TARGET_MODEL_FILE: Final = "target.spm"
# Not "vocab.json": artifact folders hold export/vocab.py's vocab.json for the Java tokenizer.
VOCAB_FILE: Final = "marian_vocab.json"

# The files of a Hugging Face Marian folder.
HF_VOCAB_FILE: Final = "vocab.json"
HF_CONFIG_FILE: Final = "tokenizer_config.json"
HF_SPECIAL_TOKENS_FILE: Final = "special_tokens_map.json"

# An OPUS language code: ISO 639 letters, then optional script/region parts ("pt_br", "zh_Hant").
# No "-": "en-de" names a translation direction.
MARIAN_LANGUAGE_RE: Final = re.compile(r"[a-z]{2,3}(?:_[A-Za-z0-9]+)*")

SPIECE_UNDERLINE: Final = "\u2581"
_SPECIAL_PIECES: Final = (EOS_PIECE, UNK_PIECE, PAD_PIECE)
# transformers splits the text around its added (special) tokens; none is a prefix of another,
# so the leftmost match of this alternation is the one its trie finds.
_SPECIAL_SPLIT: Final = re.compile("(" + "|".join(re.escape(p) for p in _SPECIAL_PIECES) + ")")

# tokenizer.json keys and their JSON types ("str?" : a string or null).
_REQUIRED_KEYS: Final[dict[str, str]] = {
    "format_version": "int",
    "type": "str",
    "source_model_file": "str",
    "target_model_file": "str",
    "vocab_file": "str",
    "source_lang": "str",
    "target_lang": "str?",
    "languages": "list",
    "pad_id": "int",
    "bos_id": "int",
    "eos_id": "int",
    "unk_id": "int",
    "vocab_size": "int",
    "clean_up_tokenization_spaces": "bool",
}
_FILE_KEYS: Final = ("source_model_file", "target_model_file", "vocab_file")


def is_language_code(lang: object) -> bool:
    """Whether ``lang`` is a string :data:`MARIAN_LANGUAGE_RE` accepts."""
    return isinstance(lang, str) and MARIAN_LANGUAGE_RE.fullmatch(lang) is not None


class MarianTokenizer:
    """Two SentencePiece models and the shared vocabulary of an OPUS-MT model.

    Build one with :meth:`from_hf_folder` (a Hugging Face Marian folder) or
    :meth:`from_pretrained` (a folder written by :meth:`save`). The constructor checks that
    ``vocab`` maps distinct pieces onto the ids ``0 .. len(vocab) - 1`` and holds the special
    pieces, and that every language code is valid; ``target_lang`` is required exactly when the
    vocabulary has no ``>>xx<<`` codes (a single-pair model). ``clean_up_tokenization_spaces``
    applies transformers' clean-up of spaces before punctuation when decoding (an option of the
    Hugging Face folder, off by default).
    """

    def __init__(
        self,
        source_model: bytes,
        target_model: bytes,
        vocab: Mapping[str, int],
        *,
        source_lang: str,
        target_lang: str | None = None,
        clean_up_tokenization_spaces: bool = False,
    ) -> None:
        problems = vocab_problems(vocab)
        codes = language_codes(vocab)
        bad_codes = [code for code in codes if not is_language_code(code)]
        if bad_codes:
            problems.append(
                f"language codes {[f'>>{c}<<' for c in bad_codes]!r} do not match "
                f"{MARIAN_LANGUAGE_RE.pattern!r}"
            )
        for role, lang in (("source_lang", source_lang), ("target_lang", target_lang)):
            if lang is not None and not is_language_code(lang):
                problems.append(f"{role} {lang!r} does not match {MARIAN_LANGUAGE_RE.pattern!r}")
        if codes and target_lang is not None:
            problems.append(
                f"target_lang {target_lang!r} given for a multilingual-target model "
                f"(its vocabulary has the codes {codes[:5]!r}...); leave it out"
            )
        if not codes and target_lang is None:
            problems.append("target_lang is required: the vocabulary has no >>xx<< codes")
        if not codes and target_lang is not None and target_lang == source_lang:
            problems.append(f"source_lang and target_lang are both {source_lang!r}")
        if problems:
            raise TokenizerError("invalid Marian tokenizer: " + "; ".join(problems))

        self._source_model = bytes(source_model)
        self._target_model = bytes(target_model)
        self._source_sp = _load_spm(self._source_model, SOURCE_MODEL_FILE)
        self._target_sp = _load_spm(self._target_model, TARGET_MODEL_FILE)
        self._vocab = {piece: TokenId(i) for piece, i in vocab.items()}
        self._pieces = sorted(self._vocab, key=self._vocab.__getitem__)
        self._source_lang = source_lang
        self._target_lang = target_lang
        self._clean_up = clean_up_tokenization_spaces
        self._lang_ids = {code: self._vocab[f">>{code}<<"] for code in codes}
        targets = codes if target_lang is None else [target_lang]  # one of them (checked)
        self._languages = tuple(sorted({source_lang, *targets}))
        self._special_ids = {piece: self._vocab[piece] for piece in _SPECIAL_PIECES}

    # ------------------------------------------------------------------ properties

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    @property
    def languages(self) -> tuple[str, ...]:
        """Sorted: the source and target language, or the source language and every code of a
        multilingual-target model."""
        return self._languages

    @property
    def source_lang(self) -> str:
        return self._source_lang

    @property
    def target_lang(self) -> str | None:
        """The target language of a single-pair model; None for a multilingual-target one."""
        return self._target_lang

    @property
    def source_model_proto(self) -> bytes:
        """The serialized ``source.spm``, which encodes sources and joins decoded pieces."""
        return self._source_model

    @property
    def clean_up_tokenization_spaces(self) -> bool:
        return self._clean_up

    @property
    def pad_id(self) -> TokenId:
        return self._special_ids[PAD_PIECE]

    @property
    def bos_id(self) -> TokenId:
        """The decoder's first input: Marian has no bos and starts decoding from pad."""
        return self.pad_id

    @property
    def eos_id(self) -> TokenId:
        return self._special_ids[EOS_PIECE]

    @property
    def unk_id(self) -> TokenId:
        return self._special_ids[UNK_PIECE]

    @property
    def directions(self) -> tuple[str, ...]:
        """``"src-tgt"`` for the model's pair, or from the source language into every code of a
        multilingual-target model: a Marian model never translates into its source language
        (unless it is one of the codes) or out of a target."""
        targets = sorted(self._lang_ids) if self._target_lang is None else [self._target_lang]
        return tuple(f"{self._source_lang}-{t}" for t in targets if t != self._source_lang)

    @property
    def lang_ids(self) -> dict[str, TokenId]:
        """Code -> id of ``>>code<<``: empty for a single-pair model, which needs no tag."""
        return dict(self._lang_ids)

    def lang_id(self, lang: str) -> TokenId:
        """The id of ``>>lang<<``; :class:`TokenizerError` if the vocabulary has no such code."""
        try:
            return self._lang_ids[lang]
        except KeyError:
            raise TokenizerError(
                f"no language code >>{lang}<< in this tokenizer; it has "
                f"{sorted(self._lang_ids) or 'none (a single-pair model)'}"
            ) from None

    def id_to_piece(self, token_id: TokenId) -> str:
        self._check_ids([token_id])
        return self._pieces[token_id]

    def piece_to_id(self, piece: str) -> TokenId:
        """The id of ``piece``, or ``unk_id`` if the vocabulary does not contain it."""
        return self._vocab.get(piece, self.unk_id)

    # ------------------------------------------------------------------ encoding

    def encode(self, text: str) -> list[TokenId]:
        """Ids of ``text`` as a source, without eos (transformers' ``tokenizer(text,
        add_special_tokens=False)``)."""
        return self._encode(text, self._source_sp)

    def encode_batch(self, texts: Sequence[str]) -> list[list[TokenId]]:
        return [self.encode(text) for text in texts]

    def encode_source(self, text: str, tgt_lang: str, max_len: int | None = None) -> list[TokenId]:
        """``encode(text) + [eos]`` for a single-pair model, whose target must be ``tgt_lang``;
        ``[>>tgt_lang<<] + encode(" " + text) + [eos]`` for a multilingual-target model
        (transformers' ``tokenizer(f">>{tgt_lang}<< {text}")``).

        With ``max_len``, pieces are cut so that the result has at most ``max_len`` ids and still
        ends with eos (and starts with the code), as transformers' ``truncation=True`` does.
        """
        if self._lang_ids:
            tag = [self.lang_id(tgt_lang)]
            # The code's own part: transformers drops the code, then encodes the rest.
            pieces = self._encode(f">>{tgt_lang}<< {text}", self._source_sp)[1:]
        elif tgt_lang != self._target_lang:
            raise TokenizerError(
                f"this model translates {self._source_lang}-{self._target_lang} only, "
                f"not into {tgt_lang!r}"
            )
        else:
            tag, pieces = [], self.encode(text)
        if max_len is not None:
            if max_len < len(tag) + 1:
                what = "code and eos" if tag else "eos"
                raise TokenizerError(
                    f"max_len ({max_len}) must be at least {len(tag) + 1} ({what})"
                )
            pieces = pieces[: max_len - len(tag) - 1]
        return [*tag, *pieces, self.eos_id]

    def encode_target(self, text: str) -> list[TokenId]:
        """Ids of ``text`` as a target (``target.spm``) + eos; the decoder input is
        ``[bos] + target[:-1]``, bos being pad."""
        return [*self._encode(text, self._target_sp), self.eos_id]

    def _encode(self, text: str, sp: spm.SentencePieceProcessor) -> list[TokenId]:
        ids: list[TokenId] = []
        for part in _SPECIAL_SPLIT.split(text):
            if part in self._special_ids:
                ids.append(self._special_ids[part])
                continue
            if part.startswith(">>") and (end := part.find("<<")) != -1:
                ids.append(self.piece_to_id(part[: end + 2]))
                part = part[end + 2 :]
            if part:
                ids += [self.piece_to_id(p) for p in sp.encode(part, out_type=str)]
        return ids

    def decode(self, ids: Sequence[TokenId]) -> str:
        """Text of ``ids`` (transformers' ``decode(ids, skip_special_tokens=True)``): eos, pad
        and unk are dropped, language codes kept as text."""
        plain = [int(i) for i in ids]  # numpy integers too
        self._check_ids(plain)
        skip = set(self._special_ids.values())
        pieces = [self._pieces[i] for i in plain if i not in skip]
        text = str(self._source_sp.decode_pieces(pieces)).replace(SPIECE_UNDERLINE, " ").strip()
        return _clean_up_spaces(text) if self._clean_up else text

    def decode_batch(self, batch: Sequence[Sequence[TokenId]]) -> list[str]:
        return [self.decode(ids) for ids in batch]

    def _check_ids(self, ids: Sequence[int]) -> None:
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise TokenizerError(f"token ids {bad[:10]!r} out of range [0, {self.vocab_size})")

    # ------------------------------------------------------------------ persistence

    def config(self) -> dict[str, Any]:
        """The contents of ``tokenizer.json``."""
        return {
            "format_version": FORMAT_VERSION,
            "type": TOKENIZER_TYPE,
            "source_model_file": SOURCE_MODEL_FILE,
            "target_model_file": TARGET_MODEL_FILE,
            "vocab_file": VOCAB_FILE,
            "source_lang": self._source_lang,
            "target_lang": self._target_lang,
            "languages": list(self._languages),
            "pad_id": self.pad_id,
            "bos_id": self.bos_id,
            "eos_id": self.eos_id,
            "unk_id": self.unk_id,
            "vocab_size": self.vocab_size,
            "clean_up_tokenization_spaces": self._clean_up,
        }

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``tokenizer.json``, both SentencePiece models and ``marian_vocab.json`` into
        ``directory``; return its path. Atomic like :meth:`lingolite.tokenizer.Tokenizer.save`:
        a new folder appears complete or not at all; in an existing one each file is replaced
        by a rename, ``tokenizer.json`` last."""
        vocab = json.dumps(self._vocab, indent=2, ensure_ascii=False) + "\n"
        target = save_files(
            directory,
            {
                SOURCE_MODEL_FILE: self._source_model,
                TARGET_MODEL_FILE: self._target_model,
                VOCAB_FILE: vocab.encode("utf-8"),
                CONFIG_FILE: (json.dumps(self.config(), indent=2) + "\n").encode("utf-8"),
            },
        )
        logger.info("saved Marian tokenizer (%d pieces) to %s", self.vocab_size, target)
        return target

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str]) -> MarianTokenizer:
        """Load a tokenizer saved by :meth:`save`, validating the folder.

        Every problem with ``tokenizer.json`` (missing keys, wrong types or values, files that
        are missing or outside the folder, a bad vocabulary, values that disagree with the
        files) is reported in one :class:`TokenizerError`.
        """
        folder = _check_folder(directory)
        config_path = folder / CONFIG_FILE
        if config_path.is_symlink() or config_path.exists():
            _, problem = resolve_file_inside(folder, CONFIG_FILE, CONFIG_FILE)
            if problem:
                raise TokenizerError(problem)
        config = read_json_object(
            config_path, TokenizerError, f"tokenizer folder {str(folder)!r} has no {CONFIG_FILE}"
        )
        problems = _config_problems(config)
        paths: dict[str, Path] = {}
        for key in _FILE_KEYS:
            if isinstance(config.get(key), str):
                path, problem = resolve_file_inside(folder, config[key], key)
                if problem:
                    problems.append(problem)
                else:
                    paths[key] = path
        vocab: Any = None
        if "vocab_file" in paths:
            vocab, problem = _read_vocab(paths["vocab_file"])
            problems += [problem] if problem else vocab_problems(vocab)
        if problems:
            raise TokenizerError(f"invalid {str(config_path)!r}: " + "; ".join(problems))

        tokenizer = cls(
            paths["source_model_file"].read_bytes(),
            paths["target_model_file"].read_bytes(),
            vocab,
            source_lang=config["source_lang"],
            target_lang=config["target_lang"],
            clean_up_tokenization_spaces=config["clean_up_tokenization_spaces"],
        )
        mismatches = [
            f"{key} is {config[key]!r} but the files give {value!r}"
            for key, value in tokenizer.config().items()
            if key not in _FILE_KEYS and config[key] != value
        ]
        if mismatches:
            raise TokenizerError(
                f"{str(config_path)!r} does not match its files: " + "; ".join(mismatches)
            )
        return tokenizer

    @classmethod
    def from_hf_folder(
        cls,
        directory: str | os.PathLike[str],
        *,
        source_lang: str | None = None,
        target_lang: str | None = None,
    ) -> MarianTokenizer:
        """Read a Hugging Face Marian folder (``source.spm``, ``target.spm``, ``vocab.json``, and
        optionally ``tokenizer_config.json`` and ``special_tokens_map.json``).

        ``source_lang`` and ``target_lang`` default to ``tokenizer_config.json``'s; a
        multilingual-target model (``>>xx<<`` codes in the vocabulary) takes its targets from
        the codes, so the config's ``target_lang`` (often a group such as ``"mul"``) is ignored.
        Options that change the ids in ways this class does not reproduce (``separate_vocabs``,
        ``target_vocab_file``, other special tokens, ``sp_model_kwargs``, ...) are refused, all
        problems in one :class:`TokenizerError`. Symbolic links are followed: the Hugging Face
        cache links a snapshot's files to blobs outside the folder, and the names are fixed.
        """
        folder = _check_folder(directory)
        problems: list[str] = []
        options: dict[str, Any] = {}
        for name in (HF_CONFIG_FILE, HF_SPECIAL_TOKENS_FILE):
            if (folder / name).exists():
                data = read_json_object(folder / name, TokenizerError, "")
                problems += [f"{name}: {p}" for p in _hf_option_problems(data)]
                options.update(data)
        missing = [
            name
            for name in (SOURCE_MODEL_FILE, TARGET_MODEL_FILE, HF_VOCAB_FILE)
            if not (folder / name).is_file()
        ]
        if missing:
            problems.append(f"missing files {missing!r}")
        vocab: Any = None
        if HF_VOCAB_FILE not in missing:
            vocab, problem = _read_vocab(folder / HF_VOCAB_FILE)
            vocab_issues = [problem] if problem else vocab_problems(vocab)
            problems += vocab_issues
            if not vocab_issues:
                added = added_token_problems(options.get("added_tokens_decoder"), vocab)
                problems += [f"{HF_CONFIG_FILE}: {p}" for p in added]
        source = source_lang if source_lang is not None else options.get("source_lang")
        target = target_lang if target_lang is not None else options.get("target_lang")
        if source is None:
            problems.append(f"no source_lang: give one or set it in {HF_CONFIG_FILE}")
        if problems or source is None:
            raise TokenizerError(
                f"cannot import Hugging Face Marian folder {str(folder)!r}: " + "; ".join(problems)
            )
        if target_lang is None and target is not None and language_codes(vocab):
            logger.info(
                "multilingual-target model: target_lang %r of %s ignored, its targets are the "
                ">>xx<< codes",
                target,
                HF_CONFIG_FILE,
            )
            target = None
        return cls(
            (folder / SOURCE_MODEL_FILE).read_bytes(),
            (folder / TARGET_MODEL_FILE).read_bytes(),
            vocab,
            source_lang=source,
            target_lang=target,
            clean_up_tokenization_spaces=bool(options.get("clean_up_tokenization_spaces", False)),
        )


def language_codes(vocab: Mapping[str, int]) -> list[str]:
    """The codes ``xx`` of the vocabulary's ``>>xx<<`` entries (transformers'
    ``supported_language_codes``), sorted."""
    return sorted(p[2:-2] for p in vocab if p.startswith(">>") and p.endswith("<<"))


def vocab_problems(vocab: Any) -> list[str]:
    """Every problem with a Marian vocabulary: it must map distinct string pieces onto the ids
    ``0 .. n - 1`` and hold ``</s>``, ``<unk>`` and ``<pad>``."""
    if not isinstance(vocab, dict):
        return [f"the vocabulary must be a JSON object, got {type(vocab).__name__}"]
    bad = {k: v for k, v in vocab.items() if type(v) is not int}
    if bad:
        return [f"vocabulary ids must be integers, got {dict(list(bad.items())[:5])!r}"]
    problems = []
    missing = [piece for piece in _SPECIAL_PIECES if piece not in vocab]
    if missing:
        problems.append(f"the vocabulary lacks the special pieces {missing!r}")
    counts = Counter(vocab.values())
    size = len(vocab)
    wrong = sorted(i for i, n in counts.items() if n > 1 or not 0 <= i < size)
    if wrong:
        problems.append(
            f"vocabulary ids must be 0..{size - 1}, each once; out of range or repeated: "
            f"{wrong[:10]!r}"
        )
    return problems


def added_token_problems(added: Any, vocab: Mapping[str, int]) -> list[str]:
    """Why ``added_tokens_decoder`` (id -> token) of a tokenizer config is not only the special
    pieces at their vocabulary ids, with transformers' default flags (none when it is, or is
    absent)."""
    if added is None:
        return []
    if not isinstance(added, dict):
        return [f"added_tokens_decoder must be an object, got {type(added).__name__}"]
    problems = []
    for key, token in added.items():
        content = token.get("content") if isinstance(token, dict) else token
        flags = token if isinstance(token, dict) else {}
        if content not in _SPECIAL_PIECES or str(vocab.get(content)) != key:
            problems.append(
                f"added_tokens_decoder {key!r}: {content!r} is not a special piece at its "
                f"vocabulary id (unsupported)"
            )
        set_flags = [f for f in ("lstrip", "rstrip", "single_word") if flags.get(f)]
        if set_flags:
            problems.append(f"added_tokens_decoder {key!r} sets {set_flags!r} (unsupported)")
    return problems


def _hf_option_problems(options: Mapping[str, Any]) -> list[str]:
    """Options of ``tokenizer_config.json`` / ``special_tokens_map.json`` this class cannot
    reproduce, each naming its value."""
    problems = []
    for key, default in (
        ("eos_token", EOS_PIECE),
        ("unk_token", UNK_PIECE),
        ("pad_token", PAD_PIECE),
    ):
        value = options.get(key, default)
        content = value.get("content") if isinstance(value, dict) else value
        if content != default:
            problems.append(f"{key} {value!r} is not supported (only {default!r})")
    for key in ("separate_vocabs", "split_special_tokens", "do_lower_case"):
        if options.get(key):
            problems.append(f"{key} {options[key]!r} is not supported")
    for key in (
        "target_vocab_file",
        "sp_model_kwargs",
        "additional_special_tokens",
        "extra_special_tokens",
    ):
        if options.get(key):  # null, {} and [] are the defaults
            problems.append(f"{key} {options[key]!r} is not supported")
    for key in ("source_lang", "target_lang"):
        if options.get(key) is not None and not isinstance(options[key], str):
            problems.append(f"{key} must be a string, got {options[key]!r}")
    cleanup = options.get("clean_up_tokenization_spaces", False)
    if not isinstance(cleanup, bool):
        problems.append(f"clean_up_tokenization_spaces must be true or false, got {cleanup!r}")
    return problems


def _config_problems(config: Mapping[str, Any]) -> list[str]:
    """Every problem with the keys, types and fixed values of a Marian ``tokenizer.json``."""
    problems: list[str] = []
    kinds = {"int": int, "str": str, "list": list, "bool": bool}
    for key, kind in _REQUIRED_KEYS.items():
        if key not in config:
            problems.append(f"missing key {key!r}")
            continue
        value = config[key]
        if value is None and kind.endswith("?"):
            continue
        want = kinds[kind.rstrip("?")]
        # bool is a subclass of int, but true/false is never a valid id or size.
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            problems.append(f"{key!r} must be a {kind}, got {type(value).__name__} {value!r}")
    if isinstance(config.get("format_version"), int) and config["format_version"] != FORMAT_VERSION:
        problems.append(
            f"unsupported format_version {config['format_version']!r} (expected {FORMAT_VERSION})"
        )
    if isinstance(config.get("type"), str) and config["type"] != TOKENIZER_TYPE:
        problems.append(f"unsupported type {config['type']!r} (expected {TOKENIZER_TYPE!r})")
    return problems


def _check_folder(directory: str | os.PathLike[str]) -> Path:
    folder = Path(directory)
    if not folder.exists():
        raise TokenizerError(f"tokenizer folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise TokenizerError(f"tokenizer path {str(folder)!r} is not a directory")
    return folder


def _read_vocab(path: Path) -> tuple[Any, str | None]:
    """The parsed vocabulary file, or None and why it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, f"{path.name} is not valid JSON: {exc}"


def _load_spm(model: bytes, name: str) -> spm.SentencePieceProcessor:
    if not model:
        raise TokenizerError(f"cannot load {name}: the model is empty (0 bytes)")
    try:
        return spm.SentencePieceProcessor(model_proto=model)
    except (RuntimeError, OSError, IndexError) as exc:
        raise TokenizerError(f"cannot load {name}: {exc}") from exc


def _clean_up_spaces(text: str) -> str:
    """transformers' ``clean_up_tokenization``: no space before punctuation and contractions."""
    for before, after in (
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
        (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ):  # fmt: skip
        text = text.replace(before, after)
    return text
