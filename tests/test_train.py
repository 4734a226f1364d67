"""Training loop: convergence, determinism, exact resume, schedules, outputs and their safety."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import shutil
import statistics
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

import lingolite.train as train_module
from lingolite.checkpoint import load_pretrained
from lingolite.config import ModelConfig
from lingolite.data import build_examples, collate
from lingolite.model import LingoLite
from lingolite.tokenizer import BOS_ID, PAD_ID, Tokenizer
from lingolite.train import (
    LRSchedule,
    TrainConfig,
    TrainError,
    adamw_kernels,
    build_parser,
    clip_gradients,
    cpu_bf16,
    find_checkpoints,
    main,
    resolve_amp,
    token_loss_sum,
    train,
    validation_loss,
)
from lingolite.utils import set_seed

SMALL_MODEL: dict[str, Any] = dict(
    d_model=64, n_heads=4, n_kv_heads=2, n_encoder_layers=2, n_decoder_layers=2, ffn_dim=128
)  # fmt: skip
ALLOWED_SUFFIXES = {".json", ".jsonl", ".safetensors", ".model", ".png"}


def make_config(data: Path, tokenizer: Path | None, out: Path, **overrides: Any) -> TrainConfig:
    """A run of a 2+2-layer d_model 64 model on the toy corpus, a few steps, on CPU."""
    values: dict[str, Any] = dict(
        data=data, pairs="en-de,de-en", out=out, tokenizer=tokenizer, max_src_len=32,
        max_tgt_len=32, max_tokens=256, max_steps=6, warmup_steps=3, lr=3e-3, eval_every=3,
        save_every=3, log_every=2, device="cpu", num_threads=1, model_overrides=SMALL_MODEL,
    )  # fmt: skip
    values.update(overrides)
    return TrainConfig(**values)


def state_of(model: LingoLite) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def finished_run(
    toy_corpus_dir: Path, toy_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> train_module.TrainResult:
    """Six steps with evaluation and checkpoints every three, keeping only the last one."""
    out = tmp_path_factory.mktemp("run") / "out"
    return train(make_config(toy_corpus_dir, toy_tokenizer_dir, out, keep_last=1))


def test_tiny_model_overfits_tiny_corpus(
    toy_corpus_dir: Path, toy_tokenizer_dir: Path, tmp_path: Path
) -> None:
    config = make_config(
        toy_corpus_dir, toy_tokenizer_dir, tmp_path / "out", pairs="en-de", max_steps=100,
        max_tokens=1024, lr=1e-2, warmup_steps=10, label_smoothing=0.0, dropout=0.0,
        eval_every=100, save_every=100, log_every=25,
    )  # fmt: skip
    result = train(config)
    assert len(result.losses) == 100
    assert statistics.mean(result.losses[-5:]) < 0.1 * result.losses[0]


def test_same_seed_gives_identical_loss_curve(
    toy_corpus_dir: Path, toy_tokenizer_dir: Path, tmp_path: Path, finished_run: Any
) -> None:
    again = train(make_config(toy_corpus_dir, toy_tokenizer_dir, tmp_path / "a", keep_last=1))
    assert again.losses == finished_run.losses
    assert_same_tensors(state_of(again.model), state_of(finished_run.model))
    other = train(make_config(toy_corpus_dir, toy_tokenizer_dir, tmp_path / "b", seed=1))
    assert other.losses != finished_run.losses


@pytest.mark.parametrize("adamw_impl", ["auto", "fused"])
def test_resume_continues_exactly_like_an_uninterrupted_run(
    toy_corpus_dir: Path, toy_tokenizer_dir: Path, tmp_path: Path, adamw_impl: str
) -> None:
    # dropout > 0 and the inverse-sqrt schedule, so RNG and scheduler state both matter.
    whole = make_config(toy_corpus_dir, toy_tokenizer_dir, tmp_path / "whole", max_steps=8,
                        save_every=4, eval_every=4, keep_last=0, dropout=0.2,
                        adamw_impl=adamw_impl)  # fmt: skip
    full = train(whole)
    # The "interrupted" run: the same folder as it was after step 4.
    shutil.copytree(tmp_path / "whole", tmp_path / "cut")
    shutil.rmtree(tmp_path / "cut/checkpoints/step-000008")
    stale = tmp_path / "cut/checkpoints/.step-000008.tmp-killed"  # a save cut short
    stale.mkdir()
    resumed = train(dataclasses.replace(whole, out=tmp_path / "cut", resume=True))
    assert resumed.start_step == 4 and resumed.final_step == 8
    assert not stale.exists()
    assert resumed.losses == full.losses[4:]
    assert_same_tensors(state_of(resumed.model), state_of(full.model))
    state = "checkpoints/step-000008/trainer_state.safetensors"
    a, b = load_file(tmp_path / "whole" / state), load_file(tmp_path / "cut" / state)
    assert_same_tensors(a, b)
    steps = [r["step"] for r in read_jsonl(tmp_path / "cut/metrics.jsonl") if r["event"] == "train"]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # no duplicated events

    with pytest.raises(TrainError, match=r"lr: checkpoint 0.003, now 0.001"):
        train(dataclasses.replace(whole, out=tmp_path / "cut", resume=True, lr=1e-3))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_validation_counts_only_real_target_tokens(
    toy_corpus_dir: Path, toy_tokenizer: Tokenizer
) -> None:
    examples = build_examples(toy_tokenizer, toy_corpus_dir, "val", [("en", "de")], 32, 32)
    set_seed(0)
    model = LingoLite(ModelConfig(vocab_size=toy_tokenizer.vocab_size, **SMALL_MODEL))
    val = validation_loss(model, examples, max_tokens=128, pad_id=PAD_ID, bos_id=BOS_ID,
                          device=torch.device("cpu"))  # fmt: skip
    assert val.tokens == sum(len(e.tgt) for e in examples)
    # Padding changes nothing: the same loss one unpadded example at a time.
    model.eval()
    total = 0.0
    with torch.no_grad():
        for example in examples:
            batch = collate([example], PAD_ID, BOS_ID)
            logits = model(batch.src_ids, batch.src_mask, batch.tgt_in)
            total += float(token_loss_sum(logits, batch.tgt_out, PAD_ID, 0.0))
    assert val.loss == pytest.approx(total / val.tokens, rel=1e-5)
    assert val.ppl == pytest.approx(math.exp(val.loss))


def test_token_loss_ignores_padding() -> None:
    logits = torch.randn(2, 3, 7)
    target = torch.tensor([[4, 2, 0], [5, 0, 0]])
    full = token_loss_sum(logits, target, PAD_ID, 0.1)
    manual = sum(
        token_loss_sum(logits[i : i + 1, j : j + 1], target[i : i + 1, j : j + 1], PAD_ID, 0.1)
        for i, j in [(0, 0), (0, 1), (1, 0)]
    )
    assert float(full) == pytest.approx(float(manual), rel=1e-6)


@pytest.mark.parametrize("kind", ["inverse_sqrt", "cosine"])
def test_lr_schedule_warms_up_then_decays(kind: str) -> None:
    schedule = LRSchedule(kind, warmup=10, total=100)
    values = [schedule(step) for step in range(100)]
    assert values[0] == pytest.approx(0.1)
    assert all(a < b for a, b in itertools.pairwise(values[:10]))
    assert max(values) == values[9] == pytest.approx(1.0)
    assert all(a > b for a, b in itertools.pairwise(values[9:]))
    if kind == "inverse_sqrt":
        assert values[39] == pytest.approx(math.sqrt(10 / 40))
    else:
        assert values[54] == pytest.approx(0.5) and values[99] == pytest.approx(0.0)


def test_lr_schedule_drives_the_optimizer(finished_run: Any) -> None:
    lrs = [r["lr"] for r in read_jsonl(finished_run.out / "metrics.jsonl") if r["event"] == "train"]
    schedule = LRSchedule("inverse_sqrt", 3, None)
    assert lrs == [pytest.approx(3e-3 * schedule(step - 1)) for step in (2, 4, 6)]


def test_clip_gradients_scales_only_large_global_norms() -> None:
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])  # global norm 5
    assert float(clip_gradients([a, b], 1.0)) == pytest.approx(5.0)
    norm = torch.cat([a.grad, b.grad]).norm()
    assert float(norm) == pytest.approx(1.0, rel=1e-5)
    assert torch.allclose(a.grad, torch.tensor([0.6, 0.0]), atol=1e-6)  # direction kept
    before = a.grad.clone()
    assert float(clip_gradients([a, b], 10.0)) == pytest.approx(1.0, rel=1e-5)
    assert torch.equal(a.grad, before)
    assert float(clip_gradients([a, b], 0.0)) == pytest.approx(1.0, rel=1e-5)  # 0: measure only


def test_outputs_are_complete_loadable_and_pickle_free(finished_run: Any) -> None:
    out: Path = finished_run.out
    assert {p.name for p in out.iterdir()} == {
        "tokenizer", "checkpoints", "best", "latest", "metrics.jsonl", "curves.png",
    }  # fmt: skip
    checkpoints = find_checkpoints(out)
    assert [p.name for p in checkpoints] == ["step-000006"]  # keep_last=1 removed step 3
    assert (out / "latest").read_text().strip() == "checkpoints/step-000006"
    assert {p.name for p in checkpoints[0].iterdir()} == {
        "config.json", "model.safetensors", "tokenizer.json", "spm.model",
        "trainer_state.json", "trainer_state.safetensors",
    }  # fmt: skip
    assert {p.name for p in (out / "best").iterdir()} == {
        "config.json", "model.safetensors", "tokenizer.json", "spm.model",
    }  # fmt: skip
    for folder in (out / "best", checkpoints[0]):
        model = load_pretrained(folder)
        assert Tokenizer.from_pretrained(folder).vocab_size == model.config.vocab_size
    assert_same_tensors(state_of(load_pretrained(checkpoints[0])), state_of(finished_run.model))
    for path in out.rglob("*"):
        if path.is_file():
            assert path.suffix in ALLOWED_SUFFIXES or path.name == "latest", path
            head = path.read_bytes()[:2]
            assert head[:1] != b"\x80" and head != b"PK", f"{path} looks pickled or zipped"
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = read_jsonl(out / "metrics.jsonl")
    assert [r["event"] for r in records].count("val") == 2
    val = next(r for r in records if r["event"] == "val")
    assert {"step", "epoch", "val_loss", "val_ppl", "val_tokens", "elapsed_s"} <= val.keys()
    train_event = next(r for r in records if r["event"] == "train")
    assert {"lr", "train_loss", "tokens_per_s", "grad_norm"} <= train_event.keys()
    assert finished_run.best_val_loss == min(loss for _, loss in finished_run.val_losses)
    state = json.loads((checkpoints[0] / "trainer_state.json").read_text())
    assert state["step"] == 6 and state["best_val_loss"] == finished_run.best_val_loss
    tensors = load_file(checkpoints[0] / "trainer_state.safetensors")
    assert "rng.torch" in tensors and "opt.embed.weight.exp_avg" in tensors


def test_refuses_non_empty_out_without_resume_or_force(
    toy_corpus_dir: Path, toy_tokenizer_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    config = make_config(toy_corpus_dir, toy_tokenizer_dir, out, max_steps=1)
    with pytest.raises(TrainError, match="not empty; pass --resume"):
        train(config)
    with pytest.raises(TrainError, match="no checkpoint"):
        train(dataclasses.replace(config, resume=True))
    result = train(dataclasses.replace(config, force=True))
    assert result.final_step == 1 and (out / "notes.txt").read_text() == "mine"


def test_failed_save_leaves_no_checkpoint_folder(
    toy_corpus_dir: Path, toy_tokenizer_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(train_module, "write_trainer_state", broken)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        train(make_config(toy_corpus_dir, toy_tokenizer_dir, out, max_steps=3))
    assert list((out / "checkpoints").iterdir()) == []  # no step-000003, no temporary folder
    assert not (out / "latest").exists()


def test_time_budget_stops_with_checkpoint_and_best(
    toy_corpus_dir: Path, toy_tokenizer_dir: Path, tmp_path: Path
) -> None:
    config = make_config(toy_corpus_dir, toy_tokenizer_dir, tmp_path / "out", max_steps=None,
                         time_budget_min=1e-6, eval_every=1000, save_every=1000)  # fmt: skip
    result = train(config)
    assert result.stopped_by == "time_budget" and result.final_step == 1
    assert result.best_dir is not None and (result.best_dir / "model.safetensors").is_file()
    assert result.last_checkpoint == tmp_path / "out/checkpoints/step-000001"


def test_invalid_options_are_reported_together(tmp_path: Path) -> None:
    config = TrainConfig(data=tmp_path, pairs="en-en", out=tmp_path, max_tokens=0, lr=-1.0,
                         schedule="linear", resume=True, force=True)  # fmt: skip
    with pytest.raises(TrainError) as info:
        train(config)
    for fragment in ("max_tokens", "lr must be", "schedule must be", "max_steps, epochs",
                     "resume and force", "into itself"):  # fmt: skip
        assert fragment in str(info.value)


def test_adamw_impl_and_compile_options(tmp_path: Path) -> None:
    default = TrainConfig(data=tmp_path, pairs="en-de", out=tmp_path, max_steps=1)
    assert (default.adamw_impl, default.compile) == ("auto", False)
    bad = dataclasses.replace(default, adamw_impl="turbo")
    assert bad.problems() == [
        "adamw_impl must be one of ['auto', 'for-loop', 'foreach', 'fused'], got 'turbo'"
    ]
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert adamw_kernels("auto", cpu) == {"foreach": False}  # PyTorch's CPU default
    assert adamw_kernels("auto", cuda) == adamw_kernels("fused", cpu) == {"fused": True}
    assert adamw_kernels("foreach", cpu) == {"foreach": True}
    with pytest.raises(TrainError, match="got 'turbo'"):
        adamw_kernels("turbo", cpu)
    args = build_parser().parse_args(["--data", "d", "--pairs", "en-de", "--out", "o",
                                      "--adamw-impl", "foreach", "--compile"])  # fmt: skip
    assert (args.adamw_impl, args.compile) == ("foreach", True)


def test_bf16_autocast_defaults_to_on_where_the_cpu_has_it(tmp_path: Path) -> None:
    """amp None (the default) is bf16 autocast exactly where the CPU has native bf16 (its
    /proc/cpuinfo flags); --amp and --no-amp override it."""
    cpu = torch.device("cpu")
    assert TrainConfig(data=tmp_path, pairs="en-de", out=tmp_path).amp is None
    with_bf16, without = tmp_path / "with", tmp_path / "without"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    if torch.backends.mkldnn.is_available():  # type: ignore[no-untyped-call]
        assert cpu_bf16(with_bf16) == (True, "oneDNN with avx512_bf16")
    assert cpu_bf16(without) == (False, f"no avx512_bf16 or amx_bf16 in {without}")
    native, why = cpu_bf16()
    assert resolve_amp(None, cpu) == (native, f"auto: {why}")
    assert resolve_amp(True, cpu) == (True, "--amp")
    assert resolve_amp(False, cpu) == (False, "--no-amp")
    parse = build_parser().parse_args
    base = ["--data", "d", "--pairs", "en-de", "--out", "o"]
    assert [parse(base + extra).amp for extra in ([], ["--amp"], ["--no-amp"])] == [
        None, True, False,
    ]  # fmt: skip


def test_cli_trains_a_tokenizer_and_refuses_to_overwrite(
    toy_corpus_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cli"
    argv = ["--data", str(toy_corpus_dir), "--pairs", "en-fr", "--out", str(out), "--vocab-size",
            "100", "--max-steps", "2", "--max-tokens", "256", "--max-src-len", "32",
            "--max-tgt-len", "32", "--device", "cpu", "--num-threads", "1"]  # fmt: skip
    assert main(argv) == 0
    tokenizer = Tokenizer.from_pretrained(out / "tokenizer")
    assert tokenizer.vocab_size == 100 and tokenizer.languages == ("en", "fr")
    assert load_pretrained(out / "best").config.name == "tiny"
    assert main(argv) == 2  # non-empty out, no --resume
    assert main([*argv, "--resume", "--max-steps", "3"]) == 0
    assert [p.name for p in find_checkpoints(out)] == ["step-000002", "step-000003"]
