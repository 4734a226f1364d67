"""lingolite.marian_tokenizer: id-for-id parity with transformers.MarianTokenizer on Hugging
Face Marian folders built here (small SentencePiece models trained on the sentences below, a
vocab.json laid out like Marian's), and the LingoLite folder format. Offline: nothing is
downloaded. Only the parity tests need transformers."""

# The sample texts mix scripts on purpose (Cyrillic and Greek letters that look Latin, ...).
# ruff: noqa: RUF001

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any, cast

import pytest

from lingolite.marian_tokenizer import (
    SOURCE_MODEL_FILE,
    TARGET_MODEL_FILE,
    VOCAB_FILE,
    MarianTokenizer,
)
from lingolite.tokenizer import CONFIG_FILE, TokenId, Tokenizer, TokenizerError
from lingolite.tokenizers import TextTokenizer, load_tokenizer
from tests.marian_fixtures import BASE, corpus, train_spm, write_hf_folder

# Texts to encode: the corpus, unseen characters, odd whitespace and what transformers treats
# specially (literal special tokens and >>xx<< codes).
EDGE_CASES = [
    "",
    " ",
    "   leading and trailing   ",
    "\t\n",
    "Unseen: ᚠᚢᚦ ꦲꦏ ⠓⠑⠇⠇⠕ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "A literal </s> inside, and <unk> and <pad> too.",
    "</s>",
    "<unk><pad></s>",
    "<<unk>> <</s>>",
    ">>fr<< Bonjour le monde",
    ">>es<<Hola",
    ">>xx<< unknown code",
    ">> not << a code",
    "no >>fr<< at the start",
    ">>fr<<",
    "</s>>>fr<< after eos",
    "▁ underline ▁▁ pieces",
    "Zero-width\u200bjoiner\u200d and soft\u00adhyphen",
    "Combining e\u0301 vs é",
]


@pytest.fixture(scope="module")
def models() -> tuple[bytes, bytes]:
    """A source model that does not cover every character and a target model with other
    pieces (trained on another sample), so that the two disagree."""
    return train_spm(corpus(0, 300), 400, 0.995), train_spm(corpus(1, 300), 350, 1.0)


@pytest.fixture(scope="module")
def pair_folder(tmp_path_factory: pytest.TempPathFactory, models: tuple[bytes, bytes]) -> Path:
    return write_hf_folder(tmp_path_factory.mktemp("opus-mt-en-de"), models, [])


@pytest.fixture(scope="module")
def multi_folder(tmp_path_factory: pytest.TempPathFactory, models: tuple[bytes, bytes]) -> Path:
    return write_hf_folder(tmp_path_factory.mktemp("opus-mt-en-mul"), models, ["es", "fr", "pt_br"])


def texts() -> list[str]:
    return corpus(2, 250) + EDGE_CASES


def hf_tokenizer(folder: Path) -> Any:
    transformers = pytest.importorskip("transformers")
    return transformers.MarianTokenizer.from_pretrained(str(folder))


# ---------------------------------------------------------------------- parity with transformers


@pytest.mark.parametrize("kind", ["pair", "multi"])
def test_encoding_matches_transformers(kind: str, pair_folder: Path, multi_folder: Path) -> None:
    folder = pair_folder if kind == "pair" else multi_folder
    hf = hf_tokenizer(folder)
    ours = MarianTokenizer.from_hf_folder(folder)
    batch = texts()
    assert ours.vocab_size == hf.vocab_size
    assert (ours.eos_id, ours.unk_id, ours.pad_id) == (
        hf.eos_token_id,
        hf.unk_token_id,
        hf.pad_token_id,
    )
    assert [[*ours.encode(t), ours.eos_id] for t in batch] == hf(batch).input_ids
    assert [ours.encode(t) for t in batch] == hf(batch, add_special_tokens=False).input_ids
    assert [ours.encode_target(t) for t in batch] == hf(text_target=batch).input_ids
    # Some pieces map to <unk> (vocab.json lacks them), and the two models disagree.
    assert any(ours.unk_id in ours.encode(t) for t in BASE)
    assert [ours.encode(t) for t in BASE] != [ours.encode_target(t)[:-1] for t in BASE]


