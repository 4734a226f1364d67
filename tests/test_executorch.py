"""ExecuTorch export and runtime: parity with eager, the manifest, and bad programs.

One module-scoped export of the ``tiny`` preset (fp32 and 8da8w, lengths cut to 32 so that
parity runs fast) serves every test; bad-file tests corrupt copies of its program.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from export.common import ExportError, ExportOptions
from export.executorch import (
    PRECISIONS,
    export_executorch,
    main,
    precisions_for,
    program_file,
    program_metadata,
    quantization_problems,
    quantized_copy,
)
from export.executorch_programs import Int8RowEmbedding
from export.parity import reference_model
from lingolite.config import ModelConfig
from lingolite.generate import EagerBackend
from lingolite.search import SearchConfig, SearchError, generate, pad_batch
from lingolite.signatures import executorch_signatures
from lingolite.tokenizer import PAD_ID
from runtime.executorch_backend import (
    ExecuTorchBackend,
    create_backend,
    load_method,
    load_program,
    probe_program,
    signature_problems,
)
from runtime.manifest import ArtifactError, Manifest, load_manifest
from runtime.translator import Translator
from tests.helpers import random_batch, small_model, token_ids

MAX_LEN = 32
EXPORTED = ("fp32", "8da8w")
SOURCES = [
    token_ids(5, 10, 11, 12, 2),
    token_ids(6, 20, 2),
    token_ids(5, 7, 8, 9, 10, 11, 13, 40, 41, 2),
]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny`` exported once (untrained, seed 0) with an fp32 and an 8da8w program."""
    out = tmp_path_factory.mktemp("executorch") / "tiny-executorch"
    options = ExportOptions(out=out, size="tiny", max_src_len=MAX_LEN, max_tgt_len=MAX_LEN)
    return export_executorch(options, EXPORTED)


@pytest.fixture(scope="module")
def manifest(artifacts: Path) -> Manifest:
    return load_manifest(artifacts)


@pytest.fixture(scope="module")
def eager(manifest: Manifest) -> EagerBackend:
    config = ModelConfig.from_dict(manifest.model)
    return EagerBackend(reference_model(config, None, seed=0))


def _copy(artifacts: Path, folder: Path) -> Path:
    shutil.copytree(artifacts, folder)
    return folder


def _flip(path: Path, offset: int, mask: int = 0x80) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------- export and parity


def test_parity_gate_passed_and_is_recorded(artifacts: Path, manifest: Manifest) -> None:
    parity = json.loads((artifacts / "parity.json").read_text())
    assert parity["passed"]
    fp32 = {c["name"]: c for c in parity["variants"]["executorch-fp32"]["checks"]}
    assert fp32["greedy sentences identical to eager"]["value"] == 1.0
    for name in ("encoder max abs diff (random)", "decoder logits max abs diff (random)",
                 "encoder max abs diff (real)", "decoder logits max abs diff (real)"):  # fmt: skip
        assert fp32[name]["gated"] and fp32[name]["value"] <= 1e-4, fp32[name]
    int8 = {c["name"]: c for c in parity["variants"]["executorch-8da8w"]["checks"]}
    # Untrained: agreement is reported, not gated; dynamic int8 still tracks fp32 closely.
    assert int8["greedy token agreement"]["value"] >= 0.5
    assert "parity.json" in manifest.data["files"]


def test_manifest_describes_static_programs(artifacts: Path, manifest: Manifest) -> None:
    assert set(manifest.variants) == {f"executorch-{p}" for p in EXPORTED}
    for precision in EXPORTED:
        entry = manifest.data["variants"][f"executorch-{precision}"]
        name = program_file(precision)
        assert entry["files"] == {"program": name}
        size = (artifacts / name).stat().st_size
        assert entry["bytes"] == size == manifest.data["files"][name]["bytes"]
        assert entry["static_batch"] == 1
        assert entry["signatures"] == executorch_signatures(manifest.model)
    sig = manifest.data["variants"]["executorch-fp32"]["signatures"]
    assert sig["decode_step"]["inputs"][5]["shape"] == [3, 1, 2, MAX_LEN, 48]
    assert sig["encode"]["inputs"][0]["shape"] == [1, MAX_LEN]
    assert "quantization" in manifest.data["variants"]["executorch-8da8w"]
    assert manifest.data["variants"]["executorch-fp32"]["src_len"] == "dynamic"
    # int8 weights: the quantized program is much smaller (the fp32 embedding lookup remains).
    sizes = {p: manifest.data["variants"][f"executorch-{p}"]["bytes"] for p in EXPORTED}
    assert sizes["8da8w"] < 0.7 * sizes["fp32"]


