"""The shipped model: loads with from_pretrained, translates exactly as recorded, scores as stated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sacrebleu.metrics.bleu import BLEU

from lingolite import load_pretrained
from lingolite.data import read_parallel
from lingolite.generate import translate_ids
from lingolite.lineage import read_lineage
from lingolite.model import LingoLite
from lingolite.search import SearchConfig
from lingolite.tokenizer import Tokenizer
from tests.conftest import multi30k_or_sample

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained" / "lingolite-tiny-multi30k"
GENERAL = PRETRAINED.with_name("lingolite-tiny-general")

# (target language, source, greedy output, beam-4 output) of the general model
GENERAL_EXPECTED = [
    ("de", "Where is the train station?", "Wo ist der Zug-Kop?", "Wo ist der Bahnhof?"),
    ("de", "I would like a cup of coffee.", "Ich würde mich eine Tasse Kaffee gerne.",
     "Ich wäre eine Tasse Kaffee."),
    ("fr", "Where is the station?", "Où est la gare ?", "Où est la gare ?"),
    ("fr", "Two dogs play in the snow.", "Deux chiens jouent dans la neige.",
     "Deux chiens jouent dans la neige."),
    ("en", "Ein Mann fährt Fahrrad auf der Straße.", "A man is riding a bicycle on the street.",
     "A man is riding a bicycle on the street."),
]  # fmt: skip

# (target language, source, exact greedy token ids, their detokenised text)
EXPECTED = [
    ("de", "A man in an orange hat starring at something.", [17, 29, 24, 18, 732, 434, 2869, 300, 7],
     "Ein Mann mit einem orangefarbenen Hut starrt etwas."),
    ("fr", "Two dogs play in the snow.", [67, 456, 282, 27, 43, 374, 7], "Deux chiens jouent dans la neige."),
    ("en", "Ein Mann fährt Fahrrad auf der Straße.", [11, 32, 31, 301, 8, 564, 26, 21, 129, 7],
     "A man is riding a bicycle on the street."),
]  # fmt: skip


@pytest.fixture(scope="module")
def shipped() -> tuple[LingoLite, Tokenizer]:
    return load_pretrained(PRETRAINED), Tokenizer.from_pretrained(PRETRAINED)


@pytest.mark.parametrize("folder", [PRETRAINED, GENERAL], ids=lambda p: p.name)
def test_shipped_files_are_small_and_safe(folder: Path) -> None:
    files = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "spm.model", "README.md"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt")) for name in files)
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 25 * 1024 * 1024
    training = json.loads((folder / "config.json").read_text())["training"]
    assert training["pairs"] == ["en-de", "de-en", "en-fr", "fr-en"]  # what the manifest serves


@pytest.mark.parametrize("folder", [PRETRAINED, GENERAL], ids=lambda p: p.name)
def test_model_folder_holds_one_metrics_file_and_one_curves_image(folder: Path) -> None:
    """Documentation, not logs: a staged model's stages share one file (lingolite.lineage)."""
    names = {p.name for p in folder.iterdir()}
    assert {n for n in names if n.endswith(".jsonl")} == {"metrics.jsonl"}
    assert {n for n in names if n.endswith(".png")} == {"curves.png"}
    assert sorted(n for n in names if "-stage" in n) == []
    records = read_lineage(folder / "metrics.jsonl")  # checked; a single run reads as stage 1
    assert records[0]["stage"] == 1 and records[0]["event"] == "start"


def test_general_model_metrics_are_its_twelve_stage_lineage() -> None:
    records = read_lineage(GENERAL / "metrics.jsonl")
    stages = [r["stage"] for r in records]
    assert sorted(set(stages)) == list(range(1, 13)) and stages == sorted(stages)
    steps = [r["lineage_step"] for r in records]
    assert steps == sorted(steps) and steps[-1] == 38_914  # the card's total
    starts = [
        (r["stage"], r["step"], r["args"]["resume"]) for r in records if r["event"] == "start"
    ]
    assert starts[:3] == [(1, 0, False), (1, 2119, True), (2, 0, False)]  # stage 1 was resumed
    last = json.loads((GENERAL / "config.json").read_text())["training"]
    assert (records[-1]["stage"], records[-1]["step"]) == (12, last["step"])


def test_general_model_translates_exactly_as_recorded() -> None:
    """Greedy and beam 4 on the general model; everyday text where the Multi30k model fails."""
    model, tokenizer = load_pretrained(GENERAL), Tokenizer.from_pretrained(GENERAL)
    for tgt, source, greedy, beam in GENERAL_EXPECTED:
        src = tokenizer.encode_source(source, tgt)
        assert tokenizer.decode(translate_ids(model, [src], SearchConfig())[0]) == greedy
        assert tokenizer.decode(translate_ids(model, [src], SearchConfig(num_beams=4))[0]) == beam


def test_shipped_model_translates_exactly_as_recorded(shipped: tuple[LingoLite, Tokenizer]) -> None:
    model, tokenizer = shipped
    assert set(tokenizer.languages) == {"de", "en", "fr"}
    for tgt, source, ids, text in EXPECTED:
        src = tokenizer.encode_source(source, tgt)
        for beams in (1, 4):
            out = translate_ids(model, [src], SearchConfig(num_beams=beams))[0]
            assert out == ids, (tgt, beams)
            assert tokenizer.decode(out) == text


def test_shipped_model_scores_on_test_2016_flickr(shipped: tuple[LingoLite, Tokenizer]) -> None:
    """The first 200 sentences: in the shared data, or the committed sample without it."""
    model, tokenizer = shipped
    pairs = read_parallel(multi30k_or_sample(), "test_2016_flickr", "en", "de")[:200]
    sources = [tokenizer.encode_source(src, "de") for src, _ in pairs]
    hyps = tokenizer.decode_batch(translate_ids(model, sources, SearchConfig()))
    score = BLEU(lowercase=True).corpus_score(hyps, [[ref for _, ref in pairs]]).score
    assert score >= 30.0  # the full 1,000 sentences give 36.5 (model card)
