"""Shared fixtures: a toy corpus, a tokenizer trained on it, and the shared Multi30k data.

The shared data folder is ``../shared/data`` beside the repository, or ``$LINGOLITE_SHARED_DATA``
(CI points it nowhere once to prove that a plain clone passes). Tests that need more than the
small committed sample in ``tests/data`` skip without it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lingolite.data import read_lines
from lingolite.tokenizer import Tokenizer
from tests.corpus import LANGUAGES, write_toy_corpus
from tests.export_cache import ExportCache, session_cache
from tests.marian_fixtures import small_checkpoint

TOY_VOCAB_SIZE = 128

# The modules whose tests take longest (``pytest --durations``), roughly longest first. ``make
# test`` runs whole modules on two pytest-xdist workers (``--dist loadfile --no-loadscope-reorder``),
# handing them out in collection order: starting with the long ones keeps one worker from being
# left with a long module at the end while the other idles. test_onnx_export.py's tiny export
# comes before test_benchmarks.py, which reuses its graphs (tests/export_cache.py), as it reuses
# test_executorch.py's programs.
LONGEST_FIRST = (
    "test_executorch.py", "test_onnx_export.py", "test_import_marian.py",
    "test_executorch_lowering.py",
    "test_android_java.py", "test_benchmarks.py", "test_web.py", "test_server.py",
    "test_artifact_validation.py", "test_train_gpu.py", "test_model.py", "test_train.py",
    "test_train_speed.py", "test_ddp.py",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _handler_filters_restored() -> Iterator[None]:
    """Each test leaves the root logger's handlers' filters as it found them: ``runtime.server``'s
    ``configure_logging`` adds a flood filter to every handler, pytest's capture handlers included,
    which live for the whole session (and under xdist, any module may run after the server's)."""
    handlers = logging.getLogger().handlers
    saved = [(handler, list(handler.filters)) for handler in handlers]
    yield
    for handler, filters in saved:
        handler.filters = filters


# `make check` leaves out the tests marked `slow`: those of these modules (training, torchrun, the
# JVM, the browser, ExecuTorch lowering, a wheel build) and every test that uses one of these
# fixtures (an export, a trained checkpoint or the benchmark run).
SLOW_MODULES = {
    "test_android_java.py", "test_benchmark_marian.py", "test_ddp.py", "test_evaluate.py",
    "test_executorch.py",
    "test_executorch_lowering.py", "test_packaging.py", "test_train.py", "test_train_gpu.py",
    "test_train_speed.py", "test_web.py",
}  # fmt: skip
SLOW_FIXTURES = {
    "toy_export", "tiny_export", "toy", "folder", "small_ct2", "artifacts", "real_translator",
    "quick", "shipped",
}  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow tests; move the modules of :data:`LONGEST_FIRST` to the front, in that order
    (stable)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.path.name in SLOW_MODULES or fixtures & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session", autouse=True)
def export_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExportCache]:
    """Every graph traced once per session (tests/export_cache.py), shared by xdist workers."""
    yield from session_cache(tmp_path_factory)


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


@pytest.fixture(scope="session")
def marian_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small offline Marian en-de model (tests/marian_fixtures.py), imported with
    --max-src-len 48 --max-tgt-len 32 (do not modify it: it is shared by the session)."""
    return small_checkpoint(tmp_path_factory.mktemp("marian"))


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
