"""Parallel-corpus reading, example building, token-budget batching and collation.

A corpus is named by a folder and a corpus (or split) name, and its files take one of three forms
(UTF-8, optionally gzip-compressed, one segment a line):

* ``{corpus}.{lang}[.gz]``: one file per language, line N of every language translates line N of
  the others (Multi30k's ``train.en``, ``val.de``);
* ``{corpus}.{l1}-{l2}.{lang}[.gz]``: the OPUS/Moses convention, one file pair per language pair
  (``news.de-en.de.gz`` and ``news.de-en.en.gz``);
* ``{corpus}.{l1}-{l2}.tsv[.gz]``: one file per language pair, ``l1<TAB>l2`` on each line.

Training reads corpora *streamed* (:func:`iter_corpus_pairs`, constant memory in the corpus size)
and mixes several of them (:class:`CorpusSpec`, one per ``--data`` option of ``lingolite.train``),
each with its directions, an oversampling weight and an optional validation split; exact
duplicates, over-long pairs and pairs with an extreme length ratio are dropped
(:func:`build_training_set`).

Shape legend: ``b`` batch size, ``s`` padded source length, ``t`` padded target length.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import logging
import math
import sqlite3
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from lingolite.tokenizer import LANGUAGE_RE, TokenId, Tokenizer

logger = logging.getLogger(__name__)


class DataError(ValueError):
    """Missing, ambiguous, misaligned or invalid data; the message names files and values."""


class MissingCorpusError(DataError):
    """No file of a corpus exists in any of the forms (the message lists what was looked for)."""


class Direction(NamedTuple):
    """A translation direction, e.g. ``Direction("en", "de")`` for English to German."""

    src: str
    tgt: str

    def __str__(self) -> str:
        return f"{self.src}-{self.tgt}"


class RawPair(NamedTuple):
    """One untokenized sentence pair tagged with its direction."""

    src_lang: str
    tgt_lang: str
    src: str
    tgt: str


class Example(NamedTuple):
    """One tokenized training pair.

    ``src`` is ``[<2tgt_lang>] + pieces + [eos]`` and ``tgt`` is ``pieces + [eos]``; the
    decoder input is ``[bos] + tgt[:-1]`` and the decoder output ``tgt``.
    """

    src: list[TokenId]
    tgt: list[TokenId]
    src_lang: str
    tgt_lang: str


# ---------------------------------------------------------------------- reading


def find_split_file(data_dir: Path, split: str, lang: str) -> Path:
    """The file of ``lang`` in ``split``: ``{split}.{lang}`` or ``{split}.{lang}.gz``."""
    candidates = [data_dir / f"{split}.{lang}", data_dir / f"{split}.{lang}.gz"]
    found = [path for path in candidates if path.is_file()]
    if not found:
        raise DataError(f"no {lang!r} file for split {split!r}: looked for {_names(candidates)}")
    if len(found) > 1:
        raise DataError(f"ambiguous {lang!r} file for split {split!r}: both {_names(found)} exist")
    return found[0]


def read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 (optionally gzip) text file, split on ``\\n`` only, each stripped."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        text = raw.decode("utf-8-sig")
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{str(path)!r} is not a valid gzip file: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{str(path)!r} is not UTF-8 (byte {exc.start}): {exc.reason}") from exc
    if not text:
        return []
    # str.splitlines would also split on \r, \x85 and \u2028, which can occur inside a sentence
    # and would break the alignment with the other languages.
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return [line.strip() for line in lines]


def read_parallel(
    data_dir: Path, split: str, src_lang: str, tgt_lang: str
) -> list[tuple[str, str]]:
    """Aligned ``(src, tgt)`` sentence pairs of ``split``, including pairs with empty lines.

    ``split`` may be in any corpus form (``{split}.{lang}``, OPUS/Moses, TSV; see
    :func:`find_corpus_files`); nothing is filtered, so a test set is scored whole.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data folder {str(data_dir)!r} does not exist or is not a directory")
    files = find_corpus_files(data_dir, split, src_lang, tgt_lang)
    if files.kind == "split":
        raw = load_directions(data_dir, split, [Direction(src_lang, tgt_lang)])
        return [(pair.src, pair.tgt) for pair in raw]
    if files.kind == "moses":
        src_lines, tgt_lines = (read_lines(path) for path in files.paths)
        if len(src_lines) != len(tgt_lines):
            raise DataError(
                f"misaligned {src_lang}-{tgt_lang}: {_names(files.paths)} have "
                f"{len(src_lines)} and {len(tgt_lines)} lines"
            )
        return list(zip(src_lines, tgt_lines, strict=True))
    pairs = []
    for number, line in enumerate(read_lines(files.paths[0]), start=1):
        columns = line.split("\t")
        if len(columns) != 2:
            raise DataError(f"{str(files.paths[0])!r} line {number}: not two tab-separated sides")
        a, b = (c.strip() for c in columns)
        pairs.append((a, b) if files.src_column == 0 else (b, a))
    return pairs


