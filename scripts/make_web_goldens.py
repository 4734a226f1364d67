"""Write the compact golden files the browser demo's Node tests check (``web_demo/test/golden/``).

``tokenizer.json.gz``
    For the shipped tokenizer (``--tokenizer``): SentencePiece's ids (space-separated) for every
    ``test_2016_flickr`` sentence of every language in ``--multi30k`` and every line of the general
    dev sets in ``--general`` (``tatoeba-dev.*``, ``newstest2018.*``), the normalization stress
    strings of ``scripts/make_android_goldens.py``, and ``encode_source`` with length limits. The
    JS tokenizer must reproduce every id list exactly and decode each back as Python does.
``segment.json.gz``
    The general dev sets joined into paragraphs of 3 to 5 lines (seeded), and the sentences
    ``lingolite.segment`` (Python ``sentencex``, the version pinned in pyproject.toml) cuts them
    into. The JS segmenter is measured against them (the browser has no exact port of sentencex's
    current rules).
``tokenizer.json.gz`` also holds ``split_long`` cases: newstest2018 sentences cut by
    ``lingolite.segment.split_long`` to fit small source lengths with the shipped tokenizer, as the
    runtime cuts over-long sentences; the JS port must cut them identically.

Search goldens are not written here: the Node search test replays the very files
``scripts/make_android_goldens.py`` records for the Java core.

Usage::

    python scripts/make_web_goldens.py --tokenizer pretrained/lingolite-tiny-multi30k \
        --multi30k ../shared/data/multi30k --general ../shared/data/general \
        --out web_demo/test/golden
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import logging
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import sentencepiece as spm

from lingolite.segment import sentences, split_long
from lingolite.tokenizer import Tokenizer

logger = logging.getLogger("make_web_goldens")
ROOT = Path(__file__).resolve().parents[1]
TEST_SPLIT = "test_2016_flickr"
DEV_PATTERNS = ("tatoeba-dev.*.gz", "newstest2018.*.gz")


def _android_goldens_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_android_goldens", ROOT / "scripts" / "make_android_goldens.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def read_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh]


def _lang_of(path: Path) -> str:
    return path.name.split(".")[-2]  # {split}.{lang}.gz or {corpus}.{l1}-{l2}.{lang}.gz


def _dev_files(general: Path) -> list[Path]:
    files = sorted(p for pattern in DEV_PATTERNS for p in general.glob(pattern))
    if not files:
        raise SystemExit(f"no {' or '.join(DEV_PATTERNS)} files in {general}")
    return files


def write_gz_json(path: Path, data: Any) -> None:
    """Write ``data`` as gzipped JSON atomically, with a fixed gzip mtime (reproducible bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
            fh.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def tokenizer_golden(tokenizer: Tokenizer, multi30k: Path, general: Path) -> dict[str, Any]:
    sp = spm.SentencePieceProcessor(model_proto=tokenizer.model_proto)
    sets: dict[str, list[str]] = {}
    flickr = sorted(multi30k.glob(f"{TEST_SPLIT}.*.gz"))
    if not flickr:
        raise SystemExit(f"no {TEST_SPLIT}.*.gz files in {multi30k}")
    for path in [*flickr, *_dev_files(general)]:
        sets[path.name] = read_lines(path)
    sets["stress"] = list(_android_goldens_module().STRESS_TEXTS)
    cases = []
    for name, lines in sets.items():
        for text in lines:
            ids = [int(i) for i in sp.encode(text)]
            case = {"set": name, "text": text, "ids": " ".join(map(str, ids))}
            decoded = sp.decode(ids)
            if decoded != text:
                case["decoded"] = decoded
            cases.append(case)
    sources = []
    for lang in tokenizer.languages:
        for text in (sets[flickr[0].name][0], "  Two dogs  play. ", ""):
            for max_len in (None, 2, 3, 6):
                src = tokenizer.encode_source(text, lang, max_len)
                sources.append({"text": text, "lang": lang, "max_len": max_len, "ids": src})
    split_cases = []
    long_lines = [t for name, lines in sets.items() if name.startswith("newstest") for t in lines]
    for text in [*long_lines[:150], "Donaudampfschifffahrtsgesellschaftskapitänsmütze " * 3]:
        for lang, max_len in ((tokenizer.languages[0], 12), (tokenizer.languages[-1], 24)):

            def fits(piece: str, lang: str = lang, max_len: int = max_len) -> bool:
                return len(tokenizer.encode_source(piece, lang)) <= max_len

            pieces = split_long(text.strip(), fits)
            split_cases.append({"text": text.strip(), "lang": lang, "max_len": max_len,
                                "pieces": pieces})  # fmt: skip
    logger.info("tokenizer: %d cases from %s", len(cases), ", ".join(sets))
    return {
        "spm_sha256": _sha256(tokenizer.model_proto),
        "languages": list(tokenizer.languages),
        "sets": {name: len(lines) for name, lines in sets.items()},
        "cases": cases,
        "source_cases": sources,
        "split_long": split_cases,
    }


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def segment_golden(general: Path) -> dict[str, Any]:
    paragraphs = []
    for path in _dev_files(general):
        lang, lines = _lang_of(path), read_lines(path)
        rng = random.Random(path.name)
        start = 0
        while start < len(lines):
            n = rng.randint(3, 5)
            text = " ".join(lines[start : start + n])
            start += n
            paragraphs.append(
                {"set": path.name, "lang": lang, "text": text, "sentences": sentences(text, lang)}
            )  # fmt: skip
    logger.info("segment: %d paragraphs", len(paragraphs))
    return {"sentencex": _version("sentencex"), "paragraphs": paragraphs}


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", type=Path, required=True, help="saved tokenizer folder")
    parser.add_argument("--multi30k", type=Path, required=True, help="Multi30k folder (*.gz)")
    parser.add_argument("--general", type=Path, required=True, help="general-domain data folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the golden files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tokenizer = Tokenizer.from_pretrained(args.tokenizer)
    write_gz_json(
        args.out / "tokenizer.json.gz", tokenizer_golden(tokenizer, args.multi30k, args.general)
    )
    write_gz_json(args.out / "segment.json.gz", segment_golden(args.general))


if __name__ == "__main__":
    main()
