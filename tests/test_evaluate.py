"""Evaluation: translate the toy test split with a briefly trained checkpoint and score it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.chrf import CHRF

import lingolite.evaluate as evaluate_module
from lingolite.data import read_parallel
from lingolite.evaluate import EvalError, evaluate, main, translate_texts
from lingolite.model import LingoLite
from lingolite.search import SearchConfig
from lingolite.tokenizer import Tokenizer
from lingolite.train import TrainConfig, train

SENTENCES = 6


@pytest.fixture(scope="module")
def checkpoint(
    toy_corpus_dir: Path, toy_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``best/`` of a 2+2-layer model trained for 40 steps on en-de and de-en."""
    config = TrainConfig(
        data=toy_corpus_dir, pairs="en-de,de-en", out=tmp_path_factory.mktemp("eval") / "run",
        tokenizer=toy_tokenizer_dir, max_src_len=32, max_tgt_len=32, max_tokens=1024,
        max_steps=40, warmup_steps=5, lr=1e-2, eval_every=20, save_every=40, device="cpu",
        num_threads=1, model_overrides=dict(d_model=64, n_heads=4, n_kv_heads=2,
                                            n_encoder_layers=2, n_decoder_layers=2, ffn_dim=128),
    )  # fmt: skip
    result = train(config)
    assert result.best_dir is not None
    return result.best_dir


def test_evaluate_writes_hypotheses_and_sacrebleu_scores(
    checkpoint: Path, toy_corpus_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    results = evaluate(checkpoint, toy_corpus_dir, beams=(1, 4), max_sentences=SENTENCES,
                       max_length=20, batch_size=4, out=out)  # fmt: skip
    # No pairs given: the directions the checkpoint was trained on.
    assert [(r.direction, r.search) for r in results] == [
        ("en-de", "greedy"), ("en-de", "beam 4"), ("de-en", "greedy"), ("de-en", "beam 4"),
    ]  # fmt: skip
    report = json.loads((out / "results.json").read_text())
    assert report["signatures"]["bleu_lc"].startswith("nrefs:1|case:lc")
    for result, row in zip(results, report["results"], strict=True):
        name = f"test_2016_flickr.{result.direction}.beam{result.num_beams}.hyp"
        hyps = (out / name).read_text(encoding="utf-8").splitlines()
        assert len(hyps) == SENTENCES == result.sentences
        refs = [ref for _, ref in read_parallel(toy_corpus_dir, "test_2016_flickr",
                                                result.src_lang, result.tgt_lang)][:SENTENCES]  # fmt: skip
        assert result.bleu == pytest.approx(BLEU().corpus_score(hyps, [refs]).score)
        assert result.bleu_lc == pytest.approx(
            BLEU(lowercase=True).corpus_score(hyps, [refs]).score
        )
        assert result.chrf == pytest.approx(CHRF().corpus_score(hyps, [refs]).score)
        for key in ("bleu", "bleu_lc", "chrf"):
            assert 0.0 <= row[key] <= 100.0 and row[key] == getattr(result, key)
    assert max(r.chrf for r in results) > 0.0  # 40 steps learn something


def test_translate_texts_restores_corpus_order(
    toy_tokenizer: Tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def echo(
        model: LingoLite, sources: Sequence[Sequence[int]], config: SearchConfig
    ) -> list[list[int]]:
        return [list(src[1:-1]) for src in sources]  # the source pieces, without tag and eos

    monkeypatch.setattr(evaluate_module, "translate_ids", echo)
    texts = ["A man rides a bike.", "Two dogs.", "A young woman holds a white cat in the park."]
    model = type("Stub", (), {"config": type("C", (), {"max_src_len": 32})()})()
    out = translate_texts(model, toy_tokenizer, texts, "de", SearchConfig(), batch_size=2)
    assert out == texts


def test_cli_prints_markdown_table_and_refuses_to_overwrite(
    checkpoint: Path,
    toy_corpus_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--checkpoint", str(checkpoint), "--data", str(toy_corpus_dir), "--pairs", "en-de",
            "--beams", "1", "--max-sentences", "3", "--max-length", "16", "--device", "cpu",
            "--out", str(tmp_path / "eval")]  # fmt: skip
    assert main(argv) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| direction | search | BLEU | BLEU lc | chrF | sentences |"
    assert table[2].startswith("| en-de | greedy |") and table[2].endswith("| 3 |")
    assert main(argv) == 2  # out is not empty
    assert main([*argv, "--force"]) == 0
    # --force replaces an earlier evaluation only, never an unrelated folder.
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("years of work", encoding="utf-8")
    argv[-1] = str(thesis)
    assert main([*argv, "--force"]) == 2
    with pytest.raises(EvalError, match="holds no earlier LingoLite export"):
        evaluate(checkpoint, toy_corpus_dir, pairs="en-de", beams=(1,), out=thesis, force=True)
    assert [p.name for p in thesis.iterdir()] == ["chapter1.tex"]


def test_invalid_options_are_reported_together(checkpoint: Path, toy_corpus_dir: Path) -> None:
    with pytest.raises(EvalError) as info:
        evaluate(checkpoint, toy_corpus_dir, pairs="en-en", beams=(0,), batch_size=0)
    for fragment in ("beams must be", "batch_size must be", "into itself"):
        assert fragment in str(info.value)
