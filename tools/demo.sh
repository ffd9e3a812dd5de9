#!/usr/bin/env bash
# make demo: the project's main job, start to finish, on the default fortunes corpus.
#   1. train the `small` model in FP32            (runs/demo/fp32)
#   2. QAT-fine-tune it for q4_0                  (runs/demo/q4_0)
#   3. val loss: FP32, PTQ (ggml rule), QAT       (bin/eval)
#   4. export the QAT model to GGUF               (runs/demo/small-q4_0.gguf, llama.cpp can run it)
#   5. generate from the GGUF with the integer kernels
# DEMO_STEPS / DEMO_QAT_STEPS shorten or lengthen it; an existing runs/demo/fp32 is resumed, not redone.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${DEMO_DIR:-runs/demo}
steps=${DEMO_STEPS:-1000}
qat_steps=${DEMO_QAT_STEPS:-150}
mkdir -p "$out"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1/5 FP32 training of the small preset ($steps steps)"
if [ -f "$out/fp32/state.json" ] && grep -q "\"step\": $steps," "$out/fp32/state.json"; then
  echo "(already trained: $out/fp32)"
else
  [ -f "$out/fp32/state.json" ] && resume=--resume || resume=
  bin/train --preset small --steps "$steps" --out "$out/fp32" $resume
fi

say "2/5 QAT fine-tuning to q4_0 ($qat_steps steps from the FP32 model)"
bin/train --init "$out/fp32" --qat q4_0 --steps "$qat_steps" --lr 5e-4 --out "$out/q4_0"

say "3/5 validation loss: FP32, PTQ, QAT (lower is better)"
bin/eval --model "$out/fp32"
bin/eval --model "$out/fp32" --ptq q4_0
bin/eval --model "$out/fp32" --ptq q4_0:mse
bin/eval --model "$out/q4_0" --scheme q4_0

say "4/5 export to GGUF (the QAT model's exact codes and scales)"
bin/quantize --model "$out/q4_0" --to-gguf "$out/small-q4_0.gguf" | tail -n 1
bin/eval --model "$out/small-q4_0.gguf"

say "5/5 generate from the GGUF file with the integer kernels"
bin/generate --model "$out/small-q4_0.gguf" --prompt "${DEMO_PROMPT:-The secret of a happy life is}" -n 120 --seed 7
echo
echo "loss curves: $out/fp32/loss.png, $out/q4_0/loss.png"
