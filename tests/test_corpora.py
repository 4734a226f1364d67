"""Tests of the corpus layer of lingolite.data: file forms, mixing, cleaning, streaming."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from lingolite.data import (
    CorpusSpec,
    DataError,
    Direction,
    PairFilter,
    build_training_set,
    build_validation_sets,
    find_corpus_files,
    iter_clean_pairs,
    iter_corpus_pairs,
    parse_corpus_spec,
)
from lingolite.tokenizer import Tokenizer

EN_DE = Direction("en", "de")
DE_EN = Direction("de", "en")
PAIRS = [
    ("a house.", "ein Haus."),
    ("a man rides.", "ein Mann fährt."),
    ("two dogs.", "zwei Hunde."),
]


def write(path: Path, lines: list[str] | bytes) -> Path:
    data = lines if isinstance(lines, bytes) else "".join(f"{line}\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def moses(folder: Path, corpus: str, pairs: list[tuple[str, str]], gz: bool = True) -> None:
    ext = ".gz" if gz else ""
    write(folder / f"{corpus}.de-en.en{ext}", [en for en, _ in pairs])
    write(folder / f"{corpus}.de-en.de{ext}", [de for _, de in pairs])


def texts(folder: Path, corpus: str, direction: Direction) -> list[tuple[str, str]]:
    return [(p.src, p.tgt) for p in iter_corpus_pairs(folder, corpus, direction)]


def test_three_file_forms_read_the_same_pairs(tmp_path: Path) -> None:
    split, opus, tsv = (tmp_path / name for name in ("split", "opus", "tsv"))
    for folder in (split, opus, tsv):
        folder.mkdir()
    write(split / "train.en", [en for en, _ in PAIRS])
    write(split / "train.de.gz", [de for _, de in PAIRS])
    moses(opus, "news", PAIRS)
    write(tsv / "web.de-en.tsv", [f"{de}\t{en}" for en, de in PAIRS])  # column 1 is de
    assert find_corpus_files(split, "train", "en", "de").kind == "split"
    assert find_corpus_files(opus, "news", "en", "de").kind == "moses"
    assert find_corpus_files(tsv, "web", "en", "de").kind == "tsv"
    assert texts(split, "train", EN_DE) == PAIRS
    assert texts(opus, "news", EN_DE) == PAIRS
    assert texts(tsv, "web", EN_DE) == PAIRS
    assert texts(tsv, "web", DE_EN) == [(de, en) for en, de in PAIRS]


def test_missing_and_ambiguous_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no files for corpus 'news' en-de.*news\.en-de\.tsv"):
        find_corpus_files(tmp_path, "news", "en", "de")
    moses(tmp_path, "news", PAIRS)
    write(tmp_path / "news.en-de.tsv", [f"{en}\t{de}" for en, de in PAIRS])
    with pytest.raises(DataError, match=r"ambiguous .*\['moses', 'tsv'\]"):
        find_corpus_files(tmp_path, "news", "en", "de")
    moses(tmp_path, "web", PAIRS, gz=False)
    moses(tmp_path, "web", PAIRS, gz=True)
    with pytest.raises(DataError, match=r"both plain and \.gz.*web\.de-en\.en"):
        find_corpus_files(tmp_path, "web", "en", "de")


def test_bad_lines_name_file_and_line_or_are_counted(tmp_path: Path) -> None:
    write(tmp_path / "a.en", ["ok", "also ok", "third"])
    write(tmp_path / "a.de", b"gut\n\xff\xfe kaputt\ndritte\n")
    with pytest.raises(DataError, match=r"a\.de' line 2: invalid UTF-8 at byte 0"):
        list(iter_corpus_pairs(tmp_path, "a", EN_DE))
    write(tmp_path / "b.en", ["ok", "", "third"])
    write(tmp_path / "b.de", ["gut", "zwei", "dritte"])
    with pytest.raises(DataError, match=r"b\.en' line 2: empty side.*--skip-bad-lines"):
        list(iter_corpus_pairs(tmp_path, "b", EN_DE))
    write(tmp_path / "c.de-en.tsv", ["gut\tok", "nur eine Spalte", "a\tb\tc", "dritte\tthird"])
    with pytest.raises(DataError, match=r"c\.de-en\.tsv' line 2: 0 tabs"):
        list(iter_corpus_pairs(tmp_path, "c", EN_DE))

    from lingolite.data import ReadStats

    stats = ReadStats()
    got = [
        (p.src, p.tgt) for p in iter_corpus_pairs(tmp_path, "c", EN_DE, skip_bad=True, stats=stats)
    ]
    assert got == [("ok", "gut"), ("third", "dritte")]
    assert stats.lines == 4
    assert stats.bad == Counter(
        {
            "0 tabs where one separates the two sides": 1,
            "2 tabs where one separates the two sides": 1,
        }
    )
    stats = ReadStats()
    assert len(list(iter_corpus_pairs(tmp_path, "a", EN_DE, skip_bad=True, stats=stats))) == 2
    assert stats.bad == Counter({"invalid UTF-8 at byte 0": 1})


def test_ragged_files_always_raise(tmp_path: Path) -> None:
    write(tmp_path / "r.de-en.en.gz", ["one", "two", "three"])
    write(tmp_path / "r.de-en.de.gz", ["eins", "zwei"])
    with pytest.raises(
        DataError, match=r"misaligned en-de: '.*r\.de-en\.de\.gz' ends after 2 lines"
    ):
        list(iter_corpus_pairs(tmp_path, "r", EN_DE, skip_bad=True))


def test_parse_corpus_spec() -> None:
    default = [EN_DE, DE_EN]
    spec = parse_corpus_spec("data/m30k", default_directions=default)
    assert spec == CorpusSpec(Path("data/m30k"), "train", (EN_DE, DE_EN), "val", 1.0, None)
    spec = parse_corpus_spec(
        "g, train=news, valid=none, pairs=de-en, weight=0.5, valid_max=9",
        default_directions=default,
    )
    assert (spec.train, spec.valid, spec.directions, spec.weight) == ("news", None, (DE_EN,), 0.5)
    assert spec.valid_max == 9
    with pytest.raises(DataError) as err:
        parse_corpus_spec(
            "g,weight=-1,colour=red,pairs=en-en,valid_max=x", default_directions=default
        )
    message = str(err.value)
    for part in ("weight must be a finite number > 0, got '-1'", "'colour=red' is not key=value",
                 "'en-en' translates a language into itself", "valid_max must be an integer"):  # fmt: skip
        assert part in message


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    lines = [f"{w} number {i}." for i in range(200) for w in ("a house", "ein Haus")]
    return Tokenizer.train({"en": lines, "de": lines}, vocab_size=50)


def test_mix_dedups_filters_and_oversamples(tmp_path: Path, tokenizer: Tokenizer) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    pairs_a = [(f"a house number {i}.", f"ein Haus number {i}.") for i in range(10)]
    # b repeats two pairs of a (dropped), repeats one of its own (dropped), has one pair with an
    # extreme length ratio (dropped) and 4 new pairs.
    long_side = " ".join(["number"] * 30)
    pairs_b = [pairs_a[0], pairs_a[1], ("a house.", "ein Haus."), ("a house.", "ein Haus."),
               ("a house number 99.", long_side)] + [(f"number {i}.", f"number {i}.") for i in range(4)]  # fmt: skip
    moses(a, "c", pairs_a)
    moses(b, "c", pairs_b)
    specs = [
        CorpusSpec(a, "c", (EN_DE,), weight=1.0),
        CorpusSpec(b, "c", (EN_DE, DE_EN), weight=2.0),
    ]
    examples = build_training_set(tokenizer, specs, PairFilter(64, 64, max_length_ratio=3.0))
    srcs = Counter(tokenizer.decode(e.src[1:-1]) for e in examples if e.tgt_lang == "de")
    # a: 10 pairs once; b en-de: 5 new pairs (2 dups of a and 1 own dup removed) twice.
    assert len([e for e in examples if e.tgt_lang == "de"]) == 10 + 2 * 5
    assert srcs["a house number 0."] == 1
    assert srcs["a house."] == 2
    assert "a house number 99." not in srcs
    # de-en of b: a direction of its own, so a's pairs are not duplicates there: 7 distinct
    # pairs (the length-ratio pair is dropped both ways), twice each.
    assert len([e for e in examples if e.tgt_lang == "en"]) == 2 * 7
    half = build_training_set(
        tokenizer, [CorpusSpec(a, "c", (EN_DE,), weight=1.5)], PairFilter(64, 64)
    )
    assert len(half) == 15
    assert Counter(map(tuple, (e.src for e in half))).most_common(1)[0][1] == 2


def test_validation_sets_per_corpus(tmp_path: Path, tokenizer: Tokenizer) -> None:
    moses(tmp_path, "c", PAIRS)
    moses(tmp_path, "dev", PAIRS * 3)
    specs = [CorpusSpec(tmp_path, "c", (EN_DE, DE_EN), valid="dev", valid_max=4),
             CorpusSpec(tmp_path, "c", (EN_DE,), valid=None)]  # fmt: skip
    sets = build_validation_sets(tokenizer, specs, PairFilter(64, 64))
    assert list(sets) == [f"{tmp_path.name}/dev"]
    assert [e.tgt_lang for e in sets[f"{tmp_path.name}/dev"]] == ["de"] * 4 + ["en"] * 4


def test_missing_corpora_reported_together(tmp_path: Path) -> None:
    specs = [
        CorpusSpec(tmp_path / "nope", "c", (EN_DE,)),
        CorpusSpec(tmp_path, "x", (EN_DE,), valid="y"),
    ]
    with pytest.raises(DataError) as err:
        list(iter_clean_pairs(specs))
    assert "nope' does not exist" in str(err.value)
    assert "corpus 'x' en-de" in str(err.value) and "corpus 'y' en-de" in str(err.value)


PEAK_RSS = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from lingolite.data import CorpusSpec, Direction, iter_clean_pairs
    spec = CorpusSpec(Path(sys.argv[1]), "big", (Direction("en", "de"),))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    count = sum(1 for _ in iter_clean_pairs([spec]))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"pairs": count, "grew_kib": after - before}))
    """
)


