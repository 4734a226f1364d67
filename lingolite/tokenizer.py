"""Joint multilingual SentencePiece tokenizer with language tags.

One unigram SentencePiece model is trained on all languages of a corpus. Its vocabulary starts
with fixed ids, then one language tag per language in sorted order:

====  =========  ==============================================
id    piece      meaning
====  =========  ==============================================
0     ``<pad>``  padding (ignored by the loss and attention)
1     ``<s>``    bos: first input of the decoder
2     ``</s>``   eos: ends every source and target sequence
3     ``<unk>``  unknown piece
4...  ``<2xx>``  target-language tags, sorted by language code
====  =========  ==============================================

Model convention: the source is ``[<2tgt>] + pieces(text) + [eos]`` (the tag of the language to
translate *into* comes first, on the source side); the target is ``pieces(text) + [eos]`` and the
decoder always starts from bos. Language tags are SentencePiece *control* symbols, so text that
contains the literal string ``<2de>`` cannot produce a tag id, and decoding drops them.

Text is normalised with SentencePiece's ``nmt_nfkc`` rule (NFKC plus NMT-specific clean-ups such
as mapping control characters away) and runs of whitespace are collapsed, leading and trailing
whitespace removed; ``decode(encode(text))`` returns that normalised text.

Training is reproducible: sentences are fed in a fixed order (languages sorted, corpus order
within a language), with no sampling (``input_sentence_size=0``) and no shuffling. When the
corpus is too small for the requested vocabulary size, training fails with a
:class:`TokenizerError` that gives the largest size possible (``hard_vocab_limit`` stays on, so a
tokenizer's vocabulary size is always the one asked for).

This module must not import torch: the PyTorch-free runtimes import it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NewType

import sentencepiece as spm

from lingolite.utils import read_json_object

logger = logging.getLogger(__name__)

TokenId = NewType("TokenId", int)
"""An index into the tokenizer vocabulary (as opposed to a language index, a length or a
position). A distinct type for mypy, a plain ``int`` at run time: ids become ``TokenId`` where
they leave SentencePiece (here) or an array (:func:`lingolite.search.as_token_ids`), and a bare
``int`` passed where a token id is expected is a type error."""

PAD_ID: Final = TokenId(0)
BOS_ID: Final = TokenId(1)
EOS_ID: Final = TokenId(2)
UNK_ID: Final = TokenId(3)
PAD_PIECE: Final = "<pad>"
BOS_PIECE: Final = "<s>"
EOS_PIECE: Final = "</s>"
UNK_PIECE: Final = "<unk>"
NORMALIZATION_RULE: Final = "nmt_nfkc"

CONFIG_FILE: Final = "tokenizer.json"
MODEL_FILE: Final = "spm.model"
FORMAT_VERSION: Final = 1
TOKENIZER_TYPE: Final = "sentencepiece-unigram"

# ISO 639-1/639-3 style codes; "-" is excluded because "en-de" names a translation direction.
LANGUAGE_RE: Final = re.compile(r"[a-z]{2,3}")

# Keys of tokenizer.json and the JSON type each must have.
_REQUIRED_KEYS: Final[dict[str, type]] = {
    "format_version": int,
    "type": str,
    "model_file": str,
    "languages": list,
    "pad_id": int,
    "bos_id": int,
    "eos_id": int,
    "unk_id": int,
    "vocab_size": int,
}


class TokenizerError(ValueError):
    """An invalid tokenizer, tokenizer folder or tokenizer input; the message names the value."""


def validate_languages(languages: Sequence[str]) -> tuple[str, ...]:
    """Return ``languages`` sorted, after checking every code; raise listing all bad codes."""
    problems: list[str] = []
    if not languages:
        problems.append("no languages given")
    bad = [
        lang for lang in languages if not (isinstance(lang, str) and LANGUAGE_RE.fullmatch(lang))
    ]
    if bad:
        problems.append(f"invalid language codes {bad!r} (expected 2-3 lowercase letters)")
    codes = [lang for lang in languages if isinstance(lang, str)]
    duplicates = sorted({lang for lang in codes if codes.count(lang) > 1})
    if duplicates:
        problems.append(f"duplicate languages {duplicates!r}")
    if problems:
        raise TokenizerError("; ".join(problems))
    return tuple(sorted(languages))


class Tokenizer:
    """A SentencePiece unigram model plus the list of languages it has tags for.

    Build one with :meth:`train` or :meth:`from_pretrained`; the constructor checks that the
    model has the fixed special ids and one control-symbol tag per language.

    >>> tok = Tokenizer.from_pretrained("pretrained/lingolite-tiny-multi30k")
    >>> tok.languages, tok.vocab_size
    (('de', 'en', 'fr'), 8000)

    A source is the target-language tag, the pieces and eos; decoding drops the specials:

    >>> ids = tok.encode_source("Two dogs play in the snow.", tgt_lang="de")
    >>> ids[0] == tok.lang_id("de"), ids[-1] == tok.eos_id
    (True, True)
    >>> tok.decode(ids)
    'Two dogs play in the snow.'
    >>> tok.lang_id("xx")
    Traceback (most recent call last):
    ...
    lingolite.tokenizer.TokenizerError: unknown language 'xx';
    this tokenizer knows ['de', 'en', 'fr']
    """

    def __init__(self, model_proto: bytes, languages: Sequence[str]) -> None:
        self._languages = validate_languages(languages)
        self._model_proto = bytes(model_proto)
        if not self._model_proto:
            raise TokenizerError("cannot load SentencePiece model: the model is empty (0 bytes)")
        try:
            self._sp = spm.SentencePieceProcessor(model_proto=self._model_proto)
        except (RuntimeError, OSError, IndexError) as exc:
            raise TokenizerError(f"cannot load SentencePiece model: {exc}") from exc
        if self._sp.get_piece_size() <= UNK_ID:
            raise TokenizerError(
                f"cannot load SentencePiece model: it has {self._sp.get_piece_size()} pieces, "
                f"fewer than the {UNK_ID + 1} special ones"
            )
        self._lang_ids = {
            lang: TokenId(int(self._sp.piece_to_id(self.lang_tag(lang))))
            for lang in self._languages
        }
        problems = self._check_model()
        if problems:
            raise TokenizerError("SentencePiece model does not match: " + "; ".join(problems))

    def _check_model(self) -> list[str]:
        sp = self._sp
        problems: list[str] = []
        for name, got, want in (
            ("pad_id", sp.pad_id(), PAD_ID),
            ("bos_id", sp.bos_id(), BOS_ID),
            ("eos_id", sp.eos_id(), EOS_ID),
            ("unk_id", sp.unk_id(), UNK_ID),
        ):
            if got != want:
                problems.append(f"{name} is {got}, expected {want}")
        for lang, tag_id in self._lang_ids.items():
            if tag_id == sp.unk_id() or not sp.is_control(tag_id):
                problems.append(f"language tag {self.lang_tag(lang)!r} is not a control symbol")
        return problems

    # ------------------------------------------------------------------ training

    @classmethod
    def train(cls, texts: Mapping[str, Sequence[str]], vocab_size: int) -> Tokenizer:
        """Train a joint unigram model on ``texts`` (language -> sentences).

        Sentences are fed language by language in sorted language order, each in its given
        order, so the same input always gives the same model. Raises :class:`TokenizerError` if
        ``vocab_size`` exceeds what the corpus supports, naming the largest possible size.
        """
        languages = validate_languages(list(texts))
        num_specials = 4 + len(languages)
        if vocab_size <= num_specials:
            raise TokenizerError(
                f"vocab_size ({vocab_size}) must exceed the {num_specials} special and "
                f"language-tag pieces"
            )
        num_sentences = sum(len(texts[lang]) for lang in languages)
        if num_sentences == 0:
            raise TokenizerError(f"no training sentences for languages {list(languages)!r}")

        def sentences() -> Iterator[str]:
            for lang in languages:
                yield from texts[lang]

        writer = io.BytesIO()
        logger.info(
            "training SentencePiece unigram (vocab %d) on %d sentences in %s",
            vocab_size,
            num_sentences,
            ", ".join(languages),
        )
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=sentences(),
                model_writer=writer,
                model_type="unigram",
                vocab_size=vocab_size,
                character_coverage=1.0,
                normalization_rule_name=NORMALIZATION_RULE,
                pad_id=PAD_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                unk_id=UNK_ID,
                pad_piece=PAD_PIECE,
                bos_piece=BOS_PIECE,
                eos_piece=EOS_PIECE,
                unk_piece=UNK_PIECE,
                control_symbols=[f"<2{lang}>" for lang in languages],
                input_sentence_size=0,
                shuffle_input_sentence=False,
                hard_vocab_limit=True,
                minloglevel=2,
            )
        except RuntimeError as exc:
            match = re.search(r"Vocabulary size too high \((\d+)\)[^<]*<= (\d+)", str(exc))
            if match:
                raise TokenizerError(
                    f"vocab_size ({match.group(1)}) is too large for this corpus of "
                    f"{num_sentences} sentences; the largest possible is {match.group(2)}"
                ) from exc
            raise TokenizerError(f"SentencePiece training failed: {exc}") from exc
        return cls(writer.getvalue(), languages)

    # ------------------------------------------------------------------ properties

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    @property
    def languages(self) -> tuple[str, ...]:
        return self._languages

    @property
    def pad_id(self) -> TokenId:
        return PAD_ID

    @property
    def bos_id(self) -> TokenId:
        return BOS_ID

    @property
    def eos_id(self) -> TokenId:
        return EOS_ID

    @property
    def unk_id(self) -> TokenId:
        return UNK_ID

    @property
    def directions(self) -> tuple[str, ...]:
        """Every ordered pair of distinct languages, as ``"src-tgt"``: a joint model has a tag
        for each language, so it can be trained on any of them."""
        langs = self._languages
        return tuple(f"{a}-{b}" for a in langs for b in langs if a != b)

    @property
    def lang_ids(self) -> dict[str, TokenId]:
        """Language -> the id of its tag: every language has one."""
        return dict(self._lang_ids)

    @property
    def model_proto(self) -> bytes:
        """The serialized SentencePiece model."""
        return self._model_proto

    @staticmethod
    def lang_tag(lang: str) -> str:
        """The piece of the target-language tag, e.g. ``"<2de>"``."""
        return f"<2{lang}>"

    def lang_id(self, lang: str) -> TokenId:
        """The token id of the tag for ``lang``; :class:`TokenizerError` if it has none."""
        try:
            return self._lang_ids[lang]
        except KeyError:
            raise TokenizerError(
                f"unknown language {lang!r}; this tokenizer knows {list(self._languages)!r}"
            ) from None

    def id_to_piece(self, token_id: TokenId) -> str:
        self._check_ids([token_id])
        return str(self._sp.id_to_piece(token_id))

    def piece_to_id(self, piece: str) -> TokenId:
        """The id of ``piece``, or ``unk_id`` if the vocabulary does not contain it."""
        return TokenId(int(self._sp.piece_to_id(piece)))

    # ------------------------------------------------------------------ encoding

    def encode(self, text: str) -> list[TokenId]:
        """Pieces of ``text`` only: no bos, eos or language tag."""
        # SentencePiece is untyped (Any), so its ids enter LingoLite typed as TokenId here, without
        # a per-id conversion: a NewType is a plain int at run time.
        return list(self._sp.encode(text))

    def encode_batch(self, texts: Sequence[str]) -> list[list[TokenId]]:
        return [list(ids) for ids in self._sp.encode(list(texts))]

    def encode_source(self, text: str, tgt_lang: str, max_len: int | None = None) -> list[TokenId]:
        """``[<2tgt_lang>] + encode(text) + [eos]``.

        With ``max_len``, pieces are cut so that the result has at most ``max_len`` ids and still
        starts with the tag and ends with eos.
        """
        if max_len is not None and max_len < 2:
            raise TokenizerError(f"max_len ({max_len}) must be at least 2 (tag and eos)")
        pieces = self.encode(text)
        if max_len is not None:
            pieces = pieces[: max_len - 2]
        return [self.lang_id(tgt_lang), *pieces, EOS_ID]

    def encode_target(self, text: str) -> list[TokenId]:
        """``encode(text) + [eos]``; the decoder input is ``[bos] + target[:-1]``."""
        return [*self.encode(text), EOS_ID]

    def decode(self, ids: Sequence[TokenId]) -> str:
        """Text of ``ids``, dropping pad, bos, eos and language tags; unk decodes as ``" ⁇ "``."""
        plain = [int(i) for i in ids]  # numpy integers too
        self._check_ids(plain)
        skip = {PAD_ID, BOS_ID, EOS_ID, *self._lang_ids.values()}
        return str(self._sp.decode([i for i in plain if i not in skip]))

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
            "model_file": MODEL_FILE,
            "languages": list(self._languages),
            "pad_id": PAD_ID,
            "bos_id": BOS_ID,
            "eos_id": EOS_ID,
            "unk_id": UNK_ID,
            "vocab_size": self.vocab_size,
        }

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``tokenizer.json`` and ``spm.model`` into ``directory``; return its path.

        A new folder is assembled in a temporary folder beside it and renamed into place, so it
        either appears complete or not at all. Into an existing folder, each file is written to a
        temporary file and renamed over the old one (the model first, ``tokenizer.json`` last);
        other files there are left alone.
        """
        target = save_files(
            directory,
            {
                MODEL_FILE: self._model_proto,
                CONFIG_FILE: (json.dumps(self.config(), indent=2) + "\n").encode("utf-8"),
            },
        )
        logger.info("saved tokenizer (%d pieces) to %s", self.vocab_size, target)
        return target

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str]) -> Tokenizer:
        """Load a tokenizer saved by :meth:`save`, validating the folder.

        Every problem with ``tokenizer.json`` (missing keys, wrong types or values, a model file
        outside the folder, ids that disagree with the model) is reported in one
        :class:`TokenizerError`.
        """
        folder = Path(directory)
        if not folder.exists():
            raise TokenizerError(f"tokenizer folder {str(folder)!r} does not exist")
        if not folder.is_dir():
            raise TokenizerError(f"tokenizer path {str(folder)!r} is not a directory")
        config_path = folder / CONFIG_FILE
        if config_path.is_symlink() or config_path.exists():
            _, problem = resolve_file_inside(folder, CONFIG_FILE, CONFIG_FILE)
            if problem:
                raise TokenizerError(problem)
        config = read_json_object(
            config_path,
            TokenizerError,
            f"tokenizer folder {str(folder)!r} has no {CONFIG_FILE}",
        )

        problems = _check_config(config)
        model_path: Path | None = None
        if isinstance(config.get("model_file"), str):
            model_path, problem = resolve_file_inside(folder, config["model_file"])
            if problem:
                problems.append(problem)
        if problems:
            raise TokenizerError(f"invalid {str(config_path)!r}: " + "; ".join(problems))
        assert model_path is not None  # a str model_file that resolved without a problem

        tokenizer = cls(model_path.read_bytes(), config["languages"])
        mismatches = [
            f"{key} is {config[key]!r} but the model has {value!r}"
            for key, value in tokenizer.config().items()
            if key not in ("model_file", "languages") and config[key] != value
        ]
        if mismatches:
            raise TokenizerError(
                f"{str(config_path)!r} does not match {str(model_path)!r}: " + "; ".join(mismatches)
            )
        return tokenizer


