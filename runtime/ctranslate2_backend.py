"""CTranslate2 backend: a manifest's ``ctranslate2`` variant, decoded by CTranslate2's own search.

PyTorch-free. ``python -m export.ctranslate2`` writes an artifact folder like every exporter
(``manifest.json`` with the sha256 of every file, the tokenizer, ``parity.json``); each variant is
a CTranslate2 model folder inside it::

    ct2-fp32/model.bin               the converted weights (float32)
    ct2-fp32/config.json             CTranslate2's own config (special tokens, norm epsilon)
    ct2-fp32/shared_vocabulary.json  one token string per model id, in id order
    ct2-int8/...                     the same, int8 weights

    "ctranslate2-int8": {"backend": "ctranslate2", "precision": "int8",
                         "files": {"model": "ct2-int8/model.bin", "config": "ct2-int8/config.json",
                                   "vocabulary": "ct2-int8/shared_vocabulary.json"}}

CTranslate2 runs the whole search in C++ (no ``encode``/``decode_step`` to drive), so
:class:`CT2Backend` is a :class:`lingolite.search.SentenceBackend`: it takes our token ids and a
:class:`~lingolite.search.SearchConfig`, maps ids to the vocabulary's strings and back, and passes
the source exactly as the model was trained on it (``[<2tgt>] + pieces + [eos]``; CTranslate2
adds no BOS or EOS to it); decoding starts from ``<s>``. The search options map onto
``translate_batch``: ``num_beams`` -> ``beam_size``, ``length_penalty``, ``max_length`` ->
``max_decoding_length``, sampling -> ``sampling_temperature``/``sampling_topk``/``sampling_topp``
(``top_k = 0`` samples from the whole distribution in both; a ``seed`` is refused: CTranslate2's
generators are per thread and seeded once per process). Beam search stops by CTranslate2's rule:
once ``num_beams`` hypotheses are finished (``patience`` 1), which is our ``early_stopping=True``.

Besides the manifest's hashes, the backend refuses a model folder holding a file the manifest
does not list (CTranslate2 reads whatever vocabulary files it finds there) and a vocabulary that
disagrees with the tokenizer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import ctranslate2

from lingolite.search import SearchConfig, SearchError, TokenIds
from lingolite.signatures import model_config
from lingolite.tokenizer import TokenId, TokenizerError
from lingolite.tokenizers import load_tokenizer
from lingolite.utils import loads_json
from runtime.manifest import ArtifactError, Manifest

BACKEND: Final = "ctranslate2"
# Roles of a variant's files -> the names CTranslate2 reads in its model folder.
FILES: Final = {
    "model": "model.bin",
    "config": "config.json",
    "vocabulary": "shared_vocabulary.json",
}
# Manifest precision -> CTranslate2 quantization (the compute type the weights are saved in).
QUANTIZATION: Final = {"fp32": "float32", "int8": "int8"}


def read_vocabulary(path: Path) -> list[str]:
    """The token strings of ``shared_vocabulary.json``, in id order."""
    try:
        tokens = loads_json(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"cannot read the vocabulary {path}: {exc}") from exc
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ArtifactError(f"{path} must hold a JSON list of strings")
    return tokens


def model_folder(manifest: Manifest, precision: str) -> Path:
    """The CTranslate2 model folder of a variant, checked: every role present, all in one folder
    that holds exactly the files the manifest lists."""
    variant = manifest.variant(BACKEND, precision)
    problems = []
    missing = sorted(FILES.keys() - variant.files.keys())
    if missing:
        problems.append(f"names no file for {missing}")
    wrong = sorted(
        f"{role}: {variant.files[role].name}"
        for role, name in FILES.items()
        if role in variant.files and variant.files[role].name != name
    )
    if wrong:
        problems.append(f"files must be named as CTranslate2 reads them ({FILES}), got {wrong}")
    parents = {path.parent for path in variant.files.values()}
    if len(parents) != 1:
        problems.append(f"files must share one folder, got {sorted(map(str, parents))}")
    if problems:
        raise ArtifactError(f"variant {variant.name!r}: " + "; ".join(problems))
    folder = parents.pop()
    if folder.resolve() == manifest.folder.resolve():
        raise ArtifactError(
            f"variant {variant.name!r}: the CTranslate2 files must be in their own sub-folder"
        )
    listed = {path.resolve() for path in variant.files.values()}
    extra = sorted(p.name for p in folder.iterdir() if p.resolve() not in listed)
    if extra:
        raise ArtifactError(
            f"{folder} holds files the manifest does not list for {variant.name!r}: {extra}"
        )
    return folder


class CT2Backend:
    """Runs a manifest's ``ctranslate2`` variant (``fp32`` or ``int8``) on the CPU.

    ``threads`` sets CTranslate2's ``intra_threads`` (None: its default); weights run in the
    precision they were saved in.
    """

    def __init__(self, manifest: Manifest, precision: str = "fp32", threads: int | None = None):
        folder = model_folder(manifest, precision)
        self.config = model_config(manifest.model)
        try:
            tokenizer = load_tokenizer(manifest.tokenizer_dir)
        except TokenizerError as exc:
            raise ArtifactError(f"{manifest.folder}: {exc}") from exc
        self._pieces = read_vocabulary(folder / FILES["vocabulary"])
        problems = []
        if len(self._pieces) != self.config.vocab_size:
            problems.append(
                f"the vocabulary has {len(self._pieces)} tokens, the model has vocab_size "
                f"{self.config.vocab_size}"
            )
        wrong = [
            i
            for i, piece in enumerate(self._pieces[: tokenizer.vocab_size])
            if tokenizer.id_to_piece(TokenId(i)) != piece
        ]
        if wrong:
            problems.append(f"the vocabulary disagrees with the tokenizer at ids {wrong[:10]!r}")
        if len(set(self._pieces)) != len(self._pieces):
            problems.append("the vocabulary has duplicate tokens")
        if problems:
            raise ArtifactError(f"refusing {folder}: " + "; ".join(problems))
        # CTranslate2 speaks token strings: its outputs become our ids through this table.
        self._ids = {piece: TokenId(i) for i, piece in enumerate(self._pieces)}
        self.folder = folder
        self._translator = ctranslate2.Translator(
            str(folder),
            device="cpu",
            compute_type="default",
            intra_threads=threads or 0,
            inter_threads=1,
        )

    @property
    def max_tgt_len(self) -> int:
        return self.config.max_tgt_len

    def translate_ids(self, sources: Sequence[TokenIds], config: SearchConfig) -> list[TokenIds]:
        """Translate source id lists; outputs have no BOS or EOS. ``config.max_length`` counts
        generated tokens without EOS and defaults to ``max_tgt_len``."""
        c = self.config
        config.validate(c.max_tgt_len)
        errors = []
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
        if config.do_sample and config.seed is not None:
            errors.append(
                f"seed {config.seed} cannot be honoured: CTranslate2 samples with per-thread "
                "generators seeded once per process"
            )
        if errors:
            raise SearchError("invalid translation request: " + "; ".join(errors))
        results = self._translator.translate_batch(
            [[self._pieces[t] for t in s] for s in sources],
            beam_size=config.num_beams,
            num_hypotheses=1,
            length_penalty=config.length_penalty,
            max_decoding_length=config.max_length or c.max_tgt_len,
            # Our search may end at once (EOS first) and never truncates the source.
            min_decoding_length=0,
            max_input_length=0,
            sampling_topk=config.top_k if config.do_sample else 1,
            sampling_topp=config.top_p,
            sampling_temperature=config.temperature,
        )
        return [[self._ids[piece] for piece in result.hypotheses[0]] for result in results]