def data_pass_growth(folder: Path, n: int) -> dict[str, int]:
    folder.mkdir()
    with (
        gzip.open(folder / "big.de-en.en.gz", "wt") as en,
        gzip.open(folder / "big.de-en.de.gz", "wt") as de,
    ):
        for i in range(n):
            en.write(f"sentence {i} about item {i * 7919 % 10007} in the city.\n")
            de.write(f"Satz {i} über Ding {i * 7919 % 10007} in der Stadt.\n")
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(folder)], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).parents[1])  # fmt: skip
    result: dict[str, int] = json.loads(out.stdout)
    assert result["pairs"] == n
    return result


def test_data_pass_memory_does_not_grow_with_corpus_size(tmp_path: Path) -> None:
    """Peak RSS of a streamed, deduplicated pass over 20k vs 200k pairs.

    A pass that kept every pair (or a Python set of their hashes) would grow by well over 10 MiB
    over the 180k extra pairs; the streamed pass with the on-disk duplicate index stays flat.
    """
    small = data_pass_growth(tmp_path / "small", 20_000)
    large = data_pass_growth(tmp_path / "large", 200_000)
    assert large["grew_kib"] - small["grew_kib"] < 4 * 1024, (small, large)


def test_data_pass_benchmark_writes_its_report(tmp_path: Path) -> None:
    from benchmarks import data_pass

    out = tmp_path / "data_pass.json"
    assert (
        data_pass.main(["--sizes", "300,3000", "--out", str(out), "--workdir", str(tmp_path)]) == 0
    )
    data = json.loads(out.read_text())
    assert [(r["pairs"], r["kept"], r["duplicates"]) for r in data["runs"]] == [
        (300, 297, 3), (3000, 2970, 30)
    ]  # fmt: skip
    assert data["rss_ratio"] > 0 and "peak RSS" in out.with_suffix(".md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data_pass.json", "data_pass.md"]
    with pytest.raises(SystemExit):
        data_pass.main(["--sizes", "ten"])
