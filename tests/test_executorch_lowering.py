"""ExecuTorch lowering of small models, apart from tests/test_executorch.py's shared export so
that pytest-xdist can run the two modules side by side: which operators XNNPACK takes, and the
``--mask-dtype int64`` programs of the Android app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from executorch.devtools.backend_debug import get_delegation_info

from export.executorch import edge_program, lower, quantized_copy
from lingolite.generate import EagerBackend
from lingolite.search import SearchConfig, generate
from lingolite.signatures import executorch_signatures
from runtime.executorch_backend import ExecuTorchBackend
from runtime.manifest import ArtifactError, Manifest
from tests.helpers import random_batch, small_model

# Operators that must run inside the XNNPACK delegate: every matmul, softmax, norm reduction and
# masking form. What stays outside works on (s,)/(T,)-sized masks and table rows, the token ids
# (the embedding lookup) or the cross K/V row of a layer.
HEAVY_OPS = {
    "aten_mm_default", "aten_bmm_default", "aten_linear_default", "aten_addmm_default",
    "aten__softmax_default", "aten_mean_dim", "aten_where_self", "aten_amax_default",
    "aten_sum_dim_intlist", "aten_exp_default", "aten_rsqrt_default", "aten_cat_default",
    "torchao_choose_qparams_affine_default", "torchao_quantize_affine_default",
}  # fmt: skip
# Graph plumbing counted by get_delegation_info that is no computation.
PLUMBING = {"getitem", "sym_size", "Total"}


@pytest.mark.parametrize("precision", ["fp32", "8da4w"])
def test_heavy_work_is_delegated_to_xnnpack(precision: str) -> None:
    """``get_delegation_info``: no matmul, softmax, norm or cache update outside XNNPACK, and
    most operators inside it."""
    edge = edge_program(quantized_copy(small_model(), precision))
    for method in ("encode", "decode_step"):
        info = get_delegation_info(edge.exported_program(method).graph_module)
        table = info.get_operator_delegation_dataframe()
        inside = outside = 0
        left = set()
        for op, delegated, non_delegated in table.itertuples(index=False):
            if op in PLUMBING:
                continue
            inside, outside = inside + delegated, outside + non_delegated
            if non_delegated:
                left.add(op)
        assert not left & HEAVY_OPS, (method, left)
        assert inside > outside, (method, inside, outside, left)


def test_int64_mask_program_matches_eager(tmp_path: Path) -> None:
    """``--mask-dtype int64`` (for the Android app): the backend feeds 0/1 masks."""
    model = small_model()
    config = model.config.to_dict()
    (tmp_path / "p.pte").write_bytes(lower(model, "int64"))
    variant = {"backend": "executorch", "precision": "fp32", "files": {"program": "p.pte"},
               "signatures": executorch_signatures(config, "int64")}  # fmt: skip
    manifest = Manifest(tmp_path, {"model": config, "variants": {"executorch-fp32": variant}})
    backend = ExecuTorchBackend(manifest, "fp32", probe=False)
    ids, mask = (t.numpy() for t in random_batch(3, 10))
    eager = EagerBackend(model)
    assert np.abs(backend.encode(ids, mask).cross_k - eager.encode(ids, mask).cross_k).max() < 1e-5
    kwargs: dict[str, Any] = dict(bos_id=1, eos_id=2, pad_id=0, config=SearchConfig(max_length=8))
    assert generate(backend, ids, mask, **kwargs) == generate(eager, ids, mask, **kwargs)
    variant["signatures"] = executorch_signatures(config, "bool")  # the manifest disagrees
    with pytest.raises(ArtifactError, match=r"encode input 'src_mask' is int64 \[1, 24\], "
                                            r"expected bool \[1, 24\]"):  # fmt: skip
        ExecuTorchBackend(manifest, "fp32", probe=False)
