"""LingoLite: a small multilingual encoder-decoder translation transformer built for export.

The package imports lazily: ``import lingolite.tokenizer`` or ``lingolite.search`` (used by the
PyTorch-free runtimes) never pulls in torch; the model classes load torch on first access.
``from lingolite import Translator`` (text in, text out over an exported artifact folder) is
:class:`runtime.translator.Translator`, imported on first access and PyTorch-free
(``tests/test_api.py`` checks that neither ``import lingolite`` nor ``Translator`` loads torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lingolite.checkpoint import load_pretrained, save_pretrained
    from lingolite.config import ModelConfig
    from lingolite.model import LingoLite
    from lingolite.utils import set_seed
    from runtime.translator import Translator

__all__ = [
    "LingoLite",
    "ModelConfig",
    "Translator",
    "load_pretrained",
    "save_pretrained",
    "set_seed",
]

_WHERE = {
    "LingoLite": "lingolite.model",
    "ModelConfig": "lingolite.config",
    "load_pretrained": "lingolite.checkpoint",
    "save_pretrained": "lingolite.checkpoint",
    "set_seed": "lingolite.utils",
    # The one name from a higher layer: the package is also the user's front door.
    "Translator": "runtime.translator",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'lingolite' has no attribute {name!r}")
