"""Text in, text out over any runtime backend: tokenizer + backend + the shared search code.

PyTorch-free. A :class:`Translator` is built from an artifact folder with
:meth:`Translator.from_artifacts` (or from a tokenizer and any
:class:`~lingolite.search.Seq2SeqBackend`); backends are looked up by name in :data:`BACKENDS`,
a dict of factories ``(manifest, precision) -> backend`` whose modules are imported only when
used (``runtime.onnx_backend.OnnxBackend``, ``runtime.executorch_backend.ExecuTorchBackend``).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

from lingolite.search import SearchConfig, Seq2SeqBackend, TokenIds, generate, pad_batch
from lingolite.tokenizer import Tokenizer
from runtime.manifest import ArtifactError, Manifest, load_manifest

log = logging.getLogger(__name__)

# (manifest, precision, threads) -> backend; threads None means the runtime's default.
BackendFactory = Callable[[Manifest, str, int | None], Seq2SeqBackend]


class TranslatorError(ValueError):
    """Invalid translation request; the message names the value and what is allowed."""


def _onnxruntime(manifest: Manifest, precision: str, threads: int | None) -> Seq2SeqBackend:
    from runtime.onnx_backend import OnnxBackend

    return OnnxBackend(manifest, precision, threads=threads)


def _executorch(manifest: Manifest, precision: str, threads: int | None) -> Seq2SeqBackend:
    # ExecuTorch's XNNPACK threadpool is process-wide and sized by the runtime, so ``threads``
    # is not applied per backend.
    module = importlib.import_module("runtime.executorch_backend")
    return cast(Seq2SeqBackend, module.ExecuTorchBackend(manifest, precision))


BACKENDS: dict[str, BackendFactory] = {"onnxruntime": _onnxruntime, "executorch": _executorch}


def create_backend(
    manifest: Manifest, backend: str, precision: str, threads: int | None = None
) -> Seq2SeqBackend:
    """The ``backend`` runtime for the ``precision`` variant of ``manifest``."""
    if backend not in BACKENDS:
        raise TranslatorError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    if threads is not None and threads < 1:
        raise TranslatorError(f"threads must be >= 1, got {threads}")
    return BACKENDS[backend](manifest, precision, threads)


# Precisions with int8 weights, as each exporter names them; ``--int8`` picks the first found.
INT8_PRECISIONS = ("int8", "8da8w")


def quantized_precision(manifest: Manifest, backend: str) -> str:
    """The int8 precision (:data:`INT8_PRECISIONS`) of ``backend`` in ``manifest``."""
    have = {(v.backend, v.precision) for v in manifest.variants.values()}
    for precision in INT8_PRECISIONS:
        if (backend, precision) in have:
            return precision
    raise ArtifactError(
        f"{manifest.folder} has no int8 {backend} variant ({' or '.join(INT8_PRECISIONS)}); "
        f"it has {sorted(f'{b}/{p}' for b, p in have)}"
    )


class Translator:
    """Batched translation of texts with one backend.

    ``max_src_len`` is the model's; longer sources are truncated (with a warning) so that they
    keep the language tag and eos.
    """

    def __init__(self, tokenizer: Tokenizer, backend: Seq2SeqBackend, *, max_src_len: int) -> None:
        self.tokenizer = tokenizer
        self.backend = backend
        self.max_src_len = max_src_len
        self._warned_unknown = False

    @classmethod
    def from_artifacts(
        cls,
        folder: Path | str,
        backend: str = "onnxruntime",
        precision: str = "fp32",
        *,
        threads: int | None = None,
    ) -> Translator:
        """Load, verify (format version, hashes) and open an artifact folder."""
        return cls.from_manifest(load_manifest(folder), backend, precision, threads=threads)

    @classmethod
    def from_manifest(
        cls, manifest: Manifest, backend: str, precision: str, *, threads: int | None = None
    ) -> Translator:
        tokenizer = Tokenizer.from_pretrained(manifest.tokenizer_dir)
        problems = [
            f"{name}_id is {manifest.special_id(name)} in the manifest but "
            f"{getattr(tokenizer, f'{name}_id')} in the tokenizer"
            for name in ("pad", "bos", "eos", "unk")
            if manifest.special_id(name) != getattr(tokenizer, f"{name}_id")
        ]
        if manifest.lang_ids != {lang: tokenizer.lang_id(lang) for lang in tokenizer.languages}:
            problems.append(
                f"language tags {manifest.lang_ids} in the manifest differ from the tokenizer's"
            )
        if problems:
            raise ArtifactError(f"refusing {manifest.folder}: " + "; ".join(problems))
        runtime = create_backend(manifest, backend, precision, threads)
        return cls(tokenizer, runtime, max_src_len=int(manifest.model["max_src_len"]))

    @property
    def languages(self) -> tuple[str, ...]:
        return self.tokenizer.languages

    def translate(
        self,
        texts: Sequence[str],
        src: str,
        tgt: str,
        *,
        num_beams: int = 1,
        max_length: int | None = None,
        batch_size: int = 32,
    ) -> list[str]:
        """Translate ``texts`` from ``src`` into ``tgt``; one output per text, in order.

        Texts are batched by token length (longest first) and put back in order; empty or
        blank texts translate to ``""`` without running the model. ``max_length`` (generated
        tokens) defaults to the model's ``max_tgt_len``.
        """
        self._check_request(texts, src, tgt, batch_size)
        length = self.backend.max_tgt_len if max_length is None else max_length
        config = SearchConfig(max_length=length, num_beams=num_beams)
        config.validate(self.backend.max_tgt_len)
        tok = self.tokenizer
        sources = {i: self._encode(i, text, tgt) for i, text in enumerate(texts) if text.strip()}
        order = sorted(sources, key=lambda i: -len(sources[i]))
        out = [""] * len(texts)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            src_ids, src_mask = pad_batch([sources[i] for i in rows], tok.pad_id)
            hyps = generate(
                self.backend,
                src_ids,
                src_mask,
                bos_id=tok.bos_id,
                eos_id=tok.eos_id,
                pad_id=tok.pad_id,
                config=config,
            )
            for i, ids in zip(rows, hyps, strict=True):
                out[i] = self._decode(ids)
        return out

    def _check_request(self, texts: Sequence[str], src: str, tgt: str, batch_size: int) -> None:
        problems = []
        if isinstance(texts, str):
            problems.append("texts must be a sequence of strings, not one string")
        elif not all(isinstance(t, str) for t in texts):
            problems.append("every text must be a string")
        supported = list(self.languages)
        for role, lang in (("source", src), ("target", tgt)):
            if lang not in self.languages:
                problems.append(f"unknown {role} language {lang!r}; supported: {supported}")
        if src == tgt:
            problems.append(f"source and target language are both {src!r}")
        if batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {batch_size}")
        if problems:
            raise TranslatorError("; ".join(problems))

    def _encode(self, index: int, text: str, tgt: str) -> TokenIds:
        ids = self.tokenizer.encode_source(text, tgt)
        if len(ids) > self.max_src_len:
            log.warning(
                "text %d has %d source tokens; truncated to max_src_len %d",
                index,
                len(ids),
                self.max_src_len,
            )
            ids = self.tokenizer.encode_source(text, tgt, max_len=self.max_src_len)
        return ids

    def _decode(self, ids: TokenIds) -> str:
        vocab = self.tokenizer.vocab_size
        if any(i >= vocab for i in ids):
            # Only a model with more outputs than tokenizer pieces (an untrained export) gets here.
            if not self._warned_unknown:
                log.warning(
                    "the model emitted ids >= the tokenizer's %d pieces (an untrained "
                    "export?); they decode as <unk>",
                    vocab,
                )
                self._warned_unknown = True
            ids = [i if i < vocab else self.tokenizer.unk_id for i in ids]
        return self.tokenizer.decode(ids)
