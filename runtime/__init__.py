"""PyTorch-free runtimes for exported LingoLite artifact folders.

``runtime.manifest`` (folder schema and verification), ``runtime.translator`` (text in, text out
over any backend), ``runtime.onnx_backend`` (ONNX Runtime), ``runtime.ctranslate2_backend``
(CTranslate2), ``runtime.translate`` (CLI) and ``runtime.server`` (HTTP) never import torch; only
``runtime.executorch_backend`` does, because ``executorch.runtime`` takes torch tensors. Nothing
here imports ``export``: parity against the eager model is an export stage (``export.parity``),
and ``tests/test_layering.py`` checks both rules.
"""
