"""Parallel-corpus reading, example building, token-budget batching and collation.

A corpus folder holds line-aligned files ``{split}.{lang}`` or ``{split}.{lang}.gz`` (UTF-8, one
sentence a line; line N of every language of a split translates line N of the others).

Shape legend: ``b`` batch size, ``s`` padded source length, ``t`` padded target length.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from lingolite.tokenizer import LANGUAGE_RE, TokenId, Tokenizer

logger = logging.getLogger(__name__)


class DataError(ValueError):
    """Missing, ambiguous, misaligned or invalid data; the message names files and values."""


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
    """Aligned ``(src, tgt)`` sentence pairs of ``split``, including pairs with empty lines."""
    raw = load_directions(data_dir, split, [Direction(src_lang, tgt_lang)])
    return [(pair.src, pair.tgt) for pair in raw]


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
