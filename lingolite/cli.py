"""The ``lingolite`` command: every user-facing stage as ``lingolite STAGE [options]``.

``lingolite translate ...`` runs exactly ``python -m runtime.translate ...`` (the same ``main``,
called with ``prog="lingolite translate"`` so that ``--help`` shows the command as typed). The
stage's module is imported only when that stage runs, by name: this table is the one place that
names every layer (lingolite -> runtime -> export -> benchmarks), and ``lingolite translate`` or
``lingolite serve`` never load torch, so they work on the base install. A stage whose extra is not
installed says which one to install.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Third-party top-level modules that only the extras install (pyproject.toml).
_EXTRA_MODULES = {
    "torch",
    "torchao",
    "executorch",
    "ctranslate2",
    "onnxscript",
    "safetensors",
    "sacrebleu",
    "matplotlib",
    "httpx",
}


@dataclass(frozen=True)
class Stage:
    """A subcommand: the module whose ``main(argv, prog=...)`` runs it, and the extra it needs."""

    module: str
    help: str
    extra: str | None = None


STAGES: dict[str, Stage] = {
    "train": Stage("lingolite.train", "train a model on line-aligned corpora", "train"),
    "evaluate": Stage("lingolite.evaluate", "BLEU/chrF of a checkpoint on a test set", "train"),
    "average": Stage("lingolite.average", "average the weights of checkpoints", "train"),
    "presets": Stage("lingolite.demo", "the presets' parameter counts and tensor shapes", "train"),
    "lineage": Stage("lingolite.lineage", "append a run's metrics to a model's lineage", "train"),
    "import-marian": Stage(
        "lingolite.import_marian", "import a Hugging Face Marian (OPUS-MT) model", "import"
    ),
    "export-onnx": Stage("export.onnx", "export to ONNX Runtime (fp32/int8)", "export"),
    "export-executorch": Stage("export.executorch", "export to ExecuTorch (XNNPACK)", "executorch"),
    "export-ctranslate2": Stage(
        "export.ctranslate2", "export to CTranslate2", "export,ctranslate2"
    ),
    "export-web": Stage("export.web", "build (or --serve) the browser demo site"),
    "export-vocab": Stage("export.vocab", "write vocab.json for the Java/JS tokenizers"),
    "parity": Stage("export.parity", "re-check an artifact folder against eager PyTorch", "export"),
    "translate": Stage("runtime.translate", "translate text with an artifact folder"),
    "serve": Stage("runtime.server", "LibreTranslate-like HTTP server"),
    "bench": Stage("benchmarks.run", "latency, memory, size and BLEU of every backend", "bench"),
    "bench-server": Stage("benchmarks.server_load", "load-test a running server", "bench"),
    "bench-web": Stage("benchmarks.web", "the browser demo in headless Chromium", "bench"),
    "bench-data": Stage("benchmarks.data_pass", "peak memory of a streamed data pass", "bench"),
    "bench-train": Stage("benchmarks.train_speed", "training tokens/s of the CPU levers", "bench"),
}


def usage() -> str:
    width = max(map(len, STAGES))
    lines = [
        "usage: lingolite STAGE [options]   (lingolite STAGE --help for a stage's options)",
        "",
        "stages (each is also `python -m MODULE`):",
    ]
    lines += [f"  {name:<{width}}  {s.help} ({s.module})" for name, s in STAGES.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lingolite STAGE ARGS...``; the stage's exit status (``None`` counts as 0)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    name, rest = args[0], args[1:]
    stage = STAGES.get(name)
    if stage is None:
        print(f"{usage()}\n\nlingolite: error: unknown stage {name!r}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(stage.module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in _EXTRA_MODULES:
            raise
        extra = stage.extra or "dev"
        print(
            f"lingolite {name}: error: it needs {missing!r}, which the base install leaves out; "
            f"install it with: pip install 'lingolite[{extra}]'",
            file=sys.stderr,
        )
        return 2
    entry: Any = module.main
    status = entry(rest, prog=f"lingolite {name}")
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
