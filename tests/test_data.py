"""Tests of lingolite.data: reading, examples, token-budget batching and collation."""

from __future__ import annotations

import gzip
import itertools
from collections import Counter
from pathlib import Path

import pytest
import torch

from lingolite.data import (
    Batch,
    DataError,
    Direction,
    Example,
    TokenBudgetBatcher,
    build_examples,
    collate,
    example_lengths,
    load_directions,
    parse_pairs,
    read_lines,
    read_parallel,
)
from lingolite.tokenizer import BOS_ID, PAD_ID, Tokenizer
from tests.corpus import HELD_OUT_LINES, sentence, write_toy_corpus
from tests.helpers import token_ids

PAIRS = [("en", "de"), ("de", "en"), ("en", "fr")]
# (src_len, tgt_len) of 300 synthetic examples with many ties, like real corpora.
LENGTHS = [(3 + (i * 7) % 23, 2 + (i * 11) % 29) for i in range(300)]


def test_read_plain_and_gz(tmp_path: Path, toy_corpus_dir: Path) -> None:
    write_toy_corpus(tmp_path, gz=True)
    assert (tmp_path / "val.en.gz").is_file()
    assert not (tmp_path / "val.en").exists()
    plain = read_parallel(toy_corpus_dir, "val", "en", "de")
    assert read_parallel(tmp_path, "val", "en", "de") == plain
    assert len(plain) == HELD_OUT_LINES
    assert plain[0] == (
        sentence_of(toy_corpus_dir, "val.en", 0),
        sentence_of(tmp_path, "val.de", 0),
    )
    assert plain[0][0].startswith(plain[0][0][0].upper()) and plain[0][0].endswith(".")


def sentence_of(directory: Path, name: str, line: int) -> str:
    path = directory / name
    if not path.exists():
        path = directory / f"{name}.gz"
    return read_lines(path)[line]


def test_read_lines_splits_on_newline_only(tmp_path: Path) -> None:
    path = tmp_path / "x.en"
    path.write_bytes("  a\u2028b \r\n\tc\x85d\n\n".encode())
    assert read_lines(path) == ["a\u2028b", "c\x85d", ""]
    path.write_bytes(b"no final newline")
    assert read_lines(path) == ["no final newline"]
    path.write_bytes(b"")
    assert read_lines(path) == []
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(DataError, match="not UTF-8"):
        read_lines(path)
    gz = tmp_path / "x.de.gz"
    gz.write_bytes(b"plain text")
    with pytest.raises(DataError, match="not a valid gzip file"):
        read_lines(gz)
    gz.write_bytes(gzip.compress("über\n".encode())[:-6])
    with pytest.raises(DataError, match="not a valid gzip file"):
        read_lines(gz)


def test_both_plain_and_gz_is_an_error(tmp_path: Path) -> None:
    write_toy_corpus(tmp_path)
    (tmp_path / "val.de.gz").write_bytes(gzip.compress((tmp_path / "val.de").read_bytes()))
    with pytest.raises(DataError, match=r"ambiguous corpus 'val' en-de.*val\.de'.*val\.de\.gz'"):
        read_parallel(tmp_path, "val", "en", "de")


def test_missing_files_are_named(tmp_path: Path) -> None:
    write_toy_corpus(tmp_path)
    with pytest.raises(DataError) as info:
        read_parallel(tmp_path, "val", "cs", "uk")
    message = str(info.value)
    for name in ("val.cs[.gz]", "val.uk[.gz]", "val.cs-uk.{cs,uk}[.gz]", "val.cs-uk.tsv[.gz]"):
        assert name in message
    with pytest.raises(DataError, match="does not exist"):
        read_parallel(tmp_path / "nope", "val", "en", "de")


