"""The built-in sample text: a deterministic four-language corpus that needs no data.

Untrained exports train their tokenizer on it (:func:`builtin_tokenizer`) and the parity gate
translates its sentences (``export.parity.parity_sentences``), so an export works on a fresh
machine without any corpus.
"""

from __future__ import annotations

import itertools
import random

from lingolite.tokenizer import Tokenizer

# Vocabulary of the built-in tokenizer (the sample supports at most 198 pieces).
SAMPLE_VOCAB_SIZE = 160
SAMPLE_SENTENCES = 256

# Phrase tables (cs, de, en, fr) of a subject-verb-object-place grammar; objects are in the
# accusative. The sample only has to train a working tokenizer and give parity real sentences.
_SUBJECTS = (
    ("muž", "ein Mann", "a man", "un homme"),
    ("žena", "eine Frau", "a woman", "une femme"),
    ("dítě", "ein Kind", "a child", "un enfant"),
    ("dívka", "ein Mädchen", "a girl", "une fille"),
    ("chlapec", "ein Junge", "a boy", "un garçon"),
    ("pes", "ein Hund", "a dog", "un chien"),
    ("starý muž", "ein alter Mann", "an old man", "un vieil homme"),
    ("mladá žena", "eine junge Frau", "a young woman", "une jeune femme"),
)
_VERBS = (
    ("nese", "trägt", "carries", "porte"),
    ("vidí", "sieht", "sees", "voit"),
    ("táhne", "zieht", "pulls", "tire"),
    ("maluje", "malt", "paints", "peint"),
    ("drží", "hält", "holds", "tient"),
    ("hází", "wirft", "throws", "lance"),
)
_OBJECTS = (
    ("červený míč", "einen roten Ball", "a red ball", "un ballon rouge"),
    ("malou loď", "ein kleines Boot", "a small boat", "un petit bateau"),
    ("modré auto", "ein blaues Auto", "a blue car", "une voiture bleue"),
    ("velkou krabici", "eine große Kiste", "a big box", "une grande boîte"),
    ("bílou kočku", "eine weiße Katze", "a white cat", "un chat blanc"),
    ("kolo", "ein Fahrrad", "a bicycle", "un vélo"),
)
_PLACES = (
    ("na ulici", "auf der Straße", "on the street", "dans la rue"),
    ("v parku", "im Park", "in the park", "dans le parc"),
    ("na pláži", "am Strand", "at the beach", "à la plage"),
    ("u jezera", "am See", "near the lake", "près du lac"),
    ("ve sněhu", "im Schnee", "in the snow", "dans la neige"),
    ("před domem", "vor dem Haus", "in front of the house", "devant la maison"),
)
SAMPLE_LANGUAGES = ("cs", "de", "en", "fr")


def sample_texts(n: int = SAMPLE_SENTENCES) -> dict[str, list[str]]:
    """``n`` parallel sentences per language of :data:`SAMPLE_LANGUAGES`, always the same."""
    tables = (_SUBJECTS, _VERBS, _OBJECTS, _PLACES)
    combos = list(itertools.product(*(range(len(t)) for t in tables)))
    chosen = random.Random(0).sample(combos, n)
    out: dict[str, list[str]] = {}
    for column, lang in enumerate(SAMPLE_LANGUAGES):
        sentences = []
        for parts in chosen:
            text = " ".join(t[i][column] for t, i in zip(tables, parts, strict=True))
            sentences.append(f"{text[0].upper()}{text[1:]}.")
        out[lang] = sentences
    return out


def builtin_tokenizer() -> Tokenizer:
    """The tokenizer of untrained exports: trained on :func:`sample_texts`, deterministic."""
    return Tokenizer.train(sample_texts(), vocab_size=SAMPLE_VOCAB_SIZE)