def test_encode_source_matches_transformers(pair_folder: Path, multi_folder: Path) -> None:
    batch = texts()
    hf = hf_tokenizer(multi_folder)
    ours = MarianTokenizer.from_hf_folder(multi_folder)
    for lang in ("fr", "pt_br"):
        tagged = [f">>{lang}<< {t}" for t in batch]
        assert [ours.encode_source(t, lang) for t in batch] == hf(tagged).input_ids
        cut = hf(tagged, truncation=True, max_length=6).input_ids
        assert [ours.encode_source(t, lang, max_len=6) for t in batch] == cut
    hf = hf_tokenizer(pair_folder)
    ours = MarianTokenizer.from_hf_folder(pair_folder)
    assert [ours.encode_source(t, "de") for t in batch] == hf(batch).input_ids
    cut = hf(batch, truncation=True, max_length=5).input_ids
    assert [ours.encode_source(t, "de", max_len=5) for t in batch] == cut


@pytest.mark.parametrize("kind", ["pair", "multi"])
def test_decoding_matches_transformers(kind: str, pair_folder: Path, multi_folder: Path) -> None:
    folder = pair_folder if kind == "pair" else multi_folder
    hf = hf_tokenizer(folder)
    ours = MarianTokenizer.from_hf_folder(folder)
    encoded = [ours.encode_source(t, "de" if kind == "pair" else "fr") for t in texts()]
    encoded += [ours.encode_target(t) for t in texts()]
    rng = random.Random(3)
    encoded += [
        [TokenId(rng.randrange(ours.vocab_size)) for _ in range(rng.randint(0, 30))]
        for _ in range(300)
    ]
    want = [hf.decode(ids, skip_special_tokens=True) for ids in encoded]
    assert ours.decode_batch(encoded) == want
    assert hf.batch_decode(encoded, skip_special_tokens=True) == want


def test_clean_up_tokenization_spaces_matches_transformers(
    tmp_path: Path, models: tuple[bytes, bytes]
) -> None:
    folder = write_hf_folder(tmp_path, models, [], clean_up_tokenization_spaces=True)
    hf = hf_tokenizer(folder)
    ours = MarianTokenizer.from_hf_folder(folder)
    encoded = [ours.encode_target(t) for t in texts()]
    assert ours.decode_batch(encoded) == hf.batch_decode(encoded, skip_special_tokens=True)


# ---------------------------------------------------------------------- behaviour


def test_single_pair_model(pair_folder: Path) -> None:
    tok = MarianTokenizer.from_hf_folder(pair_folder)
    assert tok.languages == ("de", "en")
    assert (tok.source_lang, tok.target_lang, tok.lang_ids) == ("en", "de", {})
    assert tok.directions == ("en-de",)
    assert tok.bos_id == tok.pad_id == tok.vocab_size - 1
    assert (tok.eos_id, tok.unk_id) == (0, 1)
    ids = tok.encode_source("Two dogs play.", "de")
    assert ids[-1] == tok.eos_id and tok.decode(ids) == "Two dogs play."
    with pytest.raises(TokenizerError, match=r"translates en-de only, not into 'fr'"):
        tok.encode_source("x", "fr")
    with pytest.raises(TokenizerError, match=r"no language code >>de<<.*single-pair"):
        tok.lang_id("de")
    assert tok.encode_source("Two dogs play.", "de", max_len=1) == [tok.eos_id]
    with pytest.raises(TokenizerError, match=r"max_len \(0\) must be at least 1 \(eos\)"):
        tok.encode_source("x", "de", max_len=0)