def test_misaligned_names_files_and_counts(tmp_path: Path) -> None:
    write_toy_corpus(tmp_path)
    path = tmp_path / "val.de"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-3]))
    with pytest.raises(DataError) as info:
        load_directions(tmp_path, "val", [("en", "de"), ("de", "fr")])
    message = str(info.value)
    assert f"val.en' has {HELD_OUT_LINES} lines but" in message
    assert f"val.de' has {HELD_OUT_LINES - 3}" in message
    assert "misaligned de-fr" in message


def test_load_directions(toy_corpus_dir: Path) -> None:
    raw = load_directions(toy_corpus_dir, "val", PAIRS)
    assert len(raw) == 3 * HELD_OUT_LINES
    assert Counter((r.src_lang, r.tgt_lang) for r in raw) == {p: HELD_OUT_LINES for p in PAIRS}
    first_de_en = raw[HELD_OUT_LINES]
    assert (first_de_en.src, first_de_en.tgt) == (raw[0].tgt, raw[0].src)


def test_parse_pairs() -> None:
    assert parse_pairs("en-de, de-en,fr-en") == [("en", "de"), ("de", "en"), ("fr", "en")]
    assert str(parse_pairs("en-de")[0]) == "en-de"
    with pytest.raises(DataError) as info:
        parse_pairs("en-de,en-en,ende,EN-de,,en-de,en-de-fr")
    message = str(info.value)
    for fragment in (
        "'en-en' translates a language into itself",
        "'ende' is not of the form",
        "'EN-de' is not of the form",
        "'' is not of the form",
        "'en-de-fr' is not of the form",
        "duplicate directions ['en-de']",
    ):
        assert fragment in message


def test_build_examples_conventions(toy_tokenizer: Tokenizer, toy_corpus_dir: Path) -> None:
    examples = build_examples(toy_tokenizer, toy_corpus_dir, "val", PAIRS, 64, 64)
    assert len(examples) == 3 * HELD_OUT_LINES
    raw = load_directions(toy_corpus_dir, "val", PAIRS)
    for example, pair in zip(examples, raw, strict=True):
        assert (example.src_lang, example.tgt_lang) == (pair.src_lang, pair.tgt_lang)
        assert example.src == toy_tokenizer.encode_source(pair.src, pair.tgt_lang)
        assert example.tgt == toy_tokenizer.encode_target(pair.tgt)
        assert example.src[0] == toy_tokenizer.lang_id(pair.tgt_lang)


