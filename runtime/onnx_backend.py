"""ONNX Runtime backend for :mod:`lingolite.search`: ``encoder.onnx`` + ``decoder.onnx``.

PyTorch-free. The decoder graph is one step of the cache rule of :mod:`lingolite.search`; this
backend only feeds it: ``tokens (b, 1)``, ``pos (1,)``, the encoder's ``Memory`` and the cache
``(self_k, self_v)`` returned by the previous step, zeros at the start.

A variant may also hold ``decoder_grow`` (:data:`lingolite.signatures.GROW_DECODER`), the same
step with the growing-cache rule of :mod:`lingolite.model`: the cache starts with length 0 and
comes back one entry longer from every step, so a step reads and writes the ``t`` positions
decoded so far instead of all ``max_tgt_len`` slots, and beam search reorders only those. Its
cross K/V and cache come and go one tensor per decoder layer (``cross_k_0``, ``past_k_0``, ...):
the backend feeds ``cross_k[i]``, a view of the encoder's output, and keeps the cache as ``2L``
arrays ``(1, b, h_kv, t, d)`` (K of every layer, then V), each a one-layer stack, so the search's
row take (:func:`lingolite.search.take_rows`) applies unchanged. ``cache="auto"`` (the default)
decodes with it when the variant has it in this per-layer form, and with the static ``decoder``
otherwise (exports made before it existed, or with its earlier stacked ``(L, b, ...)`` inputs);
``"static"`` or ``"grow"`` force one.

Before a session is created every graph is checked (:func:`check_external_data`): an
initializer stored as external data must name a file inside the artifact folder, since ONNX
Runtime would otherwise read any file the ``location`` points at.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from lingolite.search import (
    BoolArray,
    Cache,
    FloatArray,
    IntArray,
    Memory,
    SearchError,
    check_source,
    zero_cache,
)
from lingolite.signatures import (
    CACHE_KINDS,
    DECODER_OUTPUTS,
    ENCODER_OUTPUTS,
    GROW_DECODER,
    ONNX_PROGRAMS,
    CacheGeometry,
    grow_decoder_names,
    grow_decoder_signature,
    model_config,
    onnx_signatures,
)
from runtime.manifest import ArtifactError, Manifest, Variant

log = logging.getLogger("runtime.onnx_backend")

BACKEND = "onnxruntime"
# ``cache`` choices of :class:`OnnxBackend`: "auto" or one of CACHE_KINDS.
CACHE_CHOICES = ("auto", *CACHE_KINDS)
_DTYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.BOOL: "bool",
}


def check_external_data(path: Path) -> list[str]:
    """Refuse a graph whose external data lies outside its folder; returns the locations used.

    Reads the graph without its external data and looks at the ``location`` of every
    initializer (including sparse ones and those of subgraphs) stored externally.
    """
    model = onnx.load(str(path), load_external_data=False)
    tensors = [t for graph in _graphs(model.graph) for t in _graph_tensors(graph)]
    locations, problems = [], []
    root = path.parent.resolve()
    for tensor in tensors:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        entries = {e.key: e.value for e in tensor.external_data}
        location = entries.get("location", "")
        target = (root / location).resolve()
        if not location or Path(location).is_absolute() or not target.is_relative_to(root):
            problems.append(
                f"initializer {tensor.name!r} reads external data {location!r}, "
                f"outside the folder {root}"
            )
        elif not target.is_file():
            problems.append(f"initializer {tensor.name!r}: external data {location!r} is missing")
        else:
            locations.append(location)
    if problems:
        raise ArtifactError(f"refusing {path}: " + "; ".join(problems))
    return sorted(set(locations))


def _graphs(graph: onnx.GraphProto) -> list[onnx.GraphProto]:
    found = [graph]
    for node in graph.node:
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                found += _graphs(sub)
    return found


def _graph_tensors(graph: onnx.GraphProto) -> list[onnx.TensorProto]:
    tensors = list(graph.initializer)
    for sparse in graph.sparse_initializer:
        tensors += [sparse.values, sparse.indices]
    for node in graph.node:
        tensors += [attr.t for attr in node.attribute if attr.HasField("t")]
    return tensors


def read_signature(model: onnx.ModelProto) -> dict[str, list[dict[str, Any]]]:
    """TensorSpecs (``runtime/manifest.py``) of a graph's inputs and outputs."""

    def spec(value: onnx.ValueInfoProto) -> dict[str, Any]:
        tensor = value.type.tensor_type
        dims = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in tensor.shape.dim]
        dtype = _DTYPES.get(tensor.elem_type, onnx.TensorProto.DataType.Name(tensor.elem_type))
        return {"name": value.name, "dtype": dtype, "shape": dims}

    return {
        "inputs": [spec(v) for v in model.graph.input],
        "outputs": [spec(v) for v in model.graph.output],
    }


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """The session options of every graph: all graph optimisations, ``threads`` intra-op threads
    (None: one per core), errors-only logging, and constant folding of ``DequantizeLinear``.

    By default ONNX Runtime keeps DequantizeLinear nodes unfolded (for its QDQ fusions); a
    dynamically quantized graph has no QDQ groups for those to find, and
    ``session.disable_quant_qdq`` lets constant folding dequantize constant weights once, at
    load, instead of on every run; its MatMulInteger fusions are unaffected. It matters for int8
    decoders exported before ``export.onnx`` folded the tied output projection into its own
    int8 weight (their float MatMul reads a dequantized, transposed copy of the whole ``V x D``
    embedding; folding it at load made their ``small`` step 1.5x faster); current exports have no
    dequantized weight left but the token embedding's lookup.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or 0
    options.log_severity_level = 3  # errors only
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    return options


def choose_cache(variant: Variant, cache: str, layers: int) -> str:
    """The cache kind (:data:`lingolite.signatures.CACHE_KINDS`) a variant decodes with:
    ``cache`` itself when forced, else ``grow`` when it has a growing-cache decoder whose
    manifest signature has the per-layer names of a ``layers``-layer model. Raises
    :class:`ArtifactError` for a forced ``grow`` the variant lacks or has in the old form."""
    if cache not in CACHE_CHOICES:
        raise ArtifactError(f"ONNX cache {cache!r} is not one of {list(CACHE_CHOICES)}")
    has_grow = GROW_DECODER in variant.files
    recorded = variant.signatures.get(GROW_DECODER, {}).get("inputs", [])
    current = [spec.get("name") for spec in recorded] == list(grow_decoder_names(layers)[0])
    usable = has_grow and current
    if cache == "grow" and not usable:
        why = (
            "takes stacked (L, b, ...) cross K/V and cache, the form before per-layer inputs"
            if has_grow
            else f"is missing ({GROW_DECODER!r} not in its files; exported before it existed?)"
        )
        raise ArtifactError(
            f"variant {variant.name!r}: its growing-cache decoder {why}: re-export it, or "
            "decode with the static cache"
        )
    if cache == "auto":
        if has_grow and not current:
            log.warning(
                "variant %r: its growing-cache decoder takes stacked (L, b, ...) inputs, the form "
                "before per-layer inputs; decoding with the static decoder (slower at batch > 1): "
                "re-export the folder to use the growing one",
                variant.name,
            )
        return "grow" if usable else "static"
    return cache


class OnnxBackend:
    """Runs a manifest's ``onnxruntime`` variant (``fp32``, ``int8``, ``int4``) on the CPU.

    ``threads`` sets ONNX Runtime's intra-op threads (None: its default, one per core).
    ``cache`` picks the decoder (see the module docstring): ``"auto"``, ``"static"`` or
    ``"grow"``; :attr:`cache` says which one runs. Only that decoder's session is created.
    """

    def __init__(
        self,
        manifest: Manifest,
        precision: str = "fp32",
        threads: int | None = None,
        cache: str = "auto",
    ):
        variant = manifest.variant(BACKEND, precision)
        missing = set(ONNX_PROGRAMS) - variant.files.keys()
        if missing:
            raise ArtifactError(f"variant {variant.name!r} names no file for {sorted(missing)}")
        self.variant = variant
        self._config = model_config(manifest.model)
        self.cache = choose_cache(variant, cache, self._config.n_decoder_layers)
        self._max_src_len = int(manifest.model["max_src_len"])
        self._max_tgt_len = int(manifest.model["max_tgt_len"])
        self._geometry = CacheGeometry.of(self._config)
        options = session_options(threads)
        self.sessions: dict[str, Any] = {}
        self._expected = {
            **onnx_signatures(self._config),
            GROW_DECODER: grow_decoder_signature(self._config),
        }
        # The session named "decoder" is the one that decodes, whichever cache it uses.
        self._files = {"encoder": variant.files["encoder"]}
        self._files["decoder"] = variant.files[GROW_DECODER if self.cache == "grow" else "decoder"]
        self._grow_inputs, grow_outputs = grow_decoder_names(self._geometry.layers)
        self._grow_outputs = list(grow_outputs)
        for role, path in self._files.items():
            listed = manifest.hashed_files
            locations = check_external_data(path)
            unlisted = [] if listed is None else [loc for loc in locations if loc not in listed]
            if unlisted:
                raise ArtifactError(
                    f"refusing {path}: it reads external data {unlisted} that the manifest does "
                    "not list (and hash) in 'files'"
                )
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self._check_names(role, session)
            self.sessions[role] = session

    def _check_names(self, role: str, session: Any) -> None:
        """The graph's input and output names and ranks must be those of
        :func:`lingolite.signatures.onnx_signatures` (or
        :func:`~lingolite.signatures.grow_decoder_signature`) for the manifest's model."""
        path = self._files[role]
        role = GROW_DECODER if role == "decoder" and self.cache == "grow" else role
        expected = self._expected[role]
        for kind, found in (("inputs", session.get_inputs()), ("outputs", session.get_outputs())):
            want = [(spec["name"], len(spec["shape"])) for spec in expected[kind]]
            got = [(value.name, len(value.shape)) for value in found]
            if want != got:
                raise ArtifactError(
                    f"{path}: graph {kind} (name, rank) {got} do not match "
                    f"the LingoLite {role} signature {want}"
                )
            # Static dimensions must agree too (the manifest's are checked against its model).
            for spec, value in zip(expected[kind], found, strict=True):
                graph_dims = [d if isinstance(d, int) else None for d in value.shape]
                listed = [d if isinstance(d, int) else None for d in spec["shape"]]
                if len(graph_dims) != len(listed) or any(
                    a is not None and b is not None and a != b
                    for a, b in zip(graph_dims, listed, strict=False)
                ):
                    raise ArtifactError(
                        f"{path}: {spec['name']} has shape {value.shape} in "
                        f"the graph but {spec['shape']} in the manifest"
                    )

    @property
    def max_tgt_len(self) -> int:
        return self._max_tgt_len

    def encode(self, src_ids: IntArray, src_mask: BoolArray) -> Memory:
        check_source(src_ids, src_mask, self._max_src_len)
        src_mask = np.ascontiguousarray(src_mask, dtype=np.bool_)
        feeds = {"src_ids": np.ascontiguousarray(src_ids, dtype=np.int64), "src_mask": src_mask}
        cross_k, cross_v = self.sessions["encoder"].run(list(ENCODER_OUTPUTS), feeds)
        return Memory(src_mask, cross_k, cross_v)

    def init_cache(self, batch: int) -> Cache:
        if self.cache == "grow":
            empty = np.zeros((1, *self._geometry.grow_shape(batch, 0)), dtype=np.float32)
            return (empty,) * (2 * self._geometry.layers)
        return zero_cache(self._config, batch)

    def decode_step(
        self, tokens: IntArray, pos: int, memory: Memory, cache: Cache
    ) -> tuple[FloatArray, Cache]:
        if self.cache == "grow":
            return self._grow_step(tokens, pos, memory, cache)
        feeds = {
            **_step_feeds(tokens, memory),
            "cross_k": np.ascontiguousarray(memory.cross_k),
            "cross_v": np.ascontiguousarray(memory.cross_v),
            "pos": np.array([pos], dtype=np.int64),
            "self_k": np.ascontiguousarray(cache[0]),
            "self_v": np.ascontiguousarray(cache[1]),
        }
        logits, self_k, self_v = self.sessions["decoder"].run(list(DECODER_OUTPUTS), feeds)
        return logits, (self_k, self_v)

    def _grow_step(
        self, tokens: IntArray, pos: int, memory: Memory, cache: Cache
    ) -> tuple[FloatArray, Cache]:
        """The growing-cache rule: the cache holds exactly the ``pos`` positions fed before.

        Every per-layer input is a view (of the encoder's stacked cross K/V, of the cache's
        one-layer stacks): nothing is copied before ONNX Runtime reads it."""
        layers = self._geometry.layers
        if len(cache) != 2 * layers:
            raise SearchError(
                f"the growing cache holds {len(cache)} arrays, expected {2 * layers} "
                "(K then V of every decoder layer); feed the cache init_cache returned"
            )
        length = cache[0].shape[3]
        if length != pos:
            raise SearchError(
                f"the growing cache holds {length} positions but the step is at pos {pos}; "
                "feed the cache returned by the previous step"
            )
        cross_k = np.ascontiguousarray(memory.cross_k)
        cross_v = np.ascontiguousarray(memory.cross_v)
        layered = [*cross_k, *cross_v, *(np.ascontiguousarray(a[0]) for a in cache)]
        values = [*_step_feeds(tokens, memory).values(), *layered]
        feeds = dict(zip(self._grow_inputs, values, strict=True))
        logits, *present = self.sessions["decoder"].run(self._grow_outputs, feeds)
        return logits, tuple(a[None] for a in present)


def _step_feeds(tokens: IntArray, memory: Memory) -> dict[str, np.ndarray]:
    """The first inputs of both decoder graphs, in order: this step's tokens and the mask."""
    return {
        "tokens": np.ascontiguousarray(tokens, dtype=np.int64).reshape(-1, 1),
        "src_mask": np.ascontiguousarray(memory.src_mask),
    }
