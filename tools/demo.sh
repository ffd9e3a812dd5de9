#!/usr/bin/env bash
# make demo: the project's main job, start to finish, on the default fortunes corpus.
#   1. train the `small` model in FP32            (runs/demo/fp32)
#   2. QAT-fine-tune it for q4_0                  (runs/demo/q4_0), and continue the FP32 model for the
#      same steps with the same recipe           (runs/demo/fp32-cont: the reference QAT is compared with)
#   3. val loss: FP32, PTQ (ggml rule, MSE), QAT  (bin/eval), as one table
#   4. export the QAT model to GGUF               (runs/demo/small-q4_0.gguf, llama.cpp can run it)
#   5. generate from the GGUF with the integer kernels
# DEMO_STEPS / DEMO_QAT_STEPS shorten or lengthen it, DEMO_PRESET / DEMO_DATA change the model and the
# corpus (a quick check: DEMO_PRESET=tiny DEMO_STEPS=20 DEMO_QAT_STEPS=5); an existing runs/demo/fp32
# is resumed, not redone.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${DEMO_DIR:-runs/demo}
steps=${DEMO_STEPS:-1000}
qat_steps=${DEMO_QAT_STEPS:-150}
preset=${DEMO_PRESET:-small}
data=()
[ -n "${DEMO_DATA:-}" ] && data=(--data "$DEMO_DATA")
mkdir -p "$out"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1/5 FP32 training of the $preset preset ($steps steps)"
if [ -f "$out/fp32/state.json" ] && grep -q "\"step\": $steps," "$out/fp32/state.json"; then
  echo "(already trained: $out/fp32)"
else
  [ -f "$out/fp32/state.json" ] && resume=--resume || resume=
  bin/train --preset "$preset" --steps "$steps" --out "$out/fp32" "${data[@]}" $resume
fi

# QAT trains Q more steps than the FP32 start had: the fair reference is the FP32 model trained for the
# same Q steps with the same recipe (docs/RESULTS.md's protocol), not the start.
ft=(--init "$out/fp32" --steps "$qat_steps" --lr 5e-4 "${data[@]}")
say "2/5 QAT fine-tuning to q4_0, and the FP32 reference: $qat_steps more steps each from the FP32 model"
bin/train "${ft[@]}" --qat q4_0 --out "$out/q4_0"
bin/train "${ft[@]}" --out "$out/fp32-cont"

say "3/5 validation loss on the val split of ${DEMO_DATA:-the fortunes corpus}, nats/token (lower is better)"
# One eval per row; each measures its checkpoint on the data it was trained on (bin/eval's default).
val_loss() { bin/eval "$@" --json | sed -n 's/.*"val_loss":\([^,]*\),.*/\1/p'; }
row() { printf '| %-44s | %-14s | %8.4f |\n' "$1" "$2" "$3"; }
printf '| %-44s | %-14s | %8s |\n|%s|%s|%s|\n' model steps "val loss" "$(printf -- '-%.0s' {1..46})" \
  "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..10})"
row "FP32 start" "$steps" "$(val_loss --model "$out/fp32")"
row "FP32 reference (continued, same recipe)" "$steps + $qat_steps" "$(val_loss --model "$out/fp32-cont")"
row "PTQ q4_0 of the reference (ggml rule)" "$steps + $qat_steps" "$(val_loss --model "$out/fp32-cont" --ptq q4_0)"
row "PTQ q4_0 of the reference (MSE clipping)" "$steps + $qat_steps" "$(val_loss --model "$out/fp32-cont" --ptq q4_0:mse)"
row "QAT q4_0 (integer path, as served)" "$steps + $qat_steps" "$(val_loss --model "$out/q4_0" --scheme q4_0)"
echo "QAT and the FP32 reference both trained $qat_steps steps from the FP32 start with the same recipe"
echo "(lr 5e-4): QAT is to be compared with the reference and its PTQ rows, not with the start, which"
echo "had $qat_steps steps fewer."

say "4/5 export to GGUF (the QAT model's exact codes and scales)"
bin/quantize --model "$out/q4_0" --to-gguf "$out/$preset-q4_0.gguf" | tail -n 1
bin/eval --model "$out/$preset-q4_0.gguf" "${data[@]}"

say "5/5 generate from the GGUF file with the integer kernels"
bin/generate --model "$out/$preset-q4_0.gguf" --prompt "${DEMO_PROMPT:-The secret of a happy life is}" -n 120 --seed 7
echo
echo "loss curves: $out/fp32/loss.png, $out/q4_0/loss.png, $out/fp32-cont/loss.png"
