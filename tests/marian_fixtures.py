"""Hugging Face Marian (OPUS-MT) folders built offline for the import and tokenizer tests:
SentencePiece models trained on given sentences, a ``vocab.json`` in Marian's layout and, for
the import tests, a ``MarianMTModel`` with seeded random weights saved by ``save_pretrained``.
Nothing is downloaded."""

# The sample texts mix scripts on purpose (Cyrillic and Greek letters that look Latin, ...).
# ruff: noqa: RUF001

from __future__ import annotations

import importlib
import io
import json
import random
from pathlib import Path
from typing import Any

import sentencepiece as spm
import torch

from lingolite.import_marian import import_marian

# opus-mt-en-de's sizes (its config.json): 6 + 6 layers, d_model 512, 8 heads, FFN 2048, 58,101
# tokens, 512 positions, swish, scaled embeddings.
OPUS_MT_EN_DE: dict[str, Any] = dict(
    vocab_size=58101, d_model=512, encoder_layers=6, decoder_layers=6,
    encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048,
    decoder_ffn_dim=2048, max_position_embeddings=512,
)  # fmt: skip


BASE = [
    "The quick brown fox jumps over the lazy dog.",
    "Two dogs play in the snow, and a child watches them.",
    "I can't believe it's already 10:45 p.m.!",
    "Prices rose by 3.5% in 2024 (from $1,299 to $1,344).",
    "Café, naïve, façade, jalapeño, Ångström, Øresund, Łódź, Świnoujście.",
    "Der Bär läuft über die Straße und isst Äpfel.",
    "Él está aquí, ¿verdad? ¡Qué sorpresa!",
    "Ça va très bien, merci — et vous ?",
    "Mañana iremos a la playa con nuestros niños.",
    "Os pássaros cantam ao amanhecer na floresta.",
    "Привет, как дела? Всё хорошо, спасибо.",
    "Москва — столица России; Київ — столиця України.",
    "Καλημέρα σας! Η Ελλάδα είναι όμορφη χώρα.",
    "Το πρωί πίνω καφέ και διαβάζω εφημερίδα.",
    "我们今天去公园散步，天气很好。",
    "東京は日本の首都です。桜がきれいですね。",
    "서울은 한국의 수도입니다.",
    "مرحبا بكم في المدينة القديمة.",
    "الطقس جميل اليوم، أليس كذلك؟",
    "שלום עולם, מה שלומך?",
    "नमस्ते, आप कैसे हैं?",
    "I love pizza 🍕 and coffee ☕ — 😀👍🏽!",
    "Emoji sequences: 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 3.14159 -42 +7.",
    "Punctuation: \"quotes\", 'single', (parens), [brackets], {braces}, <angle>.",
    "E-mail me at someone@example.com or visit https://example.org/path?q=1.",
    "Tabs\tand  double  spaces   and\u00a0no-break\u3000ideographic space.",
    "Full-width ＡＢＣ１２３ and ligatures ﬁ ﬂ should be normalised.",
    "Line one.\nLine two.",
    "Mixed: Hello Привет Γειά 你好 مرحبا!",
]

_WORD_LIST = (
    "house tree river mountain city music book water light night dog cat bird "
    "Haus Baum Fluss Berg Stadt maison arbre rivière montagne ville casa árbol río "
    "дом дерево река гора город σπίτι δέντρο ποτάμι βουνό πόλη 房子 树 河 山 城市 "
    "بيت شجرة نهر جبل مدينة 123 4.5 2025 !? ... ;"
)
WORDS = _WORD_LIST.split()


def corpus(seed: int, n: int) -> list[str]:
    """``BASE`` and ``n`` more sentences of random words, reproducibly."""
    rng = random.Random(seed)
    made = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))) for _ in range(n)]
    return BASE + made


def train_spm(sentences: list[str], vocab_size: int, coverage: float) -> bytes:
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=writer,
        model_type="unigram",
        vocab_size=vocab_size,
        character_coverage=coverage,
        hard_vocab_limit=False,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        minloglevel=2,
    )
    return writer.getvalue()


def marian_vocab(source: bytes, target: bytes, codes: list[str]) -> dict[str, int]:
    """Marian's layout: ``</s>`` 0, ``<unk>`` 1, language codes, the pieces of both models
    (every 11th left out, so that some pieces map to unk), ``<pad>`` last."""
    pieces: list[str] = ["</s>", "<unk>", *(f">>{c}<<" for c in codes)]
    for proto in (source, target):
        sp = spm.SentencePieceProcessor(model_proto=proto)
        for i in range(sp.get_piece_size()):
            piece = sp.id_to_piece(i)
            if not (sp.is_control(i) or sp.is_unknown(i)) and piece not in pieces:
                pieces.append(piece)
    kept = [p for k, p in enumerate(pieces) if k < 2 + len(codes) or k % 11]
    return {piece: i for i, piece in enumerate([*kept, "<pad>"])}


