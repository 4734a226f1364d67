"""Fuzzing (hypothesis) of every loader of untrusted files and of the server's request model:
whatever the input, only the project's documented error types come out.

Documented types: ``ArtifactError`` (manifests), ``CheckpointError`` and ``ConfigError``
(checkpoint configs), ``TokenizerError`` (tokenizer folders), ``VocabError`` (SentencePiece
models turned into ``vocab.json``), ``pydantic.ValidationError`` (the request model, a 400), and
for the server: no 5xx answer. Example counts are bounded and derandomized, so the run is short
and repeatable.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from export.vocab import VocabError, vocab_from_model_proto
from lingolite.checkpoint import CheckpointError, read_config
from lingolite.config import ConfigError, ModelConfig
from lingolite.tokenizer import Tokenizer, TokenizerError
from runtime.ctranslate2_backend import read_vocabulary
from runtime.manifest import ArtifactError, check_manifest, load_manifest
from runtime.server import ServerSettings, TranslateRequest, create_app
from tests.helpers import small_config
from tests.test_server import FakeTranslator

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# JSON values, with the awkward ones: huge and negative numbers, NaN/Infinity (Python's json
# accepts them), bools where ints are expected, lone surrogates in strings.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.sampled_from([0, -1, 1, 2, 4, 10**9, 2**63, 10**40])
    | st.floats(allow_nan=True, allow_infinity=True)
    | ANY_TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)


def mutate(base: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with the key at ``path`` replaced by ``value`` (or deleted for
    the sentinel ``...``)."""
    out: dict[str, Any] = json.loads(json.dumps(base))
    node = out
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            return out
        node = node[key]
    if value is ...:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return out


def key_paths(data: Any, prefix: list[str] | None = None) -> list[list[str]]:
    prefix = prefix or []
    if not isinstance(data, dict):
        return []
    out = []
    for key, value in data.items():
        out.append([*prefix, key])
        out += key_paths(value, [*prefix, key])
    return out


@pytest.fixture(scope="module")
def valid_manifest() -> dict[str, Any]:
    config = small_config()
    spec = {"name": "self_k", "dtype": "float32", "shape": [2, "batch", 2, 16, 8]}
    return {
        "format_version": 1,
        "model": config.to_dict(),
        "trained": True,
        "source": "fuzz",
        "directions": ["en-de", "de-en"],
        "tokenizer": {"config": "tokenizer.json", "model": "spm.model", "vocab": "vocab.json",
                      "languages": ["de", "en"], "lang_ids": {"de": 4, "en": 5},
                      "pad_id": 0, "bos_id": 1, "eos_id": 2, "unk_id": 3, "vocab_size": 90},
        "variants": {"onnx-fp32": {"backend": "onnxruntime", "precision": "fp32",
                                   "files": {"encoder": "encoder.onnx"},
                                   "signatures": {"decoder": {"inputs": [spec], "outputs": []}}}},
        "files": {"encoder.onnx": {"sha256": "0" * 64, "bytes": 1}},
    }  # fmt: skip


def test_valid_manifest_passes(valid_manifest: dict[str, Any]) -> None:
    check_manifest(valid_manifest)
    for path, value, needle in [
        (["model", "max_tgt_len"], 4, "dimension 3 is 16 but the model's max_tgt_len is 4"),
        (["format_version"], True, "format_version True is not supported"),
        (["tokenizer", "eos_id"], -5, "tokenizer.eos_id"),
        (["directions"], ["en-xx"], "direction 'en-xx'"),
        (["model", "rope_base"], math.inf, "rope_base must be finite"),
        (["model", "n_heads"], 0, "n_heads must be > 0"),
    ]:
        with pytest.raises(ArtifactError, match=needle):
            check_manifest(mutate(valid_manifest, path, value))


@FUZZ
@given(data=st.data())
def test_fuzzed_manifests_raise_only_artifact_error(
    valid_manifest: dict[str, Any], data: st.DataObject
) -> None:
    paths = key_paths(valid_manifest)
    manifest: Any = valid_manifest
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        manifest = mutate(manifest, path, data.draw(JSON | st.just(...)))
    if data.draw(st.integers(0, 9)) == 0:
        manifest = data.draw(JSON)
    try:
        check_manifest(manifest)
    except ArtifactError as exc:
        assert str(exc)