def parse_pairs(spec: str) -> list[Direction]:
    """Parse ``"en-de,de-en"`` into directions, reporting every malformed entry at once."""
    problems: list[str] = []
    directions: list[Direction] = []
    for entry in (part.strip() for part in spec.split(",")):
        src, sep, tgt = entry.partition("-")
        if not sep or not LANGUAGE_RE.fullmatch(src) or not LANGUAGE_RE.fullmatch(tgt):
            problems.append(f"{entry!r} is not of the form 'src-tgt' with 2-3 letter codes")
        elif src == tgt:
            problems.append(f"{entry!r} translates a language into itself")
        else:
            directions.append(Direction(src, tgt))
    duplicates = sorted(str(d) for d, count in Counter(directions).items() if count > 1)
    if duplicates:
        problems.append(f"duplicate directions {duplicates!r}")
    if problems:
        raise DataError(f"invalid language pairs {spec!r}: " + "; ".join(problems))
    return directions


def load_directions(data_dir: Path, split: str, pairs: Sequence[tuple[str, str]]) -> list[RawPair]:
    """Sentence pairs of every direction, direction by direction in ``pairs`` order.

    Each language file is read once. Missing, ambiguous and misaligned files of all directions
    are reported together in one :class:`DataError`.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data folder {str(data_dir)!r} does not exist or is not a directory")
    languages = sorted({lang for pair in pairs for lang in pair})
    problems: list[str] = []
    files: dict[str, Path] = {}
    for lang in languages:
        try:
            files[lang] = find_split_file(data_dir, split, lang)
        except DataError as exc:
            problems.append(str(exc))
    if problems:
        raise DataError("; ".join(problems))
    lines = {lang: read_lines(path) for lang, path in files.items()}
    for src, tgt in pairs:
        if len(lines[src]) != len(lines[tgt]):
            problems.append(
                f"misaligned {src}-{tgt}: {str(files[src])!r} has {len(lines[src])} lines but "
                f"{str(files[tgt])!r} has {len(lines[tgt])}"
            )
    if problems:
        raise DataError("; ".join(problems))
    return [
        RawPair(src, tgt, src_line, tgt_line)
        for src, tgt in pairs
        for src_line, tgt_line in zip(lines[src], lines[tgt], strict=True)
    ]


def _names(paths: Sequence[Path]) -> str:
    return " and ".join(repr(str(path)) for path in paths)


# ---------------------------------------------------------------------- corpora

CORPUS_KINDS = ("split", "moses", "tsv")
# How ``--data DIR,key=value,...`` options are spelled; see :func:`parse_corpus_spec`.
CORPUS_KEYS = ("train", "valid", "pairs", "weight", "valid_max")
NO_VALID = "none"


@dataclass(frozen=True)
class CorpusFiles:
    """Where one language pair of a corpus lives.

    ``kind`` is one of :data:`CORPUS_KINDS`. For ``split`` and ``moses`` ``paths`` is
    ``(src_file, tgt_file)``; for ``tsv`` it is ``(file,)`` and ``src_column`` says which of the
    two tab-separated columns holds the source.
    """

    kind: str
    paths: tuple[Path, ...]
    src_column: int = 0


def find_corpus_files(folder: Path, corpus: str, src: str, tgt: str) -> CorpusFiles:
    """The files of ``corpus`` for the pair ``src``/``tgt`` in ``folder``, in any of the forms.

    Raises :class:`DataError` naming every candidate when none or more than one form exists.
    """
    folder = Path(folder)

    def one(stem: str) -> list[Path]:
        return [p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()]

    found: dict[str, CorpusFiles] = {}
    ambiguous: list[Path] = []
    split = [one(f"{corpus}.{lang}") for lang in (src, tgt)]
    if all(split):
        found["split"] = CorpusFiles("split", (split[0][0], split[1][0]))
    for a, b in ((src, tgt), (tgt, src)):
        moses = [one(f"{corpus}.{a}-{b}.{lang}") for lang in (src, tgt)]
        if all(moses):
            found.setdefault("moses", CorpusFiles("moses", (moses[0][0], moses[1][0])))
        tsv = one(f"{corpus}.{a}-{b}.tsv")
        if tsv:
            found.setdefault("tsv", CorpusFiles("tsv", (tsv[0],), 0 if a == src else 1))
        ambiguous += [p for group in (*moses, tsv) if len(group) > 1 for p in group]
    ambiguous += [p for group in split if len(group) > 1 for p in group]
    where = f"corpus {corpus!r} {src}-{tgt} in {str(folder)!r}"
    if ambiguous:
        raise DataError(f"ambiguous {where}: both plain and .gz files {_names(ambiguous)}")
    if not found:
        raise MissingCorpusError(
            f"no files for {where}: looked for {corpus}.{src}[.gz] + {corpus}.{tgt}[.gz], "
            f"{corpus}.{src}-{tgt}.{{{src},{tgt}}}[.gz] (either order of the pair) and "
            f"{corpus}.{src}-{tgt}.tsv[.gz]"
        )
    if len(found) > 1:
        names = [str(p) for files in found.values() for p in files.paths]
        raise DataError(f"ambiguous {where}: {sorted(found)} forms all exist: {names!r}")
    return next(iter(found.values()))


@dataclass
class ReadStats:
    """Lines read and bad lines skipped (``skip_bad=True``), by reason."""

    lines: int = 0
    bad: Counter[str] = field(default_factory=Counter)


def _binary_lines(path: Path) -> Iterator[bytes]:
    """Lines of a plain or gzip file, split on ``\\n`` only, streamed in bounded memory."""
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as fh:
            first = True
            for raw in fh:
                if first and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                first = False
                yield raw[:-1] if raw.endswith(b"\n") else raw
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{str(path)!r} is not a valid gzip file: {exc}") from exc


def iter_corpus_pairs(
    folder: Path,
    corpus: str,
    direction: tuple[str, str],
    *,
    skip_bad: bool = False,
    stats: ReadStats | None = None,
) -> Iterator[RawPair]:
    """Stream the sentence pairs of ``corpus`` in ``direction`` (constant memory).

    Bad lines (invalid UTF-8, an empty side, a TSV line without exactly one tab) raise
    :class:`DataError` naming the file and line number, or with ``skip_bad`` are skipped and
    counted in ``stats.bad``. Files of one pair with different line counts always raise: their
    alignment cannot be trusted.
    """
    src, tgt = direction
    files = find_corpus_files(Path(folder), corpus, src, tgt)
    stats = stats if stats is not None else ReadStats()

    def bad(reason: str, path: Path, line_no: int) -> None:
        if not skip_bad:
            raise DataError(
                f"{str(path)!r} line {line_no}: {reason} (pass --skip-bad-lines to skip and count "
                "such lines)"
            )
        stats.bad[reason] += 1

    def decode(raw: bytes, path: Path, line_no: int) -> str | None:
        try:
            return raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            bad(f"invalid UTF-8 at byte {exc.start}", path, line_no)
            return None

    if files.kind == "tsv":
        (path,) = files.paths
        for line_no, raw in enumerate(_binary_lines(path), start=1):
            stats.lines += 1
            text = decode(raw, path, line_no)
            if text is None:
                continue
            columns = raw.decode("utf-8").rstrip("\r").split("\t")
            if len(columns) != 2:
                bad(f"{len(columns) - 1} tabs where one separates the two sides", path, line_no)
                continue
            s, t = (c.strip() for c in columns[:: 1 if files.src_column == 0 else -1])
            if not s or not t:
                bad("empty side", path, line_no)
                continue
            yield RawPair(src, tgt, s, t)
        return

    src_path, tgt_path = files.paths
    line_no = 0
    for line_no, (raw_s, raw_t) in enumerate(
        itertools.zip_longest(_binary_lines(src_path), _binary_lines(tgt_path)), start=1
    ):
        if raw_s is None or raw_t is None:
            short, long_ = (src_path, tgt_path) if raw_s is None else (tgt_path, src_path)
            raise DataError(
                f"misaligned {src}-{tgt}: {str(short)!r} ends after {line_no - 1} lines while "
                f"{str(long_)!r} goes on (line {line_no})"
            )
        stats.lines += 1
        src_text = decode(raw_s, src_path, line_no)
        tgt_text = decode(raw_t, tgt_path, line_no)
        if src_text is None or tgt_text is None:
            continue
        if not src_text or not tgt_text:
            bad("empty side", src_path if not src_text else tgt_path, line_no)
            continue
        yield RawPair(src, tgt, src_text, tgt_text)


@dataclass(frozen=True)
class CorpusSpec:
    """One corpus of a training mix: where it is, which directions, how much, how validated.

    ``weight`` is how many times each of its pairs is seen per epoch: the integer part repeats
    every pair, the fraction adds a seeded random subset (``1.5``: every pair once, half of them
    twice). ``valid`` names a split/corpus of the same folder validated on (its first
    ``valid_max`` pairs per direction), or is ``None``.
    """

    path: Path
    train: str
    directions: tuple[Direction, ...]
    valid: str | None = None
    weight: float = 1.0
    valid_max: int | None = None

    @property
    def name(self) -> str:
        return f"{self.path.name}/{self.train}"


def parse_corpus_spec(
    text: str,
    *,
    default_directions: Sequence[Direction],
    default_train: str = "train",
    default_valid: str | None = "val",
) -> CorpusSpec:
    """Parse one ``--data`` value: ``DIR`` or ``DIR,key=value,...``.

    Keys: ``train`` (corpus name, default ``default_train``), ``valid`` (validation corpus, or
    ``none``; default ``default_valid``), ``pairs`` (``en-de+de-en``; default
    ``default_directions``), ``weight`` (> 0, default 1) and ``valid_max`` (validation pairs per
    direction). Every problem is reported at once.

    >>> spec = parse_corpus_spec(
    ...     "data/general,train=tatoeba,valid=tatoeba-dev,pairs=en-de,weight=2",
    ...     default_directions=[Direction("en", "de"), Direction("de", "en")],
    ... )
    >>> spec.name, spec.directions, spec.weight
    ('general/tatoeba', (Direction(src='en', tgt='de'),), 2.0)
    """
    folder, *options = text.split(",")
    problems: list[str] = []
    values: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        key = key.strip()
        if not sep or key not in CORPUS_KEYS:
            problems.append(f"{option!r} is not key=value with a key in {list(CORPUS_KEYS)}")
        elif key in values:
            problems.append(f"{key!r} given twice")
        else:
            values[key] = value.strip()
    if not folder.strip():
        problems.append("no folder before the first comma")
    directions: tuple[Direction, ...] = tuple(default_directions)
    if "pairs" in values:
        try:
            directions = tuple(parse_pairs(values["pairs"].replace("+", ",")))
        except DataError as exc:
            problems.append(str(exc))
    weight = 1.0
    if "weight" in values:
        try:
            weight = float(values["weight"])
        except ValueError:
            weight = math.nan
        if not (math.isfinite(weight) and weight > 0):
            problems.append(f"weight must be a finite number > 0, got {values['weight']!r}")
    valid_max: int | None = None
    if "valid_max" in values:
        try:
            valid_max = int(values["valid_max"])
        except ValueError:
            valid_max = 0
        if valid_max < 1:
            problems.append(f"valid_max must be an integer >= 1, got {values['valid_max']!r}")
    valid = values.get("valid", default_valid)
    if problems:
        raise DataError(f"invalid --data {text!r}: " + "; ".join(problems))
    return CorpusSpec(
        path=Path(folder.strip()),
        train=values.get("train", default_train),
        directions=directions,
        valid=None if valid is None or valid.lower() == NO_VALID else valid,
        weight=weight,
        valid_max=valid_max,
    )


def check_corpora(specs: Sequence[CorpusSpec]) -> None:
    """Raise one :class:`DataError` naming every missing or ambiguous corpus file of ``specs``."""
    problems: list[str] = []
    for spec in specs:
        if not spec.path.is_dir():
            problems.append(f"data folder {str(spec.path)!r} does not exist or is not a directory")
            continue
        for corpus in (spec.train, spec.valid):
            if corpus is None:
                continue
            for direction in spec.directions:
                try:
                    find_corpus_files(spec.path, corpus, *direction)
                except DataError as exc:
                    problems.append(str(exc))
    if problems:
        raise DataError("; ".join(dict.fromkeys(problems)))


class DuplicateFilter:
    """Exact-duplicate detection in bounded memory.

    Keys are hashed to 16 bytes (BLAKE2b; a false duplicate needs a 128-bit collision) and kept in
    a temporary SQLite table on disk with a fixed page cache, so memory does not grow with the
    number of keys. ``seen(key)`` is True for every repeat of a key after its first occurrence.
    """

    CACHE_KIB = 2048

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="lingolite-dedup-")
        self._db = sqlite3.connect(Path(self._tmp.name) / "seen.sqlite")
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(f"PRAGMA cache_size=-{self.CACHE_KIB}")
        self._db.execute("CREATE TABLE seen (digest BLOB PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("BEGIN")

    def seen(self, key: str) -> bool:
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        cursor = self._db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (digest,))
        return cursor.rowcount == 0

    def close(self) -> None:
        self._db.close()
        self._tmp.cleanup()

    def __enter__(self) -> DuplicateFilter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class PairFilter:
    """Which pairs a training set keeps (token lengths include the tag and eos)."""

    max_src_len: int
    max_tgt_len: int
    # Drop a pair whose longer side has more than this many times the tokens of the shorter
    # (counted without tag and eos); 0 keeps every ratio.
    max_length_ratio: float = 3.0
    # Skip and count bad lines instead of stopping at the first.
    skip_bad_lines: bool = False

    def problems(self) -> list[str]:
        p = [
            f"{name} ({value}) must be at least {least}"
            for name, value, least in (
                ("max_src_len", self.max_src_len, 3),
                ("max_tgt_len", self.max_tgt_len, 2),
            )
            if value < least
        ]
        if not (self.max_length_ratio == 0 or self.max_length_ratio >= 1):
            p.append(f"max_length_ratio must be 0 (off) or >= 1, got {self.max_length_ratio}")
        return p


def iter_clean_pairs(
    specs: Sequence[CorpusSpec],
    *,
    skip_bad_lines: bool = False,
    stats: list[Counter[str]] | None = None,
) -> Iterator[tuple[int, RawPair]]:
    """The *data pass*: every training pair of every corpus, exact duplicates removed, streamed.

    A pair is a duplicate when an earlier pair (of any corpus) has the same direction, source and
    target. Memory stays bounded whatever the corpus size (streamed files, on-disk duplicate
    index). Yields ``(index of the corpus in specs, pair)``; ``stats[index]`` counts ``read``,
    ``duplicate`` and skipped bad lines.
    """
    check_corpora(specs)
    stats = stats if stats is not None else []
    stats.extend(Counter() for _ in range(len(specs) - len(stats)))
    with DuplicateFilter() as duplicates:
        for index, spec in enumerate(specs):
            counts = stats[index]
            for direction in spec.directions:
                read = ReadStats()
                for raw in iter_corpus_pairs(
                    spec.path, spec.train, direction, skip_bad=skip_bad_lines, stats=read
                ):
                    if duplicates.seen(f"{raw.src_lang}\t{raw.tgt_lang}\t{raw.src}\t{raw.tgt}"):
                        counts["duplicate"] += 1
                        continue
                    yield index, raw
                counts["read"] += read.lines
                counts.update({f"bad: {reason}": n for reason, n in read.bad.items()})


def build_training_set(
    tokenizer: Tokenizer,
    specs: Sequence[CorpusSpec],
    pair_filter: PairFilter,
    *,
    seed: int = 0,
) -> list[Example]:
    """Tokenized training examples of a corpus mix: cleaned, filtered and oversampled by weight.

    Order: corpus by corpus in ``specs`` order, direction by direction, file order, then the
    oversampled repeats. Counts per corpus are logged.
    """
    problems = pair_filter.problems()
    targets = sorted({d.tgt for spec in specs for d in spec.directions})
    unknown = sorted(set(targets) - set(tokenizer.languages))
    if unknown:
        problems.append(
            f"target languages {unknown!r} have no tag in the tokenizer "
            f"(it knows {list(tokenizer.languages)!r})"
        )
    if not specs:
        problems.append("no corpora given")
    if problems:
        raise DataError("; ".join(problems))
    stats: list[Counter[str]] = []
    per_corpus: list[list[Example]] = [[] for _ in specs]
    clean = iter_clean_pairs(specs, skip_bad_lines=pair_filter.skip_bad_lines, stats=stats)
    for index, raw in clean:
        counts = stats[index]
        src = tokenizer.encode_source(raw.src, raw.tgt_lang)
        tgt = tokenizer.encode_target(raw.tgt)
        if len(src) > pair_filter.max_src_len or len(tgt) > pair_filter.max_tgt_len:
            counts["too long"] += 1
            continue
        short, long_ = sorted((len(src) - 2, len(tgt) - 1))
        if pair_filter.max_length_ratio and long_ > pair_filter.max_length_ratio * max(short, 1):
            counts["length ratio"] += 1
            continue
        counts["kept"] += 1
        per_corpus[index].append(Example(src, tgt, raw.src_lang, raw.tgt_lang))
    examples: list[Example] = []
    rng = np.random.default_rng([seed, 7])
    for spec, kept, counts in zip(specs, per_corpus, stats, strict=True):
        whole, fraction = divmod(spec.weight, 1.0)
        extra = [kept[i] for i in sorted(rng.permutation(len(kept))[: round(fraction * len(kept))])]
        examples += kept * int(whole) + extra
        summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
        logger.info(
            "train %s %s: %s; weight %g -> %d examples",
            spec.name, "+".join(map(str, spec.directions)), summary, spec.weight,
            len(kept) * int(whole) + len(extra),
        )  # fmt: skip
    return examples


def build_validation_sets(
    tokenizer: Tokenizer, specs: Sequence[CorpusSpec], pair_filter: PairFilter
) -> dict[str, list[Example]]:
    """Tokenized validation examples per corpus that has a ``valid`` split (key ``path/valid``).

    Pairs longer than the model's lengths are dropped (they cannot be scored); bad lines follow
    ``pair_filter.skip_bad_lines``; at most ``valid_max`` pairs per direction are kept.
    """
    sets: dict[str, list[Example]] = {}
    for spec in specs:
        if spec.valid is None:
            continue
        examples: list[Example] = []
        for direction in spec.directions:
            pairs = iter_corpus_pairs(
                spec.path, spec.valid, direction, skip_bad=pair_filter.skip_bad_lines
            )
            kept = 0
            for raw in pairs:
                if spec.valid_max is not None and kept >= spec.valid_max:
                    break
                src = tokenizer.encode_source(raw.src, raw.tgt_lang)
                tgt = tokenizer.encode_target(raw.tgt)
                if len(src) <= pair_filter.max_src_len and len(tgt) <= pair_filter.max_tgt_len:
                    examples.append(Example(src, tgt, raw.src_lang, raw.tgt_lang))
                    kept += 1
        sets[f"{spec.path.name}/{spec.valid}"] = examples
    return sets


# ---------------------------------------------------------------------- examples


def build_examples(
    tokenizer: Tokenizer,
    data_dir: Path,
    split: str,
    pairs: Sequence[tuple[str, str]],
    max_src_len: int,
    max_tgt_len: int,
) -> list[Example]:
    """Tokenized examples of every direction, without empty or over-long pairs.

    A pair is dropped if either side is empty, if its source (tag and eos included) is longer than
    ``max_src_len`` or its target (eos included) longer than ``max_tgt_len``. Counts of dropped
    pairs are logged per direction. Use this for training; evaluate on :func:`read_parallel`, so
    that no test sentence is left out.
    """
    problems = [
        f"{name} ({value}) must be at least {least}"
        for name, value, least in (("max_src_len", max_src_len, 3), ("max_tgt_len", max_tgt_len, 2))
        if value < least
    ]
    unknown = sorted({tgt for _, tgt in pairs} - set(tokenizer.languages))
    if unknown:
        problems.append(
            f"target languages {unknown!r} have no tag in the tokenizer "
            f"(it knows {list(tokenizer.languages)!r})"
        )
    if problems:
        raise DataError("; ".join(problems))

    examples: list[Example] = []
    stats: dict[Direction, Counter[str]] = {Direction(s, t): Counter() for s, t in pairs}
    for raw in load_directions(data_dir, split, pairs):
        counts = stats[Direction(raw.src_lang, raw.tgt_lang)]
        if not raw.src or not raw.tgt:
            counts["empty"] += 1
            continue
        src = tokenizer.encode_source(raw.src, raw.tgt_lang)
        tgt = tokenizer.encode_target(raw.tgt)
        if len(src) > max_src_len or len(tgt) > max_tgt_len:
            counts["too_long"] += 1
            continue
        counts["kept"] += 1
        examples.append(Example(src, tgt, raw.src_lang, raw.tgt_lang))
    for direction, counts in stats.items():
        logger.info(
            "%s %s: kept %d pairs, dropped %d empty and %d too long (src > %d or tgt > %d tokens)",
            split,
            direction,
            counts["kept"],
            counts["empty"],
            counts["too_long"],
            max_src_len,
            max_tgt_len,
        )
    return examples


def example_lengths(examples: Sequence[Example]) -> list[tuple[int, int]]:
    """``(len(src), len(tgt))`` of each example, the input of :class:`TokenBudgetBatcher`."""
    return [(len(example.src), len(example.tgt)) for example in examples]


# ---------------------------------------------------------------------- batching


class TokenBudgetBatcher:
    """Deterministic, resumable, shardable batches of example indices under a token budget.

    Examples are sorted by ``(src_len, tgt_len)``; each run of equal keys is a length bucket whose
    members are shuffled every epoch. Consecutive examples are grouped greedily so that
    ``batch_size * max(src_len, tgt_len) <= max_tokens`` (the padded token count of the larger
    side). The batch boundaries depend only on the sorted lengths, so every epoch has the same
    number of batches. The batch order is shuffled per epoch with a numpy Generator seeded by
    ``(seed, epoch)``.

    Sharding: all ranks compute the same batch list; the first
    ``world_size * (num_batches // world_size)`` batches of the epoch's order are dealt round
    robin, so ranks get disjoint batches and equal counts; up to ``world_size - 1`` batches (a
    different set each epoch) are left out. With ``world_size == 1`` every example appears
    exactly once per epoch.

    Iterating yields batches forever, epoch after epoch, from the current state.
    :meth:`state_dict` says which batch comes next, so a run checkpointed after training on the
    last yielded batch resumes exactly with :meth:`load_state_dict`. Iterators share the
    batcher's state: use one at a time.
    """

    def __init__(
        self,
        lengths: Sequence[tuple[int, int]],
        max_tokens: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        problems: list[str] = []
        if max_tokens < 1:
            problems.append(f"max_tokens ({max_tokens}) must be positive")
        if world_size < 1:
            problems.append(f"world_size ({world_size}) must be positive")
        elif not 0 <= rank < world_size:
            problems.append(f"rank ({rank}) must be in [0, {world_size})")
        if not lengths:
            problems.append("no examples to batch")
        if problems:
            raise DataError("; ".join(problems))
        lens = np.asarray(lengths, dtype=np.int64).reshape(len(lengths), 2)  # (n, 2)
        self._src_lens = lens[:, 0]
        self._tgt_lens = lens[:, 1]
        cost = lens.max(axis=1)
        too_long = np.flatnonzero(cost > max_tokens)
        empty = np.flatnonzero(lens.min(axis=1) < 1)
        if len(too_long):
            problems.append(
                f"{len(too_long)} examples are longer than max_tokens ({max_tokens}), "
                f"e.g. index {int(too_long[0])} with {int(cost[too_long[0]])} tokens"
            )
        if len(empty):
            problems.append(f"{len(empty)} examples have an empty side, e.g. index {int(empty[0])}")
        if problems:
            raise DataError("; ".join(problems))

        self.max_tokens = max_tokens
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self._bounds = _greedy_bounds(cost[self._sorted_order(None)], max_tokens)
        self.num_batches = len(self._bounds)  # over all ranks
        self.batches_per_epoch = self.num_batches // world_size  # for this rank
        if self.batches_per_epoch == 0:
            raise DataError(
                f"only {self.num_batches} batches for world_size {world_size}; "
                f"lower max_tokens ({max_tokens}) or add data"
            )
        self._epoch = 0
        self._position = 0

    def _sorted_order(self, rng: np.random.Generator | None) -> np.ndarray:
        """Example indices sorted by (src_len, tgt_len), ties in random order if ``rng``."""
        perm = rng.permutation(len(self._src_lens)) if rng is not None else None
        if perm is None:
            return np.lexsort((self._tgt_lens, self._src_lens))
        # lexsort is stable, so equal keys keep the random order of perm.
        return perm[np.lexsort((self._tgt_lens[perm], self._src_lens[perm]))]

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of ``epoch``, in order; each batch is a list of example indices."""
        rng = np.random.default_rng([self.seed, epoch]) if self.shuffle else None
        order = self._sorted_order(rng)
        batch_order = (
            rng.permutation(self.num_batches) if rng is not None else range(self.num_batches)
        )
        kept = list(batch_order)[: self.batches_per_epoch * self.world_size]
        return [
            order[self._bounds[b][0] : self._bounds[b][1]].tolist()
            for b in kept[self.rank :: self.world_size]
        ]

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            epoch = self._epoch
            batches = self.epoch_batches(epoch)
            while self._epoch == epoch:
                batch = batches[self._position]
                self._position += 1
                if self._position == len(batches):
                    self._epoch, self._position = epoch + 1, 0
                yield batch

    @property
    def epoch(self) -> int:
        """The epoch of the next batch."""
        return self._epoch

    def state_dict(self) -> dict[str, int]:
        """Where iteration resumes: ``position`` batches of ``epoch`` were already handed out."""
        return {
            "epoch": self._epoch,
            "position": self._position,
            "seed": self.seed,
            "world_size": self.world_size,
            "batches_per_epoch": self.batches_per_epoch,
        }

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Resume from :meth:`state_dict`; the batching setup must match the saved one."""
        problems = [f"missing key {key!r}" for key in ("epoch", "position") if key not in state]
        for key in ("seed", "world_size", "batches_per_epoch"):
            if key in state and state[key] != getattr(self, key):
                problems.append(f"saved {key} {state[key]} differs from {getattr(self, key)}")
        if not problems and state["epoch"] < 0:
            problems.append(f"epoch ({state['epoch']}) must not be negative")
        if not problems and not 0 <= state["position"] < self.batches_per_epoch:
            problems.append(
                f"position ({state['position']}) must be in [0, {self.batches_per_epoch})"
            )
        if problems:
            raise DataError("cannot load batcher state: " + "; ".join(problems))
        self._epoch = int(state["epoch"])
        self._position = int(state["position"])


def _greedy_bounds(costs: np.ndarray, max_tokens: int) -> list[tuple[int, int]]:
    """``[start, end)`` runs of consecutive costs with ``count * max(cost) <= max_tokens``."""
    bounds: list[tuple[int, int]] = []
    start, widest = 0, 0
    for i, cost in enumerate(costs.tolist()):
        if (i - start + 1) * max(widest, cost) > max_tokens:
            bounds.append((start, i))
            start, widest = i, 0
        widest = max(widest, cost)
    bounds.append((start, len(costs)))
    return bounds


# ---------------------------------------------------------------------- collation


class Batch(NamedTuple):
    """Padded tensors of one batch; pads are ``pad_id`` and ignored by the loss."""

    src_ids: torch.Tensor  # (b, s) int64
    src_mask: torch.Tensor  # (b, s) bool, True for real tokens
    tgt_in: torch.Tensor  # (b, t) int64, [bos] + tgt[:-1]
    tgt_out: torch.Tensor  # (b, t) int64, tgt
    num_tgt_tokens: int  # real (non-pad) tokens in tgt_out

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return Batch(
            self.src_ids.to(device, non_blocking=non_blocking),
            self.src_mask.to(device, non_blocking=non_blocking),
            self.tgt_in.to(device, non_blocking=non_blocking),
            self.tgt_out.to(device, non_blocking=non_blocking),
            self.num_tgt_tokens,
        )


def collate(examples: Sequence[Example], pad_id: TokenId, bos_id: TokenId) -> Batch:
    """Right-pad a list of examples into a :class:`Batch`."""
    if not examples:
        raise DataError("cannot collate an empty list of examples")
    empty = [i for i, example in enumerate(examples) if not example.src or not example.tgt]
    if empty:
        raise DataError(f"examples {empty[:10]!r} have an empty src or tgt")
    b = len(examples)
    src_lens = np.array([len(example.src) for example in examples])
    tgt_lens = np.array([len(example.tgt) for example in examples])
    src_ids = np.full((b, int(src_lens.max())), pad_id, dtype=np.int64)  # (b, s)
    tgt_out = np.full((b, int(tgt_lens.max())), pad_id, dtype=np.int64)  # (b, t)
    tgt_in = tgt_out.copy()  # (b, t)
    for i, example in enumerate(examples):
        src_ids[i, : len(example.src)] = example.src
        tgt_out[i, : len(example.tgt)] = example.tgt
        tgt_in[i, 0] = bos_id
        tgt_in[i, 1 : len(example.tgt)] = example.tgt[:-1]
    src_mask = np.arange(src_ids.shape[1]) < src_lens[:, None]  # (b, s)
    return Batch(
        src_ids=torch.from_numpy(src_ids),
        src_mask=torch.from_numpy(src_mask),
        tgt_in=torch.from_numpy(tgt_in),
        tgt_out=torch.from_numpy(tgt_out),
        num_tgt_tokens=int(tgt_lens.sum()),
    )
