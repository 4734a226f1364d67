"""Shared fixtures: a toy corpus, a tokenizer trained on it, and the shared Multi30k data.

The shared data folder is ``../shared/data`` beside the repository, or ``$LINGOLITE_SHARED_DATA``
(CI points it nowhere once to prove that a plain clone passes). Tests that need more than the
small committed sample in ``tests/data`` skip without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lingolite.data import read_lines
from lingolite.tokenizer import Tokenizer
from tests.corpus import LANGUAGES, write_toy_corpus

TOY_VOCAB_SIZE = 128


@pytest.fixture(scope="session")
def toy_corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Plain-text toy corpus: train (400 lines), val and test_2016_flickr (40) in en, de, fr."""
    directory = tmp_path_factory.mktemp("toy_corpus")
    write_toy_corpus(directory)
    return directory


@pytest.fixture(scope="session")
def toy_tokenizer(toy_corpus_dir: Path) -> Tokenizer:
    """A 128-piece tokenizer trained on the toy train split of en, de and fr."""
    texts = {lang: read_lines(toy_corpus_dir / f"train.{lang}") for lang in LANGUAGES}
    return Tokenizer.train(texts, vocab_size=TOY_VOCAB_SIZE)


@pytest.fixture(scope="session")
def toy_tokenizer_dir(toy_tokenizer: Tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``toy_tokenizer`` saved to a folder (do not modify it: it is shared by the session)."""
    return toy_tokenizer.save(tmp_path_factory.mktemp("toy_tokenizer") / "tokenizer")


ROOT = Path(__file__).resolve().parents[1]
# The first 250 test_2016_flickr lines of each Multi30k language, in the repository.
MULTI30K_SAMPLE = ROOT / "tests" / "data" / "multi30k"


def shared_data() -> Path:
    """The shared data folder (it may not exist: users clone without it)."""
    return Path(os.environ.get("LINGOLITE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def multi30k_or_sample() -> Path:
    """The shared Multi30k folder if present, else the committed test_2016_flickr sample."""
    full = shared_data() / "multi30k"
    return full if full.is_dir() else MULTI30K_SAMPLE


@pytest.fixture(scope="session")
def multi30k_dir() -> Path:
    """The shared Multi30k folder beside the project; skips the test if it is absent."""
    directory = shared_data() / "multi30k"
    if not directory.is_dir():
        pytest.skip(f"shared Multi30k data not found at {directory}")
    return directory
