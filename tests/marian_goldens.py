"""Goldens of the Python :class:`~lingolite.marian_tokenizer.MarianTokenizer` for the Java and
JavaScript Marian tokenizers, on Marian folders built offline (tests/marian_fixtures.py).

:func:`write_marian_golden` writes, into one folder, the ``vocab.json`` (export/vocab.py's
``"marian-sentencepiece"`` form) of three tokenizers — a single-pair model, a multilingual-target
one and a single-pair one with transformers' space clean-up — and ``marian_golden.json``: for each,
``encode`` ids, ``encode_source`` ids into every target (uncut and cut to a few ids) and the text
``decode`` gives for those ids, for target ids and for random id sequences.
``tests/test_android_java.py`` writes it next to the Java goldens (``MarianTokenizerTest``) and
``tests/test_web.py`` for ``web_demo/test/marian_tokenizer.test.mjs``.
"""

# ruff: noqa: RUF001

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Final

from export.vocab import vocab_from_marian, write_vocab
from lingolite.marian_tokenizer import MarianTokenizer
from lingolite.tokenizer import TokenId
from tests.marian_fixtures import BASE, corpus, train_spm, write_hf_folder

GOLDEN_FILE: Final = "marian_golden.json"

# Unseen characters, odd whitespace (Python's str.strip differs from Java's trim and JS's trim),
# and what MarianTokenizer treats specially (literal special tokens and >>xx<< codes).
EDGE_CASES: Final = [
    "",
    " ",
    "   leading and trailing   ",
    "\t\n",
    "Unseen: ᚠᚢᚦ ꦲꦏ ⠓⠑⠇⠇⠕ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "中文 and 日本語 runs of unknown characters",
    "A literal </s> inside, and <unk> and <pad> too.",
    "</s>",
    "<unk><pad></s>",
    "<<unk>> <</s>>",
    "<</s>",
    ">>fr<< Bonjour le monde",
    ">>es<<Hola",
    ">>pt_br<< Olá",
    ">>xx<< unknown code",
    ">> not << a code",
    ">><<",
    ">>",
    "no >>fr<< at the start",
    ">>fr<<",
    "</s>>>fr<< after eos",
    "<pad>>>es<<<unk>",
    "▁ underline ▁▁ pieces",
    "Zero-width\u200bjoiner\u200d and soft\u00adhyphen",
    "Combining e\u0301 vs é",
    "\x1c\x1d separators \x1e\x1f",
    "\x85 next line \u2028 line and paragraph \u2029 separators",
    "\ufeff byte order mark \ufeff",
    "\u3000ideographic\u3000space\u3000",
    "\u180e mongolian vowel separator \u200b",
    "Hello , world . Isn 't it ? Yes ! I 'm here , we 're fine , they 've gone , it 's ' odd ' .",
    "x" * 300,
]


def texts() -> list[str]:
    return corpus(2, 250) + EDGE_CASES


def _cases(tok: MarianTokenizer, targets: list[str], seed: int) -> dict[str, Any]:
    batch = texts()
    source_cases: list[dict[str, Any]] = []
    for lang in targets:
        for text in batch:
            for max_len in (None, 2, 5):
                ids = tok.encode_source(text, lang, max_len=max_len)
                source_cases.append({"text": text, "lang": lang, "max_len": max_len, "ids": ids})
    encoded: list[list[TokenId]] = [c["ids"] for c in source_cases if c["max_len"] is None]
    encoded += [tok.encode_target(t) for t in batch]
    rng = random.Random(seed)
    encoded += [
        [TokenId(rng.randrange(tok.vocab_size)) for _ in range(rng.randint(0, 30))]
        for _ in range(400)
    ]
    # Pieces next to specials and codes, and runs of spaces.
    specials = [tok.eos_id, tok.pad_id, tok.unk_id, *tok.lang_ids.values()]
    encoded += [
        [rng.choice(specials) if rng.random() < 0.3 else TokenId(rng.randrange(tok.vocab_size))
         for _ in range(rng.randint(1, 12))]
        for _ in range(200)
    ]  # fmt: skip
    return {
        "encode_cases": [{"text": t, "ids": tok.encode(t)} for t in batch],
        "source_cases": source_cases,
        "decode_cases": [{"ids": ids, "text": tok.decode(ids)} for ids in encoded],
        "wrong_targets": [t for t in ("de", "fr", "xx", "en") if t not in targets],
    }


def write_marian_golden(out: Path) -> Path:
    """Write the three tokenizers' vocabularies and ``marian_golden.json`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    models = train_spm(corpus(0, 300), 400, 0.995), train_spm(corpus(1, 300), 350, 1.0)
    folders = {
        "pair": (write_hf_folder(out / "hf-pair", models, []), ["de"]),
        "multi": (write_hf_folder(out / "hf-multi", models, ["es", "fr", "pt_br"]),
                  ["es", "fr", "pt_br"]),
        "cleanup": (write_hf_folder(out / "hf-cleanup", models, [],
                                    clean_up_tokenization_spaces=True), ["de"]),
    }  # fmt: skip
    golden: dict[str, Any] = {"tokenizers": []}
    for seed, (name, (folder, targets)) in enumerate(folders.items()):
        tok = MarianTokenizer.from_hf_folder(folder)
        vocab_dir = out / f"marian-{name}"
        write_vocab(vocab_from_marian(tok), vocab_dir)
        assert any(tok.unk_id in tok.encode(t) for t in BASE)  # some pieces are unk
        golden["tokenizers"].append({
            "name": name,
            "vocab": f"marian-{name}/vocab.json",
            "targets": targets,
            "eos_id": tok.eos_id, "pad_id": tok.pad_id, "bos_id": tok.bos_id,
            "unk_id": tok.unk_id, "vocab_size": tok.vocab_size, "lang_ids": tok.lang_ids,
            **_cases(tok, targets, seed),
        })  # fmt: skip
    path = out / GOLDEN_FILE
    path.write_text(json.dumps(golden, ensure_ascii=True), encoding="utf-8")
    return path