def test_build_examples_filters(
    toy_tokenizer: Tokenizer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_toy_corpus(tmp_path)
    for lang in ("en", "de"):
        path = tmp_path / f"val.{lang}"
        lines = path.read_text().splitlines()
        lines[0] = "" if lang == "en" else lines[0]  # empty source
        lines[1] = lines[1] if lang == "en" else "   "  # blank target
        path.write_text("\n".join(lines) + "\n")
    examples = build_examples(toy_tokenizer, tmp_path, "val", [("en", "de")], 1000, 1000)
    assert len(examples) == HELD_OUT_LINES - 2

    lengths = example_lengths(examples)
    max_src = sorted(src for src, _ in lengths)[len(lengths) // 2]
    max_tgt = sorted(tgt for _, tgt in lengths)[len(lengths) // 2]
    with caplog.at_level("INFO", logger="lingolite.data"):
        kept = build_examples(toy_tokenizer, tmp_path, "val", [("en", "de")], max_src, max_tgt)
    expected = [e for e in examples if len(e.src) <= max_src and len(e.tgt) <= max_tgt]
    assert kept == expected
    assert 0 < len(kept) < len(examples)
    dropped = len(examples) - len(kept)
    assert f"val en-de: kept {len(kept)} pairs, dropped 2 empty and {dropped} too long" in (
        caplog.text
    )
    with pytest.raises(DataError, match=r"max_src_len \(2\).*max_tgt_len \(1\).*\['cs'\]"):
        build_examples(toy_tokenizer, tmp_path, "val", [("en", "cs")], 2, 1)


def test_batches_respect_the_budget_and_cover_every_example_once() -> None:
    batcher = TokenBudgetBatcher(LENGTHS, max_tokens=120, seed=3)
    for epoch in range(3):
        batches = batcher.epoch_batches(epoch)
        assert len(batches) == len(batcher) == batcher.num_batches
        for batch in batches:
            widest = max(max(LENGTHS[i]) for i in batch)
            assert len(batch) * widest <= 120
        assert sorted(itertools.chain.from_iterable(batches)) == list(range(len(LENGTHS)))
    # Deterministic per (seed, epoch), different across epochs and seeds.
    assert batcher.epoch_batches(1) == TokenBudgetBatcher(LENGTHS, 120, seed=3).epoch_batches(1)
    assert batcher.epoch_batches(1) != batcher.epoch_batches(2)
    assert batcher.epoch_batches(1) != TokenBudgetBatcher(LENGTHS, 120, seed=4).epoch_batches(1)


def test_batches_group_similar_lengths() -> None:
    batcher = TokenBudgetBatcher(LENGTHS, max_tokens=120, shuffle=False)
    batches = batcher.epoch_batches(0)
    keys = [LENGTHS[i] for batch in batches for i in batch]
    assert keys == sorted(keys)
    assert batcher.epoch_batches(5) == batches


def test_batcher_errors() -> None:
    with pytest.raises(DataError, match=r"max_tokens \(0\).*world_size \(0\).*no examples"):
        TokenBudgetBatcher([], max_tokens=0, world_size=0)
    with pytest.raises(DataError, match=r"rank \(2\) must be in \[0, 2\)"):
        TokenBudgetBatcher(LENGTHS, max_tokens=100, rank=2, world_size=2)
    with pytest.raises(DataError, match=r"1 examples are longer than max_tokens \(10\).*index 1"):
        TokenBudgetBatcher([(3, 4), (11, 2), (0, 3)], max_tokens=10)
    with pytest.raises(DataError, match="only 1 batches for world_size 2"):
        TokenBudgetBatcher([(3, 4), (3, 2)], max_tokens=10, world_size=2)


def test_ddp_shards_are_disjoint_and_equal() -> None:
    world_size = 3
    batchers = [
        TokenBudgetBatcher(LENGTHS, 120, seed=7, rank=rank, world_size=world_size)
        for rank in range(world_size)
    ]
    total = batchers[0].num_batches
    assert total % world_size != 0  # exercise the dropped remainder
    for epoch in range(2):
        shards = [b.epoch_batches(epoch) for b in batchers]
        assert {len(shard) for shard in shards} == {total // world_size}
        seen = [i for shard in shards for batch in shard for i in batch]
        assert len(seen) == len(set(seen))
    single = TokenBudgetBatcher(LENGTHS, 120, seed=7).epoch_batches(0)
    assert shards_union(batchers, 0) <= {tuple(batch) for batch in single}


def shards_union(batchers: list[TokenBudgetBatcher], epoch: int) -> set[tuple[int, ...]]:
    return {tuple(batch) for b in batchers for batch in b.epoch_batches(epoch)}


def test_iteration_crosses_epochs_and_resumes_exactly() -> None:
    batcher = TokenBudgetBatcher(LENGTHS, 120, seed=1, rank=1, world_size=2)
    n = len(batcher)
    expected = batcher.epoch_batches(0) + batcher.epoch_batches(1) + batcher.epoch_batches(2)
    iterator = iter(batcher)
    consumed = [next(iterator) for _ in range(n + 3)]
    assert consumed == expected[: n + 3]
    state = batcher.state_dict()
    assert state["epoch"] == 1 and state["position"] == 3

    resumed = TokenBudgetBatcher(LENGTHS, 120, seed=1, rank=1, world_size=2)
    resumed.load_state_dict(state)
    rest = list(itertools.islice(iter(resumed), 2 * n - 3))
    assert rest == expected[n + 3 :]
    assert resumed.state_dict()["epoch"] == 3 and resumed.state_dict()["position"] == 0

    # Finishing an epoch moves the state to the start of the next one.
    fresh = TokenBudgetBatcher(LENGTHS, 120, seed=1, rank=1, world_size=2)
    list(itertools.islice(iter(fresh), n))
    assert (fresh.epoch, fresh.state_dict()["position"]) == (1, 0)


def test_load_state_dict_rejects_mismatches() -> None:
    batcher = TokenBudgetBatcher(LENGTHS, 120, seed=1)
    state = batcher.state_dict() | {"seed": 2, "position": 10_000}
    with pytest.raises(DataError, match=r"saved seed 2 differs from 1"):
        batcher.load_state_dict(state)
    with pytest.raises(DataError, match=r"position \(10000\) must be in"):
        batcher.load_state_dict({"epoch": 0, "position": 10_000})
    with pytest.raises(DataError, match="missing key 'position'"):
        batcher.load_state_dict({"epoch": 0})


def test_collate() -> None:
    examples = [
        Example(token_ids(4, 10, 11, 2), token_ids(20, 21, 22, 2), src_lang="en", tgt_lang="de"),
        Example(token_ids(5, 12, 2), token_ids(23, 2), src_lang="de", tgt_lang="en"),
    ]
    batch = collate(examples, pad_id=PAD_ID, bos_id=BOS_ID)
    assert batch.src_ids.dtype == torch.int64 and batch.src_mask.dtype == torch.bool
    assert batch.src_ids.tolist() == [[4, 10, 11, 2], [5, 12, 2, 0]]
    assert batch.src_mask.tolist() == [[True] * 4, [True, True, True, False]]
    assert batch.tgt_in.tolist() == [[1, 20, 21, 22], [1, 23, 0, 0]]
    assert batch.tgt_out.tolist() == [[20, 21, 22, 2], [23, 2, 0, 0]]
    assert batch.num_tgt_tokens == 6
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and moved.num_tgt_tokens == 6
    assert torch.equal(moved.tgt_out, batch.tgt_out)
    with pytest.raises(DataError, match="empty list"):
        collate([], PAD_ID, BOS_ID)
    with pytest.raises(DataError, match=r"examples \[1\] have an empty"):
        collate([examples[0], Example(token_ids(4, 2), [], "en", "de")], PAD_ID, BOS_ID)


def test_toy_pipeline_end_to_end(toy_tokenizer: Tokenizer, toy_corpus_dir: Path) -> None:
    examples = build_examples(toy_tokenizer, toy_corpus_dir, "train", PAIRS, 32, 32)
    batcher = TokenBudgetBatcher(example_lengths(examples), max_tokens=256)
    for indices in batcher.epoch_batches(0):
        batch = collate([examples[i] for i in indices], toy_tokenizer.pad_id, toy_tokenizer.bos_id)
        assert batch.src_ids.numel() <= 256 and batch.tgt_out.numel() <= 256
        assert (batch.src_ids[:, 0] >= 4).all() and (batch.src_ids[:, 0] <= 6).all()


def test_toy_corpus_is_deterministic(tmp_path: Path) -> None:
    write_toy_corpus(tmp_path / "a", seed=5)
    write_toy_corpus(tmp_path / "b", seed=5)
    write_toy_corpus(tmp_path / "c", seed=6)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(names) == 9
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "train.en").read_bytes() != (tmp_path / "c" / "train.en").read_bytes()
    assert sentence((0, 0, 0, 0), "de") == "Ein Mann fährt ein Fahrrad auf der Straße."


def test_multi30k_train_en_de(multi30k_dir: Path) -> None:
    pairs = read_parallel(multi30k_dir, "train", "en", "de")
    assert len(pairs) == 29000
    assert all(src and tgt for src, tgt in pairs)
    assert Direction("en", "de") in parse_pairs("en-de")
