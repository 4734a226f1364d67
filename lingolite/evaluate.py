"""Translate a test split with a checkpoint and score it with sacreBLEU.

``python -m lingolite.evaluate --checkpoint runs/NAME/best --data DIR --split test_2016_flickr
--pairs en-de,de-en [--beams 1,4] [--batch-size 64] [--max-sentences N] [--out DIR]``

For every direction and beam setting (1 = greedy) the split's sources are translated with
:func:`lingolite.generate.translate_ids` (the one decoding implementation), detokenised by the
checkpoint's tokenizer and scored against the untokenised references with sacreBLEU: BLEU
(its default: cased, 13a tokenisation), BLEU lowercased, and chrF. Output folder::

    OUT/{split}.{src}-{tgt}.beam{k}.hyp   one hypothesis per source line, in corpus order
    OUT/results.json                      every score, the sacreBLEU signatures, the options
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.chrf import CHRF

from lingolite.checkpoint import load_pretrained, read_config
from lingolite.data import Direction, parse_pairs, read_parallel
from lingolite.generate import translate_ids
from lingolite.model import LingoLite
from lingolite.search import SearchConfig
from lingolite.tokenizers import TextTokenizer, load_tokenizer
from lingolite.utils import add_quiet_argument, atomic_directory, progress, replace_refusal

log = logging.getLogger(__name__)

RESULTS_FILE = "results.json"


class EvalError(ValueError):
    """Invalid evaluation options; the message lists every problem."""


@dataclass(frozen=True)
class EvalResult:
    """Scores of one direction under one search setting."""

    src_lang: str
    tgt_lang: str
    num_beams: int
    bleu: float
    bleu_lc: float
    chrf: float
    sentences: int
    seconds: float

    @property
    def direction(self) -> str:
        return f"{self.src_lang}-{self.tgt_lang}"

    @property
    def search(self) -> str:
        return "greedy" if self.num_beams == 1 else f"beam {self.num_beams}"


def translate_texts(
    model: LingoLite, tokenizer: TextTokenizer, texts: Sequence[str], tgt_lang: str,
    search: SearchConfig, *, batch_size: int = 64, desc: str = "",
) -> list[str]:  # fmt: skip
    """Translate ``texts`` into ``tgt_lang``, longest first in batches; returns corpus order.

    Sources longer than the model's ``max_src_len`` are cut (keeping tag and eos).
    """
    sources = [
        tokenizer.encode_source(t, tgt_lang, max_len=model.config.max_src_len) for t in texts
    ]
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]), reverse=True)
    hypotheses = [""] * len(sources)
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for chunk in progress(chunks, desc, unit="batch"):
        outputs = translate_ids(model, [sources[i] for i in chunk], search)
        for i, ids in zip(chunk, outputs, strict=True):
            hypotheses[i] = tokenizer.decode(ids)
    return hypotheses


def trained_pairs(checkpoint: Path) -> list[Direction] | None:
    """The directions a checkpoint was trained on (``config.json`` -> training.pairs), if known."""
    _, data = read_config(checkpoint)
    training = data.get("training")
    pairs = training.get("pairs") if isinstance(training, dict) else None
    return parse_pairs(",".join(pairs)) if pairs else None


def default_pairs(checkpoint: Path) -> list[Direction]:
    """The trained directions, or an :class:`EvalError` when the checkpoint does not say."""
    pairs = trained_pairs(checkpoint)
    if not pairs:
        raise EvalError(f"{checkpoint}/config.json names no training pairs; pass --pairs")
    return pairs


def evaluate(
    checkpoint: Path, data: Path, *, split: str = "test_2016_flickr",
    pairs: str | None = None, beams: Sequence[int] = (1, 4), batch_size: int = 64,
    max_sentences: int | None = None, out: Path | None = None, length_penalty: float = 1.0,
    max_length: int | None = None, device: str = "cpu", force: bool = False,
) -> list[EvalResult]:  # fmt: skip
    """Translate and score ``split`` for every direction and beam; write ``out`` if given.

    ``max_length`` (default: the model's ``max_tgt_len``) caps output tokens.
    """
    checkpoint, data = Path(checkpoint), Path(data)
    problems = []
    if not beams or any(k < 1 for k in beams):
        problems.append(f"beams must be >= 1, got {list(beams)}")
    if batch_size < 1:
        problems.append(f"batch_size must be >= 1, got {batch_size}")
    if max_sentences is not None and max_sentences < 1:
        problems.append(f"max_sentences must be >= 1, got {max_sentences}")
    if out is not None:
        # --force replaces an earlier evaluation (its results file), never an unrelated folder.
        refusal = replace_refusal(Path(out), force=force, markers=(RESULTS_FILE,))
        if refusal is not None:
            problems.append(refusal)
    directions: list[Direction] = []
    try:
        directions = parse_pairs(pairs) if pairs else default_pairs(checkpoint)
        trained = trained_pairs(checkpoint)
        untrained = [str(d) for d in directions if trained is not None and d not in trained]
        if untrained and trained is not None:
            problems.append(
                f"directions {', '.join(untrained)} were not trained; this model translates "
                f"{', '.join(map(str, trained))}"
            )
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise EvalError("; ".join(problems))

    model = load_pretrained(checkpoint, device=device)
    tokenizer = load_tokenizer(checkpoint)
    search = {
        k: SearchConfig(max_length=max_length or model.config.max_tgt_len, num_beams=k,
                        length_penalty=length_penalty)
        for k in beams
    }  # fmt: skip
    corpora = {d: read_parallel(data, split, d.src, d.tgt)[:max_sentences] for d in directions}
    results: list[EvalResult] = []
    hypotheses: dict[str, list[str]] = {}
    signatures: dict[str, str] = {}
    for direction, corpus in corpora.items():
        sources, references = [s for s, _ in corpus], [r for _, r in corpus]
        for k, config in search.items():
            start = time.perf_counter()
            hyps = translate_texts(
                model, tokenizer, sources, direction.tgt, config, batch_size=batch_size,
                desc=f"{direction} beam {k}",
            )  # fmt: skip
            seconds = time.perf_counter() - start
            metrics = {"bleu": BLEU(), "bleu_lc": BLEU(lowercase=True), "chrf": CHRF()}
            scores = {name: m.corpus_score(hyps, [references]).score for name, m in metrics.items()}
            signatures = {name: str(m.get_signature()) for name, m in metrics.items()}
            result = EvalResult(direction.src, direction.tgt, k, sentences=len(hyps),
                                seconds=round(seconds, 2), **scores)  # fmt: skip
            log.info("%s %s: BLEU %.2f, BLEU lc %.2f, chrF %.2f (%d sentences, %.1f s)",
                     direction, result.search, result.bleu, result.bleu_lc, result.chrf,
                     len(hyps), seconds)  # fmt: skip
            results.append(result)
            hypotheses[f"{split}.{direction}.beam{k}.hyp"] = hyps
    if out is not None:
        report = {
            "checkpoint": str(checkpoint), "data": str(data), "split": split,
            "length_penalty": length_penalty, "max_sentences": max_sentences,
            "signatures": signatures,
            "results": [
                {"direction": r.direction, "search": r.search, **asdict(r)} for r in results
            ],
        }  # fmt: skip
        with atomic_directory(out, force=True, markers=(RESULTS_FILE,)) as tmp:
            for name, hyps in hypotheses.items():
                (tmp / name).write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
            (tmp / RESULTS_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        log.info("wrote %s", out)
    return results


def markdown_table(results: Sequence[EvalResult]) -> str:
    rows = ["| direction | search | BLEU | BLEU lc | chrF | sentences |",
            "| --- | --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    rows += [
        f"| {r.direction} | {r.search} | {r.bleu:.2f} | {r.bleu_lc:.2f} | {r.chrf:.2f} "
        f"| {r.sentences} |"
        for r in results
    ]
    return "\n".join(rows) + "\n"


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def main(argv: list[str] | None = None, prog: str = "python -m lingolite.evaluate") -> int:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )  # fmt: skip
    p.add_argument("--checkpoint", type=Path, required=True, help="model folder (e.g. RUN/best)")
    p.add_argument("--data", type=Path, required=True, help="corpus folder")
    p.add_argument(
        "--split",
        default="test_2016_flickr",
        help="test set: {split}.{lang}, {split}.{l1}-{l2}.{lang} or {split}.{l1}-{l2}.tsv (.gz ok)",
    )
    p.add_argument("--pairs", help="directions, e.g. en-de,de-en (default: the trained ones)")
    p.add_argument("--beams", type=_int_list, default=[1, 4], help="beam sizes; 1 = greedy")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-sentences", type=int, help="only the first N lines of the split")
    p.add_argument("--max-length", type=int, help="output token cap (default: max_tgt_len)")
    p.add_argument("--length-penalty", type=float, default=1.0)
    p.add_argument("--out", type=Path, help="output folder (default: CHECKPOINT/../eval-NAME)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an earlier evaluation in --out (a folder with its results.json)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--num-threads", type=int, help="torch CPU threads")
    add_quiet_argument(p)
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    out = args.out or args.checkpoint.resolve().parent / f"eval-{args.checkpoint.resolve().name}"
    options: dict[str, Any] = dict(
        split=args.split, pairs=args.pairs, beams=args.beams, batch_size=args.batch_size,
        max_sentences=args.max_sentences, out=out, length_penalty=args.length_penalty,
        max_length=args.max_length, device=device, force=args.force,
    )  # fmt: skip
    try:
        results = evaluate(args.checkpoint, args.data, **options)
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    sys.stdout.write(markdown_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