def write_hf_folder(
    folder: Path, models: tuple[bytes, bytes], codes: list[str], **options: Any
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    source, target = models
    (folder / "source.spm").write_bytes(source)
    (folder / "target.spm").write_bytes(target)
    vocab = marian_vocab(source, target, codes)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    config = {"source_lang": "en", "target_lang": "mul" if codes else "de", **options}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def pad_vocab(vocab: dict[str, int], size: int) -> dict[str, int]:
    """``vocab`` grown to ``size`` entries (``<pad>`` kept last) with pieces the SentencePiece
    models never produce: a real-size embedding matrix from a small test tokenizer."""
    pieces = sorted(vocab, key=vocab.__getitem__)[:-1]
    pieces += [f"\u2581filler{i}" for i in range(size - 1 - len(pieces))]
    return {piece: i for i, piece in enumerate([*pieces, "<pad>"])}


def hf_config(**overrides: Any) -> Any:
    """A MarianConfig (small unless overridden) in opus-mt's layout: eos 0, unk 1, pad (the
    decoder start) last; no forced eos, so that generate() is plain search."""
    transformers: Any = importlib.import_module("transformers")  # untyped

    values: dict[str, Any] = dict(
        vocab_size=97, d_model=32, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
        decoder_ffn_dim=64, max_position_embeddings=64, activation_function="swish",
        scale_embedding=True, eos_token_id=0, forced_eos_token_id=None,
    )  # fmt: skip
    values.update(overrides)
    values.setdefault("pad_token_id", values["vocab_size"] - 1)
    values.setdefault("decoder_start_token_id", values["pad_token_id"])
    return transformers.MarianConfig(**values)


def hf_model(
    config: Any, seed: int = 0, eos_boost: float = 0.0, gain: float = 1.0, embed_gain: float = 1.0
) -> Any:
    """A MarianMTModel with every weight perturbed (norms and biases away from 1 and 0, so that
    a wrongly mapped one shows), ``eos_boost`` added to the eos logit (hypotheses then end at
    varied lengths) and pad given no probability mass, as in a trained Marian model (pad is never
    a training target), so that generate's ban of pad after the softmax and the import's ban
    before it agree. ``gain`` scales the attention and feed-forward weights: at 4 the outputs
    depend on the source (at 1 they hardly do)."""
    transformers: Any = importlib.import_module("transformers")  # untyped

    torch.manual_seed(seed)
    model = transformers.MarianMTModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed_positions" in name:  # the fixed sinusoidal table
                continue
            p.add_(torch.randn_like(p) * (0.2 if "layer_norm" in name else 0.05))
            if "proj" in name or ".fc" in name:
                p.mul_(gain)
        model.model.shared.weight.mul_(embed_gain)
        model.final_logits_bias.normal_(0.0, 0.5)
        model.final_logits_bias[0, config.eos_token_id] += eos_boost
        model.final_logits_bias[0, config.pad_token_id] -= 40.0
    return model


def write_marian_folder(
    folder: Path, models: tuple[bytes, bytes], *, vocab_size: int | None = None,
    eos_boost: float = 4.0, gain: float = 1.0, **config: Any,
) -> Path:  # fmt: skip
    """A complete Hugging Face Marian en-de folder: tokenizer files and a seeded random model
    whose vocabulary is the tokenizer's (grown to ``vocab_size`` with filler pieces)."""
    write_hf_folder(folder, models, [])
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    if vocab_size is not None:
        vocab = pad_vocab(vocab, vocab_size)
        (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), "utf-8")
    model = hf_model(hf_config(vocab_size=len(vocab), **config), eos_boost=eos_boost, gain=gain)
    model.save_pretrained(str(folder))
    return folder


# A few sources for whole-pipeline checks (tests/test_import_marian.py, the Java core's and the
# browser's Marian tests): Latin, German umlauts, mixed scripts (unknown pieces), bare words.
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Two dogs play in the snow, and a child watches them.",
    "Der Bär läuft über die Straße und isst Äpfel.",
    "Mixed: Hello Привет Γειά 你好 مرحبا!",
    "house tree river mountain city music",
]
SMALL_MAX_SRC_LEN, SMALL_MAX_TGT_LEN = 48, 32


def small_models() -> tuple[bytes, bytes]:
    """The small folder's source and target SentencePiece models."""
    return train_spm(corpus(0, 300), 400, 0.995), train_spm(corpus(1, 300), 350, 1.0)


def small_checkpoint(root: Path) -> Path:
    """The small en-de folder under ``root/hf`` imported into ``root/checkpoint`` (``lingolite
    import-marian --max-src-len 48 --max-tgt-len 32``); returns the checkpoint. Its weights are
    scaled (``gain`` 4) and its eos bias tuned (1.1) so that :data:`SENTENCES` give different
    outputs, some ending early and some at the length limit, greedy and beam 4 differing (the
    default folder's outputs are all empty)."""
    folder = write_marian_folder(root / "hf", small_models(), eos_boost=1.1, gain=4.0)
    return import_marian(
        folder, root / "checkpoint", max_src_len=SMALL_MAX_SRC_LEN, max_tgt_len=SMALL_MAX_TGT_LEN
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.marian_fixtures OUT [--opus-mt-en-de-size]``: write the offline Marian
    folder the tests use (small), or one at opus-mt-en-de's sizes (what the committed Marian
    benchmark, benchmarks/results/marian-opus-mt-en-de-size, ran on)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tests.marian_fixtures", description=main.__doc__
    )
    parser.add_argument("out", type=Path, help="folder to write (must not exist)")
    parser.add_argument("--opus-mt-en-de-size", action="store_true", help="real-size model")
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists; choose a new folder")
    models = small_models()
    if args.opus_mt_en_de_size:
        sizes = {k: v for k, v in OPUS_MT_EN_DE.items() if k != "vocab_size"}
        write_marian_folder(args.out, models, vocab_size=58101, eos_boost=6.0, **sizes)
    else:
        write_marian_folder(args.out, models)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
