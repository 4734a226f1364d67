"""Sentence segmentation: a text becomes sentences and the verbatim text between them.

PyTorch-free. The model translates one sentence at a time, so a paragraph is split into
sentences, the sentences are translated as one batch, and the translations are put back between
the original separators (spaces, line and paragraph breaks)::

    segments = segment(text, "en")
    sentences = [s.text for s in segments if s.is_sentence]
    text_out = join(segments, translate(sentences))

Lines are split on ``"\\n"`` first (a line break always ends a sentence, and every break is kept),
then each line into sentences by Wikimedia's ``sentencex`` (rule-based, with per-language
abbreviation lists shipped inside the package: nothing is downloaded at run time). A sentence
longer than the model's source length is split further by :func:`split_long`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import sentencex


class Segment(NamedTuple):
    """A sentence (``is_sentence``; stripped of surrounding whitespace) or verbatim filler."""

    text: str
    is_sentence: bool


def segment(text: str, lang: str) -> list[Segment]:
    """Split ``text`` into sentences and the whitespace between them.

    ``"".join(s.text for s in segment(text, lang)) == text`` always holds.

    >>> segment("Hello there.  How are you?\\n\\nFine.", "en")  # doctest: +NORMALIZE_WHITESPACE
    [Segment(text='Hello there.', is_sentence=True), Segment(text='  ', is_sentence=False),
     Segment(text='How are you?', is_sentence=True), Segment(text='\\n\\n', is_sentence=False),
     Segment(text='Fine.', is_sentence=True)]
    """
    out: list[Segment] = []

    def filler(piece: str) -> None:
        if not piece:
            return
        if out and not out[-1].is_sentence:
            out[-1] = Segment(out[-1].text + piece, False)
        else:
            out.append(Segment(piece, False))

    for index, line in enumerate(text.split("\n")):
        if index:
            filler("\n")
        pieces = list(sentencex.segment(lang, line)) if line.strip() else [line]
        if "".join(pieces) != line:  # never lose text, whatever the segmenter does
            pieces = [line]
        for piece in pieces:
            core = piece.strip()
            if not core:
                filler(piece)
                continue
            start = piece.index(core)
            filler(piece[:start])
            out.append(Segment(core, True))
            filler(piece[start + len(core) :])
    return out


def sentences(text: str, lang: str) -> list[str]:
    """Just the sentences of ``text``.

    >>> sentences("Dr. Smith arrived. He was tired.", "en")
    ['Dr. Smith arrived.', 'He was tired.']
    """
    return [s.text for s in segment(text, lang) if s.is_sentence]


def join(segments: Sequence[Segment], translations: Iterable[str]) -> str:
    """Put one translation per sentence back between the original separators.

    >>> join(segment("One. Two.", "en"), ["Eins.", "Zwei."])
    'Eins. Zwei.'
    """
    it = iter(translations)
    out = [next(it) if s.is_sentence else s.text for s in segments]
    if next(it, None) is not None:
        raise ValueError("more translations than sentences")
    return "".join(out)


# Where a long sentence may be cut, best first: after clause punctuation, then between words.
_CLAUSE_END = re.compile(r"(?<=[,;:\u2013\u2014)])\s+")
_SPACE = re.compile(r"\s+")


def split_long(sentence: str, fits: Callable[[str], bool]) -> list[str]:
    """Cut ``sentence`` into consecutive pieces that each ``fits`` (e.g. the model's length).

    Cuts after clause punctuation (``, ; :``, en and em dashes, ``)``) where possible, then
    between words, and only inside a word that does not fit alone. Pieces are as long as
    possible; joined with single spaces they give the sentence back (up to whitespace).

    >>> split_long("one two, three four; five", lambda s: len(s) <= 10)
    ['one two,', 'three', 'four;', 'five']
    """
    if fits(sentence):
        return [sentence]
    out: list[str] = []
    for clause in _merge(_CLAUSE_END.split(sentence), fits):
        if fits(clause):
            out.append(clause)
            continue
        for words in _merge(_SPACE.split(clause), fits):
            out += [words] if fits(words) else _split_word(words, fits)
    return out


def _merge(parts: Sequence[str], fits: Callable[[str], bool]) -> list[str]:
    """Greedily join consecutive ``parts`` with spaces while the result still fits."""
    merged: list[str] = []
    for part in (p for p in parts if p):
        if merged and fits(f"{merged[-1]} {part}"):
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    return merged


def _split_word(word: str, fits: Callable[[str], bool]) -> list[str]:
    """Longest prefixes that fit, one after the other (at least one character each)."""
    out: list[str] = []
    while word:
        lo, hi = 1, len(word)  # the longest prefix that fits, by bisection
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(word[:mid]):
                lo = mid
            else:
                hi = mid - 1
        out.append(word[:lo])
        word = word[lo:]
    return out
