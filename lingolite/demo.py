"""A short tour of the model: build each preset, run cached greedy decoding, print the shapes.

``python -m lingolite.demo [--size tiny]``
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

from lingolite.config import PRESETS, ModelConfig
from lingolite.generate import EagerBackend
from lingolite.model import LingoLite
from lingolite.search import SearchConfig, generate, pad_batch
from lingolite.utils import set_seed

log = logging.getLogger("lingolite.demo")


def run_demo(size: str, seed: int = 0) -> dict[str, object]:
    """Build ``size`` untrained, encode two random sources and greedy-decode 8 tokens."""
    set_seed(seed)
    config = ModelConfig.from_name(size, dropout=0.0)
    model = LingoLite(config).eval()
    rng = np.random.default_rng(seed)
    sources = [[*rng.integers(4, config.vocab_size, n).tolist(), config.eos_id] for n in (9, 5)]
    src_ids, src_mask = pad_batch(sources, config.pad_id)
    backend = EagerBackend(model)
    memory = backend.encode(src_ids, src_mask)
    cache = backend.init_cache(len(sources))
    out = generate(
        backend, src_ids, src_mask, bos_id=config.bos_id, eos_id=config.eos_id,
        pad_id=config.pad_id, config=SearchConfig(max_length=8),
    )  # fmt: skip
    return {
        "preset": size,
        "parameters": model.num_parameters(),
        "source ids (b, s)": tuple(src_ids.shape),
        "cross K/V (L, b, h_kv, s, d)": tuple(memory.cross_k.shape),
        "self-attention cache (L, b, h_kv, T, d)": tuple(cache[0].shape),
        "greedy tokens": out,
    }


def main(argv: list[str] | None = None, prog: str = "python -m lingolite.demo") -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for name in sorted(PRESETS):
        n = LingoLite(ModelConfig.from_name(name)).num_parameters()
        log.info("preset %-6s %6.1fM parameters at vocab_size 24000", name, n / 1e6)
    for key, value in run_demo(args.size, args.seed).items():
        log.info("%-40s %s", key, value)


if __name__ == "__main__":
    main()
