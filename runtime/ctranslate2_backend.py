"""Translate with a CTranslate2 model exported by ``python -m export.ctranslate2``.

PyTorch-free. A CTranslate2 folder holds::

    model.bin                  the converted weights (float32 or int8)
    config.json                CTranslate2's own config (special tokens, layer norm epsilon)
    shared_vocabulary.json     the tokenizer's pieces in id order, so CT2 token ids equal ours
    tokenizer.json, spm.model  the LingoLite tokenizer (the folder is self-contained)
    lingolite.json             {"format_version": 1, "model": {...ModelConfig...},
                                "quantization": "int8", "source": ..., "versions": {...}}
    parity.json                the export's parity report against eager PyTorch

CTranslate2 takes and returns token *strings*; :class:`CT2Translator` maps our ids to pieces and
back through the vocabulary, and passes the source exactly as the model was trained on it
(``[<2tgt>] + pieces + [eos]``; CTranslate2 adds no BOS or EOS to it). Decoding starts from
``<s>``, like :func:`lingolite.generate.translate_ids`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import ctranslate2

from lingolite.config import ConfigError, ModelConfig
from lingolite.search import SearchError
from lingolite.tokenizer import TokenId, Tokenizer, TokenizerError
from lingolite.utils import read_json_object

FORMAT_VERSION: Final = 1
METADATA_FILE: Final = "lingolite.json"
VOCABULARY_FILE: Final = "shared_vocabulary.json"
PARITY_FILE: Final = "parity.json"


class CT2ModelError(ValueError):
    """A CTranslate2 folder that this runtime must not use; the message names every problem."""


def read_metadata(folder: Path) -> tuple[ModelConfig, dict[str, Any]]:
    """Parse ``lingolite.json``: the model config and the whole JSON object."""
    path = folder / METADATA_FILE
    data = read_json_object(
        path, CT2ModelError, f"{path} is missing: not a LingoLite CTranslate2 folder"
    )
    if data.get("format_version") != FORMAT_VERSION:
        raise CT2ModelError(
            f"{path}: format_version {data.get('format_version')!r} is not supported; this "
            f"runtime reads {FORMAT_VERSION}. Re-export with this LingoLite."
        )
    try:
        config = ModelConfig.from_dict(data.get("model"))
    except (ConfigError, TypeError) as exc:
        raise CT2ModelError(f"{path}: {exc}") from exc
    return config, data


def read_vocabulary(folder: Path) -> list[str]:
    """The pieces of ``shared_vocabulary.json`` in id order."""
    path = folder / VOCABULARY_FILE
    if not path.is_file():
        raise CT2ModelError(f"{path} is missing (the export writes one shared vocabulary)")
    try:
        tokens = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CT2ModelError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise CT2ModelError(f"{path} must hold a JSON list of strings")
    return tokens


class CT2Translator:
    """A :class:`ctranslate2.Translator` that speaks LingoLite token ids and texts.

    ``compute_type="default"`` runs the weights as they were saved (int8 stays int8);
    ``intra_threads=0`` lets CTranslate2 choose the number of threads.
    """

    def __init__(
        self,
        folder: Path | str,
        *,
        device: str = "cpu",
        compute_type: str = "default",
        intra_threads: int = 0,
        inter_threads: int = 1,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise CT2ModelError(f"CTranslate2 folder {self.folder} does not exist")
        self.config, metadata = read_metadata(self.folder)
        self.quantization = str(metadata.get("quantization", "unknown"))
        try:
            self.tokenizer = Tokenizer.from_pretrained(self.folder)
        except TokenizerError as exc:
            raise CT2ModelError(f"{self.folder}: {exc}") from exc
        self._pieces = read_vocabulary(self.folder)
        problems = []
        if len(self._pieces) != self.config.vocab_size:
            problems.append(
                f"{VOCABULARY_FILE} has {len(self._pieces)} tokens, the model has "
                f"vocab_size {self.config.vocab_size}"
            )
        if self.tokenizer.vocab_size != self.config.vocab_size:
            problems.append(
                f"the tokenizer has {self.tokenizer.vocab_size} pieces, the model has "
                f"vocab_size {self.config.vocab_size}"
            )
        else:
            wrong = [
                i
                for i, piece in enumerate(self._pieces[: self.tokenizer.vocab_size])
                if self.tokenizer.id_to_piece(i) != piece
            ]
            if wrong:
                problems.append(
                    f"{VOCABULARY_FILE} disagrees with the tokenizer at ids {wrong[:10]!r}"
                )
        if problems:
            raise CT2ModelError(f"{self.folder}: " + "; ".join(problems))
        self._ids = {piece: i for i, piece in enumerate(self._pieces)}
        self._translator = ctranslate2.Translator(
            str(self.folder),
            device=device,
            compute_type=compute_type,
            intra_threads=intra_threads,
            inter_threads=inter_threads,
        )

    def translate_ids(
        self,
        sources: Sequence[Sequence[TokenId]],
        num_beams: int = 1,
        max_length: int | None = None,
        *,
        length_penalty: float = 1.0,
        patience: float = 1.0,
        max_batch_size: int = 64,
    ) -> list[list[TokenId]]:
        """Translate source id lists (each ``[<2xx>] + pieces + [eos]``); no BOS/EOS in results.

        ``max_length`` counts generated tokens without EOS (as in :class:`SearchConfig`) and
        defaults to ``max_tgt_len``. ``num_beams=1`` is greedy search. Beam search stops once
        ``num_beams * patience`` hypotheses are finished (CTranslate2's rule); our search stops
        once no running beam can beat the finished ones, which ``patience=2`` approaches.
        """
        c = self.config
        length = c.max_tgt_len if max_length is None else max_length
        errors = []
        if not 1 <= length <= c.max_tgt_len:
            errors.append(f"max_length must be in [1, {c.max_tgt_len}], got {max_length}")
        if num_beams < 1:
            errors.append(f"num_beams must be >= 1, got {num_beams}")
        if patience <= 0:
            errors.append(f"patience must be > 0, got {patience}")
        if not sources or any(len(s) == 0 for s in sources):
            errors.append("every source sequence needs at least one token")
        too_long = [i for i, s in enumerate(sources) if len(s) > c.max_src_len]
        if too_long:
            errors.append(
                f"sources {too_long[:10]!r} are longer than max_src_len ({c.max_src_len})"
            )
        bad = sorted({t for s in sources for t in s if not 0 <= t < c.vocab_size})
        if bad:
            errors.append(f"token ids {bad[:10]!r} out of range [0, {c.vocab_size})")
        if errors:
            raise SearchError("invalid translation request: " + "; ".join(errors))
        results = self._translator.translate_batch(
            [[self._pieces[t] for t in s] for s in sources],
            beam_size=num_beams,
            num_hypotheses=1,
            length_penalty=length_penalty,
            patience=patience,
            max_decoding_length=length,
            # Our search may end at once (EOS first) and never truncates the source.
            min_decoding_length=0,
            max_input_length=0,
            max_batch_size=max_batch_size,
        )
        return [[self._ids[piece] for piece in result.hypotheses[0]] for result in results]

    def translate(
        self,
        texts: Sequence[str],
        src: str,
        tgt: str,
        num_beams: int = 1,
        max_length: int | None = None,
    ) -> list[str]:
        """Translate ``texts`` from ``src`` into ``tgt`` (only the target tag is fed)."""
        unknown = [lang for lang in (src, tgt) if lang not in self.tokenizer.languages]
        if unknown:
            raise TokenizerError(
                f"unknown languages {unknown!r}; this model knows "
                f"{list(self.tokenizer.languages)!r}"
            )
        if not texts:
            return []
        sources = [
            self.tokenizer.encode_source(text, tgt, max_len=self.config.max_src_len)
            for text in texts
        ]
        return self.tokenizer.decode_batch(self.translate_ids(sources, num_beams, max_length))