def test_multilingual_model(multi_folder: Path) -> None:
    tok = MarianTokenizer.from_hf_folder(multi_folder)
    # The config's target_lang ("mul") is ignored: the targets are the codes.
    assert tok.languages == ("en", "es", "fr", "pt_br")
    assert tok.target_lang is None
    assert tok.lang_ids == {"es": 2, "fr": 3, "pt_br": 4}
    assert tok.directions == ("en-es", "en-fr", "en-pt_br")
    ids = tok.encode_source("Bonjour le monde.", "fr")
    assert ids[0] == tok.lang_id("fr") == tok.piece_to_id(">>fr<<") and ids[-1] == tok.eos_id
    assert tok.encode_source("Bonjour le monde.", "fr", max_len=2) == [ids[0], tok.eos_id]
    with pytest.raises(TokenizerError, match=r"no language code >>de<<.*\['es', 'fr', 'pt_br'\]"):
        tok.encode_source("x", "de")
    with pytest.raises(TokenizerError, match=r"max_len \(1\) must be at least 2 \(code and eos\)"):
        tok.encode_source("x", "fr", max_len=1)
    # Language codes are not special in transformers' decoding: they stay as text.
    assert tok.decode(ids).startswith(">>fr<<")


def test_special_pieces_and_ids(pair_folder: Path) -> None:
    tok = MarianTokenizer.from_hf_folder(pair_folder)
    assert tok.encode("</s><unk><pad>") == [tok.eos_id, tok.unk_id, tok.pad_id]
    assert tok.id_to_piece(tok.eos_id) == "</s>"
    assert tok.piece_to_id("no such piece") == tok.unk_id
    assert tok.decode([tok.pad_id, tok.unk_id, tok.eos_id]) == ""
    with pytest.raises(TokenizerError, match=r"token ids \[-1, 100000\] out of range"):
        tok.decode([TokenId(-1), TokenId(100000)])


def test_save_and_load_round_trip(tmp_path: Path, multi_folder: Path) -> None:
    tok = MarianTokenizer.from_hf_folder(multi_folder)
    folder = tok.save(tmp_path / "tok")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [CONFIG_FILE, SOURCE_MODEL_FILE, TARGET_MODEL_FILE, VOCAB_FILE]
    )
    loaded = load_tokenizer(folder)
    assert isinstance(loaded, MarianTokenizer)
    assert loaded.config() == tok.config()
    assert json.loads((folder / CONFIG_FILE).read_text())["type"] == "marian-sentencepiece"
    for text in texts():
        assert loaded.encode_source(text, "es") == tok.encode_source(text, "es")
        assert loaded.encode_target(text) == tok.encode_target(text)
    tok.save(folder)  # into an existing folder: replaced file by file
    assert MarianTokenizer.from_pretrained(folder).config() == tok.config()


def test_both_tokenizers_satisfy_the_protocol(tmp_path: Path, pair_folder: Path) -> None:
    marian: TextTokenizer = MarianTokenizer.from_hf_folder(pair_folder)
    joint: TextTokenizer = load_tokenizer("pretrained/lingolite-tiny-multi30k")
    assert isinstance(joint, Tokenizer)
    assert isinstance(marian, TextTokenizer) and isinstance(joint, TextTokenizer)
    assert joint.lang_ids == {lang: joint.lang_id(lang) for lang in joint.languages}
    assert len(joint.directions) == 6 and "de-en" in joint.directions


# ---------------------------------------------------------------------- bad folders


def saved(tmp_path: Path, pair_folder: Path) -> Path:
    return MarianTokenizer.from_hf_folder(pair_folder).save(tmp_path / "tok")


def edit_config(folder: Path, **changes: Any) -> None:
    path = folder / CONFIG_FILE
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def test_missing_file_is_named(tmp_path: Path, pair_folder: Path) -> None:
    folder = saved(tmp_path, pair_folder)
    (folder / TARGET_MODEL_FILE).unlink()
    with pytest.raises(TokenizerError, match=r"target_model_file 'target.spm' does not exist"):
        MarianTokenizer.from_pretrained(folder)


