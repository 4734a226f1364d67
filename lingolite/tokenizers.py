"""What translation code needs of a tokenizer (:class:`TextTokenizer`), and :func:`load_tokenizer`,
which opens a tokenizer folder of either kind by its ``tokenizer.json`` ``"type"``:

* ``"sentencepiece-unigram"``: :class:`lingolite.tokenizer.Tokenizer`, LingoLite's own joint
  model with ``<2xx>`` tags;
* ``"marian-sentencepiece"``: :class:`lingolite.marian_tokenizer.MarianTokenizer`, imported
  OPUS-MT models.

PyTorch-free, like both tokenizers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from lingolite.marian_tokenizer import TOKENIZER_TYPE as MARIAN_TYPE
from lingolite.marian_tokenizer import MarianTokenizer
from lingolite.tokenizer import CONFIG_FILE, TOKENIZER_TYPE, TokenId, Tokenizer, TokenizerError
from lingolite.utils import read_json_object

_TYPES: dict[str, type[Tokenizer] | type[MarianTokenizer]] = {
    TOKENIZER_TYPE: Tokenizer,
    MARIAN_TYPE: MarianTokenizer,
}


@runtime_checkable
class TextTokenizer(Protocol):
    """Text <-> ids for an encoder-decoder model. A source is what ``encode_source`` gives (the
    target language's tag, if the model has tags, the pieces and eos); the decoder starts from
    ``bos_id``; ``lang_ids`` maps the languages that have a tag to its id; ``directions``
    (``"src-tgt"``) are the pairs the tokenizer can serve."""

    @property
    def vocab_size(self) -> int: ...
    @property
    def languages(self) -> tuple[str, ...]: ...
    @property
    def pad_id(self) -> TokenId: ...
    @property
    def bos_id(self) -> TokenId: ...
    @property
    def eos_id(self) -> TokenId: ...
    @property
    def unk_id(self) -> TokenId: ...
    @property
    def directions(self) -> tuple[str, ...]: ...
    @property
    def lang_ids(self) -> dict[str, TokenId]: ...
    def lang_id(self, lang: str) -> TokenId: ...
    def encode(self, text: str) -> list[TokenId]: ...
    def encode_source(
        self, text: str, tgt_lang: str, max_len: int | None = None
    ) -> list[TokenId]: ...
    def encode_target(self, text: str) -> list[TokenId]: ...
    def decode(self, ids: Sequence[TokenId]) -> str: ...
    def decode_batch(self, batch: Sequence[Sequence[TokenId]]) -> list[str]: ...
    def id_to_piece(self, token_id: TokenId) -> str: ...
    def piece_to_id(self, piece: str) -> TokenId: ...
    def config(self) -> dict[str, Any]: ...
    def save(self, directory: str | os.PathLike[str]) -> Path: ...


def load_tokenizer(directory: str | os.PathLike[str]) -> Tokenizer | MarianTokenizer:
    """The tokenizer saved in ``directory``, of the class its ``tokenizer.json`` ``"type"``
    names; that class's ``from_pretrained`` validates the folder. :class:`TokenizerError` for a
    missing or unreadable ``tokenizer.json`` or an unknown type."""
    folder = Path(directory)
    config = read_json_object(
        folder / CONFIG_FILE,
        TokenizerError,
        f"tokenizer folder {str(folder)!r} has no {CONFIG_FILE}",
    )
    kind = config.get("type")
    if not isinstance(kind, str) or kind not in _TYPES:
        raise TokenizerError(
            f"unknown tokenizer type {kind!r} in {str(folder / CONFIG_FILE)!r}; "
            f"expected one of {sorted(_TYPES)!r}"
        )
    return _TYPES[kind].from_pretrained(folder)
