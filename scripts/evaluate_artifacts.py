"""Score an exported artifact folder (any backend and precision) on a test set with sacreBLEU.

``python scripts/evaluate_artifacts.py --artifacts DIR --precision int8 --data DIR
--split newstest2018 --pairs en-de,de-en --beams 1,4 [--max-sentences N] [--threads N]
[--out FILE.json]``

The counterpart of ``python -m lingolite.evaluate`` (which scores the eager PyTorch checkpoint)
for what users actually run: the same sources, cut to the model's source length the same way,
the same search code (:func:`lingolite.search.decode_batch`) over the runtime backend, the same
sacreBLEU metrics (BLEU, lowercase BLEU, chrF), so the two tables compare line for line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.chrf import CHRF

from lingolite.data import parse_pairs, read_parallel
from lingolite.search import SearchConfig, decode_batch
from runtime.translator import Translator


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--artifacts", type=Path, required=True)
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--precision", default="int8")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--pairs", required=True)
    p.add_argument("--beams", default="1,4")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-sentences", type=int)
    p.add_argument("--threads", type=int, help="runtime intra-op threads (default: one per core)")
    p.add_argument("--out", type=Path, help="append the results to this JSON file")
    args = p.parse_args(argv)
    translator = Translator.from_artifacts(
        args.artifacts, args.backend, args.precision, threads=args.threads
    )
    tok, backend = translator.tokenizer, translator.backend
    results = []
    for direction in parse_pairs(args.pairs):
        pairs = read_parallel(args.data, args.split, direction.src, direction.tgt)
        pairs = pairs[: args.max_sentences]
        sources = [
            tok.encode_source(s, direction.tgt, max_len=translator.max_src_len) for s, _ in pairs
        ]
        order = sorted(range(len(sources)), key=lambda i: -len(sources[i]))
        for beams in (int(b) for b in args.beams.split(",")):
            config = SearchConfig(max_length=backend.max_tgt_len, num_beams=beams)
            hyps = [""] * len(sources)
            start = time.perf_counter()
            for first in range(0, len(order), args.batch_size):
                rows = order[first : first + args.batch_size]
                batch = [sources[i] for i in rows]
                outs = decode_batch(
                    backend,
                    batch,
                    bos_id=tok.bos_id,
                    eos_id=tok.eos_id,
                    pad_id=tok.pad_id,
                    config=config,
                )
                for i, out in zip(rows, outs, strict=True):
                    hyps[i] = tok.decode(out)
            refs = [[r for _, r in pairs]]
            result = {
                "split": args.split, "direction": str(direction), "beams": beams,
                "backend": args.backend, "precision": args.precision, "sentences": len(hyps),
                "bleu": round(BLEU().corpus_score(hyps, refs).score, 2),
                "bleu_lc": round(BLEU(lowercase=True).corpus_score(hyps, refs).score, 2),
                "chrf": round(CHRF().corpus_score(hyps, refs).score, 2),
                "seconds": round(time.perf_counter() - start, 1),
            }  # fmt: skip
            print(json.dumps(result), flush=True)
            results.append(result)
    if args.out:
        old = json.loads(args.out.read_text()) if args.out.is_file() else []
        tmp = args.out.with_name(f".{args.out.name}.tmp")
        tmp.write_text(json.dumps(old + results, indent=1) + "\n", encoding="utf-8")
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
