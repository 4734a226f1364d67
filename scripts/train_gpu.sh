#!/usr/bin/env bash
# Train, export and evaluate a LingoLite model within a short GPU lease (9 minutes by default).
#
#   scripts/train_gpu.sh [extra python -m lingolite.train flags]
#
# On a CUDA machine, with no settings, it retrains the Multi30k model (en-de, de-en, en-fr, fr-en)
# at the `small` preset: bf16 autocast, 32k-token batches, a checkpoint and a validation every 500
# steps, training stopped by a time budget (with a last checkpoint and best/) so that the export
# and the evaluation still fit the lease; then
#   python -m export.onnx --checkpoint RUN/best --out RUN/onnx ...   (with its parity gate)
#   python -m lingolite.evaluate --checkpoint RUN/best --out RUN/eval ...
# Settings (environment variables; defaults in brackets):
#   DATA        space-separated --data values [../shared/data/multi30k]
#   PAIRS       directions [en-de,de-en,en-fr,fr-en]
#   OUT         run folder [runs/gpu-$SIZE]; cleared with --force, so use a fresh name to keep one
#   SIZE        preset [small]          DEVICE       cuda | cpu | auto [cuda]
#   MAX_TOKENS  per batch [32768]       BUDGET_MIN   training minutes, setup included [5.5]
#   EPOCHS      upper bound [40]        SAVE_EVERY   steps between checkpoints [500]
#   AMP         1: bf16 autocast [1]    WARMUP       warmup steps [500]
#   EVAL_DATA   folder of the test set [first DATA folder]
#   EVAL_SPLIT  [test_2016_flickr]      EVAL_MAX     sentences per direction [all]
#   BEAMS       [1 4]                   QUANTIZE     export.onnx --quantize [none]
#   THREADS     CPU threads of training, export and evaluation [each tool's default]
#   PYTHON      interpreter [.venv/bin/python if present, else python3]
# The 9 minutes: 5.5 of training (tokenizer and data included), then a last validation and
# checkpoint, the fp32 ONNX export with its parity gate, greedy and beam-4 BLEU of the four
# directions on the GPU; an estimate from the tiny model's CPU timings, not yet timed on a GPU.
# QUANTIZE=both adds int8 graphs and their BLEU gate (500 sentences per direction, on the CPU:
# minutes for `small`), better run after the lease.
# Extra arguments go to lingolite.train after these settings (later flags win), e.g. a CPU smoke
# run like the one tests/test_train_gpu.py makes on the toy corpus:
#   DEVICE=cpu SIZE=tiny AMP=0 BUDGET_MIN=0.2 MAX_TOKENS=1024 scripts/train_gpu.sh --max-steps 4
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
DATA="${DATA:-../shared/data/multi30k}"
PAIRS="${PAIRS:-en-de,de-en,en-fr,fr-en}"
SIZE="${SIZE:-small}"
OUT="${OUT:-runs/gpu-$SIZE}"
DEVICE="${DEVICE:-cuda}"
MAX_TOKENS="${MAX_TOKENS:-32768}"
BUDGET_MIN="${BUDGET_MIN:-5.5}"
EPOCHS="${EPOCHS:-40}"
SAVE_EVERY="${SAVE_EVERY:-500}"
WARMUP="${WARMUP:-500}"
AMP="${AMP:-1}"
read -r -a DATA_DIRS <<<"$DATA"
EVAL_DATA="${EVAL_DATA:-${DATA_DIRS[0]%%,*}}"
EVAL_SPLIT="${EVAL_SPLIT:-test_2016_flickr}"
EVAL_MAX="${EVAL_MAX:-}"
read -r -a BEAMS <<<"${BEAMS:-1 4}"
QUANTIZE="${QUANTIZE:-none}"

train_args=(--pairs "$PAIRS" --size "$SIZE" --out "$OUT" --device "$DEVICE" --force
    --max-tokens "$MAX_TOKENS" --time-budget-min "$BUDGET_MIN" --epochs "$EPOCHS"
    --save-every "$SAVE_EVERY" --eval-every "$SAVE_EVERY" --warmup-steps "$WARMUP")
for d in "${DATA_DIRS[@]}"; do train_args+=(--data "$d"); done
if [[ "$AMP" == 1 ]]; then train_args+=(--amp); fi
eval_args=(--checkpoint "$OUT/best" --data "$EVAL_DATA" --split "$EVAL_SPLIT" --device "$DEVICE"
    --out "$OUT/eval" --force --quiet --beams "${BEAMS[@]}")
if [[ -n "$EVAL_MAX" ]]; then eval_args+=(--max-sentences "$EVAL_MAX"); fi
if [[ -n "${THREADS:-}" ]]; then
    train_args+=(--num-threads "$THREADS")
    eval_args+=(--num-threads "$THREADS")
    export OMP_NUM_THREADS="$THREADS"
fi

start=$SECONDS
echo "== train ($SIZE on $DEVICE, budget $BUDGET_MIN min) -> $OUT" >&2
"$PYTHON" -m lingolite.train "${train_args[@]}" "$@"
echo "== export $OUT/best -> $OUT/onnx ($((SECONDS - start)) s so far)" >&2
"$PYTHON" -m export.onnx --checkpoint "$OUT/best" --out "$OUT/onnx" --force --quiet \
    --data "$EVAL_DATA" --data-split "$EVAL_SPLIT" --quantize "$QUANTIZE"
echo "== evaluate $OUT/best on $EVAL_SPLIT ($((SECONDS - start)) s so far)" >&2
"$PYTHON" -m lingolite.evaluate "${eval_args[@]}"
echo "== done in $((SECONDS - start)) s: $OUT/best, $OUT/onnx, $OUT/eval" >&2
