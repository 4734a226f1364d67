"""The top-level API: ``from lingolite import Translator``, lazily and without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PROBE = """
import json, sys
import lingolite
after_import = "torch" in sys.modules
from lingolite import Translator
import runtime.translator
print(json.dumps([after_import, "torch" in sys.modules, Translator is runtime.translator.Translator]))
"""


def test_translator_is_exported_lazily_and_torch_free() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout.splitlines()[-1]) == [False, False, True]


def test_the_other_names_still_resolve() -> None:
    import lingolite

    assert {"Translator", "LingoLite", "ModelConfig", "load_pretrained"} <= set(lingolite.__all__)
    from lingolite import ModelConfig, load_pretrained

    assert ModelConfig.__name__ == "ModelConfig" and callable(load_pretrained)
    try:
        lingolite.Nope  # noqa: B018
    except AttributeError as exc:
        assert "no attribute 'Nope'" in str(exc)
    else:
        raise AssertionError("unknown names must raise AttributeError")