@FUZZ
@given(data=st.data())
def test_fuzzed_checkpoint_configs_raise_only_checkpoint_error(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    base = {"format_version": 1, "model": small_config().to_dict(), "weights": "model.safetensors"}
    config: Any = base
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(key_paths(base)))
        config = mutate(config, path, data.draw(JSON | st.just(...)))
    folder = tmp_path_factory.mktemp("ckpt")
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    try:
        model_config, _ = read_config(folder)
    except CheckpointError as exc:
        assert str(exc)
    else:
        assert model_config.estimated_parameters() <= 2 * 1024**3


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(list(small_config().to_dict())), SCALARS))
def test_fuzzed_model_configs_raise_only_config_error(fields: dict[str, Any]) -> None:
    try:
        ModelConfig.from_dict({**small_config().to_dict(), **fields})
    except ConfigError as exc:
        assert str(exc)


@FUZZ
@given(data=st.data())
def test_fuzzed_tokenizer_folders_raise_only_tokenizer_error(
    toy_tokenizer: Tokenizer, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    base = toy_tokenizer.config()
    config: Any = base
    for _ in range(data.draw(st.integers(0, 2))):
        config = mutate(config, data.draw(st.sampled_from(key_paths(base))), data.draw(JSON))
    proto = toy_tokenizer.model_proto
    choice = data.draw(st.integers(0, 3))
    if choice == 1:
        proto = proto[: data.draw(st.integers(0, len(proto)))]
    elif choice == 2:
        proto = data.draw(st.binary(max_size=64))
    elif choice == 3:
        at = data.draw(st.integers(0, len(proto) - 1))
        proto = proto[:at] + bytes([proto[at] ^ data.draw(st.integers(1, 255))]) + proto[at + 1 :]
    folder = tmp_path_factory.mktemp("tok")
    (folder / "tokenizer.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "spm.model").write_bytes(proto)
    try:
        Tokenizer.from_pretrained(folder)
    except TokenizerError as exc:
        assert str(exc)


@FUZZ
@given(data=st.data())
def test_fuzzed_sentencepiece_models_raise_only_vocab_error(
    toy_tokenizer: Tokenizer, data: st.DataObject
) -> None:
    proto = toy_tokenizer.model_proto
    if data.draw(st.booleans()):
        proto = proto[: data.draw(st.integers(0, len(proto)))]
    else:
        proto = data.draw(st.binary(max_size=128))
    languages = data.draw(st.lists(ANY_TEXT, max_size=3))
    try:
        vocab_from_model_proto(proto, languages)
    except VocabError as exc:
        assert str(exc)


@FUZZ
@given(payload=JSON)
def test_fuzzed_requests_raise_only_validation_errors(payload: Any) -> None:
    with contextlib.suppress(ValidationError):  # a 400
        TranslateRequest.model_validate(payload)


@functools.cache
def _client() -> TestClient:
    return TestClient(create_app(FakeTranslator(), ServerSettings(rate_limit=None)))


@FUZZ
@given(
    q=ANY_TEXT | st.lists(ANY_TEXT, max_size=3),
    extra=st.dictionaries(st.sampled_from(["beam_size", "max_length", "num_beams"]), SCALARS),
)
def test_fuzzed_texts_never_give_5xx(q: Any, extra: dict[str, Any]) -> None:
    client = _client()
    raw = json.dumps({"q": q, "source": "en", "target": "de", **extra}).encode()
    r = client.post("/translate", content=raw, headers={"content-type": "application/json"})
    assert r.status_code < 500, r.text


# Nesting deep enough for json's C scanner to raise RecursionError (random JSON never gets there).
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("name", "load", "error"),
    [
        ("manifest.json", load_manifest, ArtifactError),
        ("config.json", read_config, CheckpointError),
        ("tokenizer.json", Tokenizer.from_pretrained, TokenizerError),
        (
            "shared_vocabulary.json",
            lambda folder: read_vocabulary(folder / "shared_vocabulary.json"),
            ArtifactError,
        ),
    ],
    ids=["manifest", "checkpoint-config", "tokenizer", "ctranslate2-vocabulary"],
)
def test_deeply_nested_json_is_a_documented_error(
    tmp_path: Path, name: str, load: Any, error: type[Exception]
) -> None:
    (tmp_path / name).write_text(DEEP if name.startswith("shared") else f'{{"a": {DEEP}}}')
    with pytest.raises(error, match=r"nested too deeply|recursion"):
        load(tmp_path)


def test_deeply_nested_request_body_is_400() -> None:
    raw = b'{"q": ' + DEEP.encode() + b', "source": "en", "target": "de"}'
    r = _client().post("/translate", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_request", r.text
    assert "nested too deeply" in r.json()["error"]
