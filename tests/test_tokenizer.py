"""Tests of lingolite.tokenizer: conventions, round trips and folder validation."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lingolite.data import read_lines
from lingolite.tokenizer import TokenId, Tokenizer, TokenizerError, validate_languages
from tests.conftest import TOY_VOCAB_SIZE
from tests.corpus import LANGUAGES, vocabulary

VOCAB = sorted({word for lang in LANGUAGES for word in vocabulary(lang)})


def copy_folder(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def rewrite_config(folder: Path, **changes: Any) -> None:
    config = json.loads((folder / "tokenizer.json").read_text())
    for key, value in changes.items():
        if value is None:
            del config[key]
        else:
            config[key] = value
    (folder / "tokenizer.json").write_text(json.dumps(config))


def test_special_and_tag_ids(toy_tokenizer: Tokenizer) -> None:
    tok = toy_tokenizer
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    assert [tok.id_to_piece(TokenId(i)) for i in range(4)] == ["<pad>", "<s>", "</s>", "<unk>"]
    assert tok.languages == ("de", "en", "fr")
    assert [tok.lang_id(lang) for lang in tok.languages] == [4, 5, 6]
    assert tok.lang_tag("de") == "<2de>"
    assert tok.piece_to_id("<2fr>") == 6
    assert tok.vocab_size == TOY_VOCAB_SIZE


def test_training_is_reproducible(toy_corpus_dir: Path, toy_tokenizer: Tokenizer) -> None:
    texts = {lang: read_lines(toy_corpus_dir / f"train.{lang}") for lang in reversed(LANGUAGES)}
    assert (
        Tokenizer.train(texts, vocab_size=TOY_VOCAB_SIZE).model_proto == toy_tokenizer.model_proto
    )


def test_train_errors() -> None:
    with pytest.raises(TokenizerError, match=r"largest possible is \d+"):
        Tokenizer.train({"en": ["a cat"], "de": ["eine Katze"]}, vocab_size=5000)
    with pytest.raises(TokenizerError, match=r"vocab_size \(6\) must exceed the 6"):
        Tokenizer.train({"en": ["a cat"], "de": ["eine Katze"]}, vocab_size=6)
    with pytest.raises(TokenizerError, match=r"invalid language codes \['EN', 'e-n'\]"):
        Tokenizer.train({"EN": ["a"], "e-n": ["b"], "fr": ["c"]}, vocab_size=50)
    with pytest.raises(TokenizerError, match=r"'x'\].*duplicate languages \['en'\]"):
        validate_languages(["en", "x", "en"])
    with pytest.raises(TokenizerError, match="no training sentences"):
        Tokenizer.train({"en": []}, vocab_size=50)


def test_unknown_language(toy_tokenizer: Tokenizer) -> None:
    with pytest.raises(TokenizerError, match=r"'cs'.*\['de', 'en', 'fr'\]"):
        toy_tokenizer.lang_id("cs")


def test_encode_decode_round_trip(toy_tokenizer: Tokenizer, toy_corpus_dir: Path) -> None:
    for lang in LANGUAGES:
        lines = read_lines(toy_corpus_dir / f"val.{lang}")
        ids = toy_tokenizer.encode_batch(lines)
        assert ids == [toy_tokenizer.encode(line) for line in lines]
        assert all(toy_tokenizer.unk_id not in row for row in ids)
        assert toy_tokenizer.decode_batch(ids) == lines


def test_decode_drops_specials(toy_tokenizer: Tokenizer) -> None:
    tok = toy_tokenizer
    ids = tok.encode("Ein Mann fährt.")
    assert tok.decode([tok.bos_id, tok.lang_id("de"), *ids, tok.eos_id, tok.pad_id]) == (
        "Ein Mann fährt."
    )
    assert tok.decode([*ids, tok.unk_id]) == "Ein Mann fährt. ⁇ "
    with pytest.raises(TokenizerError, match=r"\[128, -1\] out of range \[0, 128\)"):
        tok.decode([tok.bos_id, TokenId(TOY_VOCAB_SIZE), TokenId(-1)])


def test_tag_text_cannot_inject_a_tag(toy_tokenizer: Tokenizer) -> None:
    ids = toy_tokenizer.encode("<2de> a man")
    assert not set(ids) & {toy_tokenizer.lang_id(lang) for lang in LANGUAGES}


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(st.sampled_from(VOCAB), max_size=12),
    gaps=st.lists(st.sampled_from([" ", "  ", "\t", " \t "]), min_size=13, max_size=13),
)
def test_round_trip_property(toy_tokenizer: Tokenizer, words: list[str], gaps: list[str]) -> None:
    """decode(encode(text)) is the text with whitespace runs collapsed and ends stripped.

    The corpus alphabet is NFKC-stable, so nmt_nfkc changes nothing else; every character was
    seen in training, so no piece is unknown.
    """
    text = gaps[0] + "".join(word + gap for word, gap in zip(words, gaps[1:], strict=False))
    assert toy_tokenizer.decode(toy_tokenizer.encode(text)) == " ".join(words)


def test_source_and_target_conventions(toy_tokenizer: Tokenizer) -> None:
    tok = toy_tokenizer
    pieces = tok.encode("A man rides a bike on the street.")
    assert len(pieces) > 4
    assert tok.encode_source("A man rides a bike on the street.", "de") == [
        tok.lang_id("de"),
        *pieces,
        tok.eos_id,
    ]
    assert tok.encode_target("A man rides a bike on the street.") == [*pieces, tok.eos_id]
    cut = tok.encode_source("A man rides a bike on the street.", "fr", max_len=4)
    assert cut == [tok.lang_id("fr"), *pieces[:2], tok.eos_id]
    full = tok.encode_source("A man rides a bike on the street.", "fr", max_len=100)
    assert full == [tok.lang_id("fr"), *pieces, tok.eos_id]
    assert tok.encode_source("", "en") == [tok.lang_id("en"), tok.eos_id]
    assert tok.encode_target("") == [tok.eos_id]
    with pytest.raises(TokenizerError, match=r"max_len \(1\)"):
        tok.encode_source("A man", "de", max_len=1)


def test_save_and_load_round_trip(
    toy_tokenizer: Tokenizer, toy_tokenizer_dir: Path, toy_corpus_dir: Path
) -> None:
    assert sorted(p.name for p in toy_tokenizer_dir.iterdir()) == ["spm.model", "tokenizer.json"]
    config = json.loads((toy_tokenizer_dir / "tokenizer.json").read_text())
    assert config == {
        "format_version": 1,
        "type": "sentencepiece-unigram",
        "model_file": "spm.model",
        "languages": ["de", "en", "fr"],
        "pad_id": 0,
        "bos_id": 1,
        "eos_id": 2,
        "unk_id": 3,
        "vocab_size": TOY_VOCAB_SIZE,
    }
    loaded = Tokenizer.from_pretrained(toy_tokenizer_dir)
    lines = read_lines(toy_corpus_dir / "test_2016_flickr.fr")
    assert loaded.encode_batch(lines) == toy_tokenizer.encode_batch(lines)
    assert loaded.languages == toy_tokenizer.languages
    assert loaded.model_proto == toy_tokenizer.model_proto


def test_save_over_existing_folder(toy_tokenizer: Tokenizer, tmp_path: Path) -> None:
    target = tmp_path / "tok"
    target.mkdir()
    (target / "other.txt").write_text("kept")
    (target / "tokenizer.json").write_text("stale")
    toy_tokenizer.save(target)
    assert sorted(p.name for p in target.iterdir()) == ["other.txt", "spm.model", "tokenizer.json"]
    assert Tokenizer.from_pretrained(target).vocab_size == TOY_VOCAB_SIZE
    assert not list(tmp_path.glob(".*tmp*"))
    with pytest.raises(TokenizerError, match="not a directory"):
        toy_tokenizer.save(target / "other.txt")


def test_load_missing_or_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="does not exist"):
        Tokenizer.from_pretrained(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(TokenizerError, match="is not a directory"):
        Tokenizer.from_pretrained(tmp_path / "file")
    with pytest.raises(TokenizerError, match=r"has no tokenizer\.json"):
        Tokenizer.from_pretrained(tmp_path)


def test_load_bad_json(toy_tokenizer_dir: Path, tmp_path: Path) -> None:
    folder = copy_folder(toy_tokenizer_dir, tmp_path / "tok")
    (folder / "tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="not valid JSON"):
        Tokenizer.from_pretrained(folder)
    (folder / "tokenizer.json").write_text("[1, 2]")
    with pytest.raises(TokenizerError, match="must hold a JSON object, got list"):
        Tokenizer.from_pretrained(folder)


def test_load_reports_all_key_problems(toy_tokenizer_dir: Path, tmp_path: Path) -> None:
    folder = copy_folder(toy_tokenizer_dir, tmp_path / "tok")
    rewrite_config(
        folder,
        vocab_size=None,
        eos_id=None,
        pad_id="0",
        bos_id=True,
        languages="en",
        format_version=2,
        type="bpe",
    )
    with pytest.raises(TokenizerError) as info:
        Tokenizer.from_pretrained(folder)
    message = str(info.value)
    for fragment in (
        "missing key 'vocab_size'",
        "missing key 'eos_id'",
        "'pad_id' must be a int, got str '0'",
        "'bos_id' must be a int, got bool True",
        "'languages' must be a list, got str 'en'",
        "unsupported format_version 2",
        "unsupported type 'bpe'",
    ):
        assert fragment in message


@pytest.mark.parametrize(
    ("model_file", "fragment"),
    [
        ("../spm.model", "must not contain '..'"),
        ("sub/../spm.model", "must not contain '..'"),
        ("/etc/passwd", "must be a relative path"),
        ("", "must be a relative path"),
        ("missing.model", "does not exist"),
    ],
)
def test_load_rejects_bad_model_file(
    toy_tokenizer_dir: Path, tmp_path: Path, model_file: str, fragment: str
) -> None:
    folder = copy_folder(toy_tokenizer_dir, tmp_path / "tok")
    rewrite_config(folder, model_file=model_file)
    with pytest.raises(TokenizerError, match="model_file") as info:
        Tokenizer.from_pretrained(folder)
    assert fragment in str(info.value)


def test_load_rejects_escaping_symlink(toy_tokenizer_dir: Path, tmp_path: Path) -> None:
    folder = copy_folder(toy_tokenizer_dir, tmp_path / "tok")
    outside = tmp_path / "outside.model"
    shutil.copy(folder / "spm.model", outside)
    (folder / "link.model").symlink_to(outside)
    rewrite_config(folder, model_file="link.model")
    with pytest.raises(TokenizerError, match="outside"):
        Tokenizer.from_pretrained(folder)
    # A link that stays inside the folder is fine.
    (folder / "inner.model").symlink_to(folder / "spm.model")
    rewrite_config(folder, model_file="inner.model")
    assert Tokenizer.from_pretrained(folder).vocab_size == TOY_VOCAB_SIZE


def test_load_rejects_ids_that_disagree_with_the_model(
    toy_tokenizer_dir: Path, tmp_path: Path
) -> None:
    folder = copy_folder(toy_tokenizer_dir, tmp_path / "tok")
    rewrite_config(folder, vocab_size=300, unk_id=7)
    with pytest.raises(TokenizerError) as info:
        Tokenizer.from_pretrained(folder)
    assert "vocab_size is 300 but the model has 128" in str(info.value)
    assert "unk_id is 7 but the model has 3" in str(info.value)

    rewrite_config(folder, vocab_size=TOY_VOCAB_SIZE, unk_id=3, languages=["cs", "de", "en", "fr"])
    with pytest.raises(TokenizerError, match="'<2cs>' is not a control symbol"):
        Tokenizer.from_pretrained(folder)


def test_load_rejects_a_corrupt_model(toy_tokenizer_dir: Path, tmp_path: Path) -> None:
    folder = copy_folder(toy_tokenizer_dir, tmp_path / "tok")
    (folder / "spm.model").write_bytes(b"not a model")
    with pytest.raises(TokenizerError, match="cannot load SentencePiece model"):
        Tokenizer.from_pretrained(folder)


def test_import_does_not_load_torch() -> None:
    code = "import sys, lingolite.tokenizer; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.stdout.strip() == "False"
