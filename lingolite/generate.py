"""Eager PyTorch backends for the shared search code in :mod:`lingolite.search`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch

from lingolite.model import LingoLite
from lingolite.search import (
    BoolArray,
    Cache,
    FloatArray,
    IntArray,
    Memory,
    SearchConfig,
    TokenIds,
    check_source,
    generate,
    pad_batch,
)
from lingolite.tokenizer import TokenId


class EagerBackend:
    """Runs :class:`LingoLite` eagerly with its static KV cache (float32, inference mode)."""

    def __init__(self, model: LingoLite) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device

    @property
    def max_tgt_len(self) -> int:
        return self.model.config.max_tgt_len

    def _tensor(self, array: npt.NDArray[np.generic]) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    @torch.inference_mode()
    def encode(self, src_ids: IntArray, src_mask: BoolArray) -> Memory:
        check_source(src_ids, src_mask, self.model.config.max_src_len)
        cross_k, cross_v = self.model.encode(self._tensor(src_ids), self._tensor(src_mask))
        return Memory(src_mask, cross_k.cpu().numpy(), cross_v.cpu().numpy())

    def init_cache(self, batch: int) -> Cache:
        k, v = self.model.empty_cache(batch)
        return k.cpu().numpy(), v.cpu().numpy()

    @torch.inference_mode()
    def decode_step(
        self, tokens: IntArray, pos: int, memory: Memory, cache: Cache
    ) -> tuple[FloatArray, Cache]:
        logits, k, v = self.model.decode_step(
            self._tensor(tokens[:, None]),
            torch.tensor([pos], dtype=torch.int64, device=self.device),
            self._tensor(memory.src_mask),
            self._tensor(memory.cross_k),
            self._tensor(memory.cross_v),
            self._tensor(cache[0]),
            self._tensor(cache[1]),
        )
        return logits.float().cpu().numpy(), (k.cpu().numpy(), v.cpu().numpy())


class RecomputeBackend(EagerBackend):
    """Reference backend without a self-attention cache: every step re-runs the decoder over the
    whole prefix. Its "cache" is the token history ``(1, b, T)``, so the search code reorders it
    by the same rule as a KV cache. Used to prove that cached decoding changes nothing."""

    def init_cache(self, batch: int) -> Cache:
        return (np.zeros((1, batch, self.max_tgt_len), dtype=np.int64),)

    @torch.inference_mode()
    def decode_step(
        self, tokens: IntArray, pos: int, memory: Memory, cache: Cache
    ) -> tuple[FloatArray, Cache]:
        history = cache[0].copy()
        history[0, :, pos] = tokens
        logits = self.model.decode_full(
            self._tensor(history[0, :, : pos + 1]),
            self._tensor(memory.src_mask),
            self._tensor(memory.cross_k),
            self._tensor(memory.cross_v),
        )
        return logits[:, -1].float().cpu().numpy(), (history,)


def translate_ids(
    model: LingoLite, sources: Sequence[Sequence[TokenId]], config: SearchConfig | None = None
) -> list[TokenIds]:
    """Decode source id lists (each ``[<2xx>] + pieces + [eos]``) with the eager model.

    >>> from lingolite.checkpoint import load_pretrained
    >>> from lingolite.tokenizer import Tokenizer
    >>> folder = "pretrained/lingolite-tiny-multi30k"
    >>> model, tok = load_pretrained(folder), Tokenizer.from_pretrained(folder)
    >>> sources = [tok.encode_source("Two dogs play in the snow.", "de")]
    >>> out = translate_ids(model, sources, SearchConfig(num_beams=4))
    >>> tok.decode(out[0])
    'Zwei Hunde spielen im Schnee.'
    """
    c = model.config
    src_ids, src_mask = pad_batch(sources, c.pad_id)
    return generate(
        EagerBackend(model), src_ids, src_mask, bos_id=c.bos_id, eos_id=c.eos_id, pad_id=c.pad_id,
        config=config,
    )  # fmt: skip