def test_paths_outside_the_folder_are_refused(tmp_path: Path, pair_folder: Path) -> None:
    folder = saved(tmp_path, pair_folder)
    (tmp_path / "elsewhere.spm").write_bytes((folder / SOURCE_MODEL_FILE).read_bytes())
    (folder / "link.spm").symlink_to(tmp_path / "elsewhere.spm")
    edit_config(folder, source_model_file="../elsewhere.spm", target_model_file="link.spm",
                vocab_file="/etc/passwd")  # fmt: skip
    with pytest.raises(TokenizerError) as caught:
        MarianTokenizer.from_pretrained(folder)
    message = str(caught.value)
    assert "source_model_file '../elsewhere.spm' must not contain '..'" in message
    assert "target_model_file 'link.spm' resolves to" in message and "outside" in message
    assert "vocab_file '/etc/passwd' must be a relative path" in message


def test_bad_json_types_are_all_named(tmp_path: Path, pair_folder: Path) -> None:
    folder = saved(tmp_path, pair_folder)
    edit_config(folder, pad_id="57", vocab_size=True, languages="de", target_lang=3)
    with pytest.raises(TokenizerError) as caught:
        MarianTokenizer.from_pretrained(folder)
    message = str(caught.value)
    for part in ("'pad_id' must be a int, got str '57'", "'vocab_size' must be a int, got bool",
                 "'languages' must be a list, got str 'de'", "'target_lang' must be a str?"):  # fmt: skip
        assert part in message


def test_bad_vocab_is_named(tmp_path: Path, pair_folder: Path) -> None:
    folder = saved(tmp_path, pair_folder)
    vocab = json.loads((folder / VOCAB_FILE).read_text())
    del vocab["<pad>"]
    vocab["x"] = vocab["y"] = 10**6
    (folder / VOCAB_FILE).write_text(json.dumps(vocab))
    with pytest.raises(
        TokenizerError, match=r"lacks the special pieces \['<pad>'\].*repeated: \[1000000\]"
    ):
        MarianTokenizer.from_pretrained(folder)
    (folder / VOCAB_FILE).write_text("[1, 2")
    with pytest.raises(TokenizerError, match=r"marian_vocab.json is not valid JSON"):
        MarianTokenizer.from_pretrained(folder)


def test_config_that_disagrees_with_the_files(tmp_path: Path, pair_folder: Path) -> None:
    folder = saved(tmp_path, pair_folder)
    edit_config(folder, eos_id=5, languages=["de", "fr"])
    with pytest.raises(
        TokenizerError,
        match=r"languages is \[.de., .fr.\] but the files give \[.de., .en.\]; eos_id is 5 but the files give 0",
    ):
        MarianTokenizer.from_pretrained(folder)


def test_unknown_type_is_refused_by_the_loader(tmp_path: Path, pair_folder: Path) -> None:
    folder = saved(tmp_path, pair_folder)
    edit_config(folder, type="wordpiece")
    with pytest.raises(
        TokenizerError, match=r"unknown tokenizer type 'wordpiece'.*marian-sentencepiece"
    ):
        load_tokenizer(folder)
    with pytest.raises(TokenizerError, match=r"unsupported type 'wordpiece'"):
        MarianTokenizer.from_pretrained(folder)
    with pytest.raises(TokenizerError, match=r"has no tokenizer.json"):
        load_tokenizer(tmp_path)


def test_unsupported_hf_options_are_named(tmp_path: Path, models: tuple[bytes, bytes]) -> None:
    folder = write_hf_folder(tmp_path, models, [], separate_vocabs=True,
                             target_vocab_file="target_vocab.json", eos_token="<eos>",
                             additional_special_tokens=["<eop>"])  # fmt: skip
    with pytest.raises(TokenizerError) as caught:
        MarianTokenizer.from_hf_folder(folder)
    message = str(caught.value)
    for part in ("separate_vocabs True is not supported",
                 "target_vocab_file 'target_vocab.json' is not supported",
                 "eos_token '<eos>' is not supported", "additional_special_tokens ['<eop>']"):  # fmt: skip
        assert part in message