def test_program_carries_its_metadata(artifacts: Path, manifest: Manifest) -> None:
    program = load_program((artifacts / program_file("fp32")).read_bytes(), "fp32")
    # The one definition is what the lowered methods really take and return (dtypes, shapes).
    assert signature_problems(program, executorch_signatures(manifest.model)) == []
    wrong = executorch_signatures(manifest.model | {"n_kv_heads": 1})
    assert signature_problems(program, wrong) != []
    expected = program_metadata(ModelConfig.from_dict(manifest.model))
    assert program.method_names == {"encode", "decode_step", *expected}
    for name, value in expected.items():
        assert list(load_method(program, name, "fp32").execute([])) == [value], name


def test_beam_search_over_rows_matches_eager(manifest: Manifest, eager: EagerBackend) -> None:
    """Batch 3 with ragged sources runs row by row on the batch-1 program, beams reordered."""
    backend = create_backend(manifest, "fp32")
    ids, mask = pad_batch(SOURCES, PAD_ID)
    config = SearchConfig(max_length=12, num_beams=2)
    kwargs: dict[str, Any] = dict(bos_id=1, eos_id=2, pad_id=0, config=config)
    assert generate(backend, ids, mask, **kwargs) == generate(eager, ids, mask, **kwargs)
    memory = backend.encode(ids, mask)
    assert memory.cross_k.shape == eager.encode(ids, mask).cross_k.shape  # cut back to width


def test_quantized_programs_read_an_int8_embedding_table(artifacts: Path,
                                                         manifest: Manifest) -> None:  # fmt: skip
    """The lookup table is int8 with a scale per row: within half a step of fp32 everywhere,
    and the 8da8w program is under a third of the fp32 one (with an fp32 table it was not)."""
    model = small_model()
    table = quantized_copy(model, "8da4w").embed
    assert isinstance(table, Int8RowEmbedding) and table.table.dtype == torch.int8
    ids = torch.arange(model.config.vocab_size).unsqueeze(0)
    error = (table(ids) - model.embed(ids)).abs()
    assert torch.all(error <= table.scale / 2 + 1e-7)
    assert isinstance(model.embed, torch.nn.Embedding)  # the source model is untouched
    sizes = {p: (artifacts / program_file(p)).stat().st_size for p in EXPORTED}
    assert sizes["8da8w"] < sizes["fp32"] / 3, sizes
    variant = manifest.data["variants"]["executorch-8da8w"]
    assert "int8" in variant["quantization"]["embedding"]


def test_dynamic_source_length_matches_padding(artifacts: Path, eager: EagerBackend) -> None:
    """The Android app pads every source to max_src_len; the Python backend passes its width.
    Both run the same program and give the same cross K/V and logits on the real positions."""
    model = eager.model
    c = model.config
    name = program_file("8da8w")
    program = load_program((artifacts / name).read_bytes(), name)
    encode, decode = (load_method(program, m, name) for m in ("encode", "decode_step"))
    ids, mask = random_batch(1, 9)
    padded_ids = torch.zeros(1, c.max_src_len, dtype=torch.int64)
    padded_ids[:, :9] = ids
    padded_mask = torch.zeros(1, c.max_src_len, dtype=torch.bool)
    padded_mask[:, :9] = mask
    short, full = encode.execute([ids, mask]), encode.execute([padded_ids, padded_mask])
    assert tuple(short[0].shape) == (c.n_decoder_layers, 1, c.n_kv_heads, 9, c.head_dim)
    assert tuple(full[0].shape)[3] == c.max_src_len
    for a, b in zip(short, full, strict=True):
        assert torch.allclose(a, b[:, :, :, :9], atol=1e-5)
    cache = model.empty_cache(1)
    step = [torch.tensor([[1]]), torch.tensor([0])]
    logits_short = decode.execute([*step, mask, *short, *cache])[0]
    logits_full = decode.execute([*step, padded_mask, *full, *cache])[0]
    assert torch.allclose(logits_short, logits_full, atol=1e-4)


def test_translator_runs_executorch(artifacts: Path) -> None:
    translator = Translator.from_artifacts(artifacts, backend="executorch", precision="8da8w")
    out = translator.translate(["A man sees a dog.", "Ein Hund."], "en", "de", max_length=5)
    assert len(out) == 2 and all(isinstance(t, str) for t in out)


def test_backend_rejects_bad_requests(manifest: Manifest) -> None:
    backend = ExecuTorchBackend(manifest, "fp32")
    ids, mask = pad_batch(SOURCES, PAD_ID)
    with pytest.raises(SearchError, match="exceeds the model's max_src_len"):
        backend.encode(np.ones((1, MAX_LEN + 1), np.int64), np.ones((1, MAX_LEN + 1), np.bool_))
    with pytest.raises(SearchError, match=r"source ids must be in \[0, 24000\)"):
        backend.encode(ids + 30000, mask)
    memory, cache = backend.encode(ids, mask), backend.init_cache(3)
    with pytest.raises(SearchError, match=rf"pos must be in \[0, {MAX_LEN}\), got {MAX_LEN}"):
        backend.decode_step(np.ones(3, np.int64), MAX_LEN, memory, cache)
    with pytest.raises(SearchError, match=r"tokens must be \(3,\)"):
        backend.decode_step(np.ones(2, np.int64), 0, memory, cache)
    with pytest.raises(ArtifactError, match="no executorch program in precision '8da4w'"):
        ExecuTorchBackend(manifest, "8da4w")


