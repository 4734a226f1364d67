"""A tiny synthetic parallel corpus in English, German and French.

Sentences come from a grammar ``subject verb object place`` whose phrases are translated
phrase by phrase, so a small model can learn it in seconds and the output is checkable exactly.
"""

from __future__ import annotations

import gzip
import itertools
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Final

LANGUAGES: Final = ("de", "en", "fr")
SPLITS: Final = ("train", "val", "test_2016_flickr")

# Each phrase is (en, de, fr); German objects are in the accusative.
SUBJECTS: Final = (
    ("a man", "ein Mann", "un homme"),
    ("a woman", "eine Frau", "une femme"),
    ("a child", "ein Kind", "un enfant"),
    ("a girl", "ein Mädchen", "une fille"),
    ("a boy", "ein Junge", "un garçon"),
    ("two dogs", "zwei Hunde", "deux chiens"),
    ("the old man", "der alte Mann", "le vieil homme"),
    ("a young woman", "eine junge Frau", "une jeune femme"),
)
VERBS: Final = (
    ("rides", "fährt", "conduit"),
    ("carries", "trägt", "porte"),
    ("sees", "sieht", "voit"),
    ("pulls", "zieht", "tire"),
    ("paints", "malt", "peint"),
    ("holds", "hält", "tient"),
)
OBJECTS: Final = (
    ("a bike", "ein Fahrrad", "un vélo"),
    ("a red ball", "einen roten Ball", "un ballon rouge"),
    ("a small boat", "ein kleines Boot", "un petit bateau"),
    ("a blue car", "ein blaues Auto", "une voiture bleue"),
    ("a big box", "eine große Kiste", "une grande boîte"),
    ("a white cat", "eine weiße Katze", "un chat blanc"),
)
PLACES: Final = (
    ("on the street", "auf der Straße", "dans la rue"),
    ("in the park", "im Park", "dans le parc"),
    ("at the beach", "am Strand", "à la plage"),
    ("near the lake", "am See", "près du lac"),
    ("in the snow", "im Schnee", "dans la neige"),
)
_COLUMN: Final = {"en": 0, "de": 1, "fr": 2}
# Lines of val and test_2016_flickr.
HELD_OUT_LINES: Final = 40


def sentence(parts: Sequence[int], lang: str) -> str:
    """The sentence of grammar choices ``parts`` in ``lang``, capitalised, with a full stop."""
    column = _COLUMN[lang]
    phrases = [
        table[index][column]
        for table, index in zip((SUBJECTS, VERBS, OBJECTS, PLACES), parts, strict=True)
    ]
    text = " ".join(phrases)
    return f"{text[0].upper()}{text[1:]}."


def vocabulary(lang: str) -> list[str]:
    """Every word the grammar produces in ``lang``, as written in a sentence."""
    choices = itertools.product(
        *(range(len(table)) for table in (SUBJECTS, VERBS, OBJECTS, PLACES))
    )
    return sorted({word for parts in choices for word in sentence(parts, lang).split()})


def write_toy_corpus(directory: Path, n_train: int = 400, seed: int = 0, gz: bool = False) -> None:
    """Write ``{split}.{lang}[.gz]`` for train (``n_train`` lines), val and test (40 lines)."""
    directory.mkdir(parents=True, exist_ok=True)
    sizes = {"train": n_train, "val": HELD_OUT_LINES, "test_2016_flickr": HELD_OUT_LINES}
    for split_index, split in enumerate(SPLITS):
        rng = random.Random(seed * len(SPLITS) + split_index)
        choices = [
            (
                rng.randrange(len(SUBJECTS)),
                rng.randrange(len(VERBS)),
                rng.randrange(len(OBJECTS)),
                rng.randrange(len(PLACES)),
            )
            for _ in range(sizes[split])
        ]
        for lang in LANGUAGES:
            data = "".join(f"{sentence(parts, lang)}\n" for parts in choices).encode("utf-8")
            path = directory / f"{split}.{lang}"
            if gz:
                (path.with_name(path.name + ".gz")).write_bytes(gzip.compress(data, mtime=0))
            else:
                path.write_bytes(data)
