"""PyTorch-free runtimes for exported LingoLite artifact folders.

``runtime.manifest`` (folder schema and verification), ``runtime.translator`` (text in, text out
over any backend), ``runtime.onnx_backend`` (ONNX Runtime) and ``runtime.translate`` (CLI) never
import torch; ``runtime.parity`` does, for its eager reference.
"""