def test_hf_folder_problems_are_named(tmp_path: Path, models: tuple[bytes, bytes]) -> None:
    folder = write_hf_folder(tmp_path, models, [])
    (folder / "target.spm").unlink()
    (folder / "tokenizer_config.json").write_text("{}")
    with pytest.raises(TokenizerError, match=r"missing files \['target.spm'\].*no source_lang"):
        MarianTokenizer.from_hf_folder(folder)
    write_hf_folder(folder, models, [])
    with pytest.raises(TokenizerError, match=r"target_lang 'en-us' does not match"):
        MarianTokenizer.from_hf_folder(folder, target_lang="en-us")
    assert MarianTokenizer.from_hf_folder(folder, target_lang="fr").languages == ("en", "fr")


def test_write_tokenizer_saves_marian_with_the_java_vocab(
    tmp_path: Path, multi_folder: Path
) -> None:
    from export.common import write_tokenizer
    from export.vocab import export_vocab
    from runtime.manifest import TokenizerSchema

    tok = MarianTokenizer.from_hf_folder(multi_folder)
    section = write_tokenizer(tok, tmp_path)
    assert section["type"] == "marian-sentencepiece"
    assert (section["model"], section["vocab"]) == (SOURCE_MODEL_FILE, "vocab.json")
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="ascii"))
    assert vocab["type"] == "marian-sentencepiece" and vocab["source"]["languages"] == []
    assert vocab["pieces"] == [tok.id_to_piece(TokenId(i)) for i in range(tok.vocab_size)]
    assert vocab["source"]["spm_sha256"] == hashlib.sha256(tok.source_model_proto).hexdigest()
    assert (vocab["pad_id"], vocab["bos_id"], vocab["eos_id"], vocab["unk_id"]) == (
        tok.pad_id, tok.pad_id, tok.eos_id, tok.unk_id)  # fmt: skip
    assert vocab["lang_ids"] == tok.lang_ids and vocab["target_lang"] is None
    assert (
        export_vocab(tmp_path, tmp_path / "again").read_bytes()
        == (tmp_path / "vocab.json").read_bytes()
    )
    assert section["lang_ids"] == tok.lang_ids and section["bos_id"] == tok.pad_id
    TokenizerSchema.model_validate(section)  # "pt_br" is a valid code
    assert load_tokenizer(tmp_path).config() == tok.config()


def test_manifest_rules_for_a_marian_tokenizer() -> None:
    from types import SimpleNamespace

    from runtime.manifest import ManifestSchema, _cross_field_problems

    def problems(**tokenizer: Any) -> list[str]:
        section = {"config": "tokenizer.json", "type": "marian-sentencepiece",
                   "model": "source.spm", "vocab": None, "languages": ["en", "es", "pt_br"],
                   "lang_ids": {"es": 2, "pt_br": 3}, "pad_id": 99, "bos_id": 99, "eos_id": 0,
                   "unk_id": 1, "vocab_size": 100, **tokenizer}  # fmt: skip
        manifest = ManifestSchema.model_validate({
            "format_version": 1, "model": {}, "tokenizer": section,
            "directions": ["en-pt_br", "en-es"], "files": {"e.onnx": {"sha256": "0" * 64, "bytes": 1}},
            "variants": {"onnx": {"backend": "onnxruntime", "precision": "fp32", "files": {"e": "e.onnx"}}},
        })  # fmt: skip
        # Only the ids and vocab_size of the model config are read (ModelConfig itself is the
        # importer's business).
        ids = {k: section[k] for k in ("pad_id", "bos_id", "eos_id", "unk_id")}
        return _cross_field_problems(manifest, cast(Any, SimpleNamespace(vocab_size=100, **ids)))

    assert problems() == []  # bos == pad, "en" has no tag, "pt_br" is a code
    assert problems(lang_ids={"de": 5}, bos_id=3) == [
        "tokenizer.lang_ids names ['de'], not all in ['en', 'es', 'pt_br']",
        "tokenizer.bos_id 3 must be the pad_id 99",
    ]
    # A LingoLite tokenizer (no type) keeps the strict rules.
    assert problems(type=None, bos_id=4) == [
        "tokenizer.lang_ids names ['es', 'pt_br'] but languages are ['en', 'es', 'pt_br']",
        "tokenizer.languages ['pt_br'] are not 2-3 lowercase letters",
    ]