# ---------------------------------------------------------------------- options


def test_options_are_checked_before_any_work(tmp_path: Path) -> None:
    assert precisions_for("all") == list(PRECISIONS)
    with pytest.raises(ExportError, match="--quantize 'int4' is not one of"):
        precisions_for("int4")
    with pytest.raises(ExportError, match="precisions must be among"):
        export_executorch(ExportOptions(out=tmp_path / "x", size="tiny"), ["fp16"])
    odd = ModelConfig.from_name("tiny", d_model=200, n_heads=4, ffn_dim=520)
    assert quantization_problems(odd, ["8da4w"]) == [
        "8da4w needs d_model (200) divisible by the group size 32",
        "8da4w needs ffn_dim (520) divisible by the group size 32",
    ]
    assert quantization_problems(odd, ["fp32", "8da8w"]) == []
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(ExportError, match="is not empty; pass --force"):
        export_executorch(ExportOptions(out=tmp_path / "full", size="tiny"), ["fp32"])
    with pytest.raises(SystemExit) as exc:
        main(["--size", "tiny", "--quantize", "int4"])
    assert exc.value.code == 2


# ---------------------------------------------------------------------- bad files


def test_hash_mismatch_is_refused(artifacts: Path, tmp_path: Path) -> None:
    folder = _copy(artifacts, tmp_path / "copy")
    pte = folder / program_file("fp32")
    _flip(pte, pte.stat().st_size // 2)  # inside the weights: no program check can see it
    with pytest.raises(ArtifactError, match=r"'lingolite_fp32\.pte' does not match its sha256"):
        Translator.from_artifacts(folder, backend="executorch")
    # A manifest read without hash checks: the backend re-checks the bytes it reads.
    with pytest.raises(ArtifactError, match="does not match its sha256"):
        ExecuTorchBackend(load_manifest(folder, verify_hashes=False), "fp32")


def _unverified(folder: Path) -> Manifest:
    """The folder's manifest with no file checks at all (hash verification bypassed)."""
    return Manifest(folder, json.loads((folder / "manifest.json").read_text()))


@pytest.mark.parametrize("damage", ["truncated-half", "truncated-header", "flipped-header",
                                    "flipped-operator-name", "flipped-method-name"])  # fmt: skip
def test_corrupt_program_is_a_clear_error_not_a_crash(
    artifacts: Path, tmp_path: Path, damage: str
) -> None:
    folder = _copy(artifacts, tmp_path / "copy")
    pte = folder / program_file("fp32")
    data = pte.read_bytes()
    if damage == "truncated-half":
        pte.write_bytes(data[: len(data) // 2])
    elif damage == "truncated-header":
        pte.write_bytes(data[:10])
    elif damage == "flipped-header":
        _flip(pte, 4, 0xFF)  # the flatbuffer's file identifier
    elif damage == "flipped-operator-name":
        # Invalid UTF-8 in an operator name makes ExecuTorch abort() while loading a method.
        _flip(pte, data.index(b"aten::embedding") + 2)
    else:
        _flip(pte, data.index(b"decode_step"))
    with pytest.raises(ArtifactError, match="corrupt"):
        ExecuTorchBackend(_unverified(folder), "fp32", verify_hash=False)


def test_probe_reports_a_crash_and_the_parent_survives(artifacts: Path) -> None:
    data = bytearray((artifacts / program_file("fp32")).read_bytes())
    data[data.index(b"aten::embedding") + 2] ^= 0x80
    with pytest.raises(ArtifactError, match=r"crashed ExecuTorch \(SIGABRT\)"):
        probe_program(bytes(data), "flipped.pte")
    # The same bytes loaded in-process would have killed this process: prove it in a child.
    child = subprocess.run(
        [sys.executable, "-c", "import sys; from runtime.executorch_backend import _probe; "
         "_probe(sys.stdin.buffer.read())"],
        input=bytes(data), capture_output=True, check=False, cwd=Path(__file__).parents[1],
    )  # fmt: skip
    assert child.returncode < 0


def test_probe_timeout_and_refusal_are_artifact_errors() -> None:
    with pytest.raises(ArtifactError, match="refused"):
        probe_program(b"not a program", "junk.pte")
    with pytest.raises(ArtifactError, match="did not finish"):
        probe_program(b"other junk", "slow.pte", timeout=0.01)