def save_files(directory: str | os.PathLike[str], files: Mapping[str, bytes]) -> Path:
    """Write ``files`` (name -> bytes) into ``directory``, in order; return its path.

    A new folder is assembled in a temporary folder beside it and renamed into place, so it
    either appears complete or not at all. Into an existing folder, each file is written to a
    temporary file and renamed over the old one, in the order given (put the file that names
    the others last); other files there are left alone.
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise TokenizerError(f"cannot save tokenizer: {str(target)!r} is not a directory")
    if target.is_dir():
        for name, data in files.items():
            _atomic_write(target / name, data)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            for name, data in files.items():
                (staging / name).write_bytes(data)
                (staging / name).chmod(0o644)
            staging.chmod(0o755)  # mkdtemp creates it private
            staging.rename(target)
        except BaseException:
            for child in staging.glob("*"):
                child.unlink()
            staging.rmdir()
            raise
    return target


def _check_config(config: Mapping[str, Any]) -> list[str]:
    """Every problem with the keys, types and fixed values of a ``tokenizer.json``."""
    problems: list[str] = []
    for key, kind in _REQUIRED_KEYS.items():
        if key not in config:
            problems.append(f"missing key {key!r}")
            continue
        value = config[key]
        # bool is a subclass of int, but true/false is never a valid id or size.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(
                f"{key!r} must be a {kind.__name__}, got {type(value).__name__} {value!r}"
            )
    if isinstance(config.get("format_version"), int) and config["format_version"] != FORMAT_VERSION:
        problems.append(
            f"unsupported format_version {config['format_version']!r} (expected {FORMAT_VERSION})"
        )
    if isinstance(config.get("type"), str) and config["type"] != TOKENIZER_TYPE:
        problems.append(f"unsupported type {config['type']!r} (expected {TOKENIZER_TYPE!r})")
    if isinstance(config.get("languages"), list):
        try:
            validate_languages(config["languages"])
        except TokenizerError as exc:
            problems.append(f"'languages' {config['languages']!r}: {exc}")
    return problems


def resolve_file_inside(
    folder: Path, name: str, key: str = "model_file"
) -> tuple[Path, str | None]:
    """Resolve ``name`` inside ``folder``; the second item is a problem description (naming the
    config ``key`` that holds ``name``) or None."""
    relative = Path(name)
    if not name or relative.is_absolute() or relative.anchor:
        return relative, f"{key} {name!r} must be a relative path inside the folder"
    if ".." in relative.parts:
        return relative, f"{key} {name!r} must not contain '..'"
    root = folder.resolve()
    resolved = (folder / relative).resolve()
    if not resolved.is_relative_to(root):
        return resolved, f"{key} {name!r} resolves to {str(resolved)!r}, outside {str(root)!r}"
    if not resolved.is_file():
        return resolved, f"{key} {name!r} does not exist or is not a file"
    return resolved, None


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp creates it private
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
