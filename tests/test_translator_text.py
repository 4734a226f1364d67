"""Real text through ``runtime.translator.Translator``: paragraphs, long inputs, the pair contract.

A copying backend (the "translation" of a sentence is its own source pieces) makes every
expectation exact: what comes back shows how the text was split, batched and put together.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lingolite.search import BoolArray, Cache, FloatArray, IntArray, Memory
from lingolite.segment import segment, split_long
from lingolite.tokenizer import Tokenizer
from runtime.translator import Translation, Translator, TranslatorError

SHIPPED = Path(__file__).resolve().parents[1] / "pretrained" / "lingolite-tiny-multi30k"
MAX_SRC_LEN = 24


class CopyBackend:
    """Emits the source pieces (after the language tag) one per step, then eos."""

    max_tgt_len = 64

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.vocab, self.eos = tokenizer.vocab_size, tokenizer.eos_id
        self.encoded_rows: list[int] = []  # source lengths of every encoded row

    def encode(self, src_ids: IntArray, src_mask: BoolArray) -> Memory:
        self.encoded_rows += [int(n) for n in src_mask.sum(axis=1)]
        ids = src_ids.astype(np.float32)[None, :, None, :, None]  # (1, b, 1, s, 1)
        return Memory(src_mask, ids, ids)

    def init_cache(self, batch: int) -> Cache:
        return (np.zeros((1, batch, 1, 1, 1), dtype=np.float32),)

    def decode_step(
        self, tokens: IntArray, pos: int, memory: Memory, cache: Cache
    ) -> tuple[FloatArray, Cache]:
        src = memory.cross_k[0, :, 0, :, 0].astype(np.int64)  # (b, s)
        index = min(pos + 1, src.shape[1] - 1)
        nxt = np.where(memory.src_mask[:, index], src[:, index], self.eos)
        logits = np.full((len(tokens), self.vocab), -10.0, dtype=np.float32)
        logits[np.arange(len(tokens)), nxt] = 10.0
        return logits, cache


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_pretrained(SHIPPED)


def translator(tokenizer: Tokenizer, **kw: object) -> tuple[Translator, CopyBackend]:
    backend = CopyBackend(tokenizer)
    return Translator(tokenizer, backend, max_src_len=MAX_SRC_LEN, **kw), backend  # type: ignore[arg-type]


def test_paragraphs_keep_every_sentence_its_order_and_the_breaks(tokenizer: Tokenizer) -> None:
    text = "A man rides a bike.  Two dogs play!\n\nA girl sings. Is it raining?\n"
    tr, backend = translator(tokenizer)
    (result,) = tr.translate_detailed([text], "en", "de")
    assert result.text == text  # copied sentence by sentence, separators verbatim
    assert result.sentences == 4 and not result.truncated
    assert len(backend.encoded_rows) == 4  # one row per sentence, all in one batch
    blank = tr.translate_detailed(["", " \n "], "en", "de")
    assert [b.text for b in blank] == ["", " \n "] and len(backend.encoded_rows) == 4


def test_sentences_of_several_texts_share_batches_and_come_back_in_order(
    tokenizer: Tokenizer,
) -> None:
    texts = [f"Sentence number {i}. And the {i}th tail." for i in range(5)]
    tr, backend = translator(tokenizer)
    assert tr.translate(texts, "en", "de", batch_size=4) == texts
    assert len(backend.encoded_rows) == 10


def test_an_over_long_sentence_is_cut_into_clauses_not_truncated(tokenizer: Tokenizer) -> None:
    clauses = [f"the {w} man walks down the street" for w in ("tall", "old", "young", "small")]
    sentence = ", ".join(clauses) + "."
    assert len(tokenizer.encode_source(sentence, "de")) > MAX_SRC_LEN
    tr, backend = translator(tokenizer)
    (result,) = tr.translate_detailed([sentence], "en", "de")
    assert result.text == sentence  # every word back, in order
    assert len(backend.encoded_rows) > 1 and max(backend.encoded_rows) <= MAX_SRC_LEN
    # One word longer than the model's source length is cut inside the word, nothing dropped.
    word = "x" * 200
    tr, backend = translator(tokenizer)
    assert tr.translate([word], "en", "de") == [
        " ".join(split_long(word, lambda s: len(tokenizer.encode_source(s, "de")) <= MAX_SRC_LEN))
    ]
    assert max(backend.encoded_rows) <= MAX_SRC_LEN


def test_a_sentence_exactly_at_the_limit_is_translated_whole(tokenizer: Tokenizer) -> None:
    sentence = " ".join(["a"] * (MAX_SRC_LEN - 2))  # tag + 22 one-piece words + eos
    assert len(tokenizer.encode_source(sentence, "de")) == MAX_SRC_LEN
    tr, backend = translator(tokenizer)
    assert tr.translate([sentence], "en", "de") == [sentence]
    assert backend.encoded_rows == [MAX_SRC_LEN]
    tr, backend = translator(tokenizer)
    assert tr.translate([sentence + " a"], "en", "de") == [sentence + " a"]
    assert len(backend.encoded_rows) == 2  # one token over: cut in two


def test_hitting_max_length_is_flagged(tokenizer: Tokenizer) -> None:
    tr, _ = translator(tokenizer)
    limit = len(tokenizer.encode("Hi.")) + 1  # room for its pieces and eos, not for the long one
    texts = ["A man rides a bike.", "Hi."]
    long_, short = tr.translate_detailed(texts, "en", "de", max_length=limit)
    assert long_.truncated and not short.truncated
    assert short.text == "Hi." and long_.text != texts[0]
    beams = tr.translate_detailed(texts, "en", "de", max_length=limit, num_beams=2)
    assert [b.truncated for b in beams] == [True, False]
    exact = tr.translate_detailed(["Hi."], "en", "de", max_length=limit - 1)
    assert exact[0].truncated  # its eos did not fit


def test_untrained_direction_is_refused_naming_the_trained_ones(tokenizer: Tokenizer) -> None:
    tr, backend = translator(tokenizer, directions=("en-de", "de-en", "en-fr", "fr-en"))
    with pytest.raises(
        TranslatorError,
        match=r"fr-de was not trained; this model translates en-de, de-en, en-fr, fr-en",
    ):
        tr.translate(["Bonjour."], "fr", "de")
    assert backend.encoded_rows == []
    assert tr.translate(["Bonjour."], "fr", "en") == ["Bonjour."]


def test_segment_round_trips_any_text() -> None:
    for text in ["", "\n", "One.Two", " lead and trail ", "Dr. No. 5 p.m. ok?!\r\n\tNext"]:
        assert "".join(s.text for s in segment(text, "en")) == text


# --- Options: n-best, sampling, streaming, long inputs (the shipped model, eager) ----------------


@pytest.fixture(scope="module")
def shipped(tokenizer: Tokenizer) -> Translator:
    from lingolite.checkpoint import load_pretrained
    from lingolite.generate import EagerBackend

    model = load_pretrained(SHIPPED)
    return Translator(tokenizer, EagerBackend(model), max_src_len=model.config.max_src_len)


TEXTS = ["Two dogs play in the snow. A man is riding a red bike.", "A girl sings.", ""]


def test_nbest_first_hypothesis_is_the_plain_beam_output(shipped: Translator) -> None:
    plain = shipped.translate(TEXTS, "en", "de", num_beams=4)
    detailed = shipped.translate_detailed(TEXTS, "en", "de", num_beams=4, num_hypotheses=3)
    assert [t.text for t in detailed] == plain
    for t in detailed[:2]:
        scores = [t.score, *(a.score for a in t.alternatives)]
        assert len(t.alternatives) == 2 and scores == sorted(scores, reverse=True)
        assert all(np.isfinite(scores)) and t.tokens > 0
    assert detailed[2] == Translation("", 0, False)  # blank: no model run, nothing to score
    with pytest.raises(TranslatorError, match=r"num_hypotheses must be in \[1, num_beams = 2\]"):
        shipped.translate(TEXTS, "en", "de", num_beams=2, num_hypotheses=3)


def test_scores_are_the_searchs(shipped: Translator, tokenizer: Tokenizer) -> None:
    from lingolite.search import SearchConfig, decode_batch_nbest

    sentence = "A girl sings."
    (t,) = shipped.translate_detailed([sentence], "en", "fr", num_beams=3, num_hypotheses=2)
    (hyps,) = decode_batch_nbest(
        shipped.backend, [tokenizer.encode_source(sentence, "fr")], bos_id=tokenizer.bos_id,
        eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id,
        config=SearchConfig(num_beams=3, max_length=shipped.max_tgt_len), num_hypotheses=2,
    )  # fmt: skip
    assert (t.score, t.alternatives[0].score) == (hyps[0].score, hyps[1].score)
    assert t.tokens == len(hyps[0].tokens)


def test_seeded_sampling_is_reproducible(shipped: Translator) -> None:
    kw: dict[str, object] = {"do_sample": True, "temperature": 1.5, "top_p": 0.95, "seed": 11}
    first = shipped.translate(TEXTS, "en", "de", **kw)  # type: ignore[arg-type]
    assert shipped.translate(TEXTS, "en", "de", **kw) == first  # type: ignore[arg-type]
    greedy = shipped.translate(TEXTS, "en", "de")
    many = {
        tuple(shipped.translate(TEXTS[:1], "en", "de", do_sample=True, seed=s)) for s in range(6)
    }
    assert len(many) > 1 and first[2] == greedy[2] == ""


def test_stream_joins_to_the_greedy_output(shipped: Translator) -> None:
    text = "Two dogs play in the snow.\n\n  A man is riding a red bike. A girl sings."
    pieces = list(shipped.translate_stream(text, "en", "de"))
    assert "".join(pieces) == shipped.translate([text], "en", "de")[0]
    assert len(pieces) > 6 and "\n\n  " in pieces  # token by token, separators verbatim
    sampled = list(shipped.translate_stream(text, "en", "de", do_sample=True, seed=3))
    assert sampled == list(shipped.translate_stream(text, "en", "de", do_sample=True, seed=3))


def test_stream_splits_long_sentences_like_translate(tokenizer: Tokenizer) -> None:
    sentence = (
        ", ".join(f"the {w} man walks down the street" for w in ("tall", "old", "young")) + "."
    )
    tr, _ = translator(tokenizer)
    assert (
        "".join(tr.translate_stream(sentence, "en", "de"))
        == tr.translate([sentence], "en", "de")[0]
        == sentence
    )


def test_long_input_policy_error_names_every_long_sentence(tokenizer: Tokenizer) -> None:
    long_sentence = "Then " + " ".join(["word"] * 40) + "."
    tr, backend = translator(tokenizer)
    with pytest.raises(
        TranslatorError, match=r"text 1 sentence 1 has \d+ tokens; the model reads at most 24"
    ):
        tr.translate(["Hi.", "Ok. " + long_sentence], "en", "de", on_long_input="error")
    with pytest.raises(TranslatorError, match="text 0 sentence 0"):
        list(tr.translate_stream(long_sentence, "en", "de", on_long_input="error"))
    assert backend.encoded_rows == []  # refused before any work
    with pytest.raises(TranslatorError, match="on_long_input must be one of"):
        tr.translate(["Hi."], "en", "de", on_long_input="truncate")  # type: ignore[arg-type]
    assert tr.translate([long_sentence], "en", "de") == [long_sentence]  # "split", the default
