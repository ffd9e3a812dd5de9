#!/usr/bin/env bash
# Issue 20's measurements on an imported model (docs/RESULTS.md, "QAT of an imported model"). Not part
# of `make test`: it needs llama.cpp's llama-quantize ($LLAMA_CPP, default /work/llama.cpp-build).
# One of our FP32 checkpoints is exported f32 and written F16 by llama-quantize (a file qat did not
# write); that file is the pretrained model M. From M, on the same text: PTQ q4_0 (minmax, MSE); an FP
# fine-tune of the same steps without quantization (what the extra training alone gives); QAT q4_0
# without and with distillation from M; data-free QAT (sequences sampled from M, distilled). Embedding
# and output stay q8_0 in every quantized model (the documented default for imported models). Each is
# measured against M on the same windows: loss, perplexity, KL(M || model), same-top-1 rate.
# Usage: tools/import-results.sh CHECKPOINT [WORKDIR]
#   env: DATA (corpus of the fine-tunes and the windows; default: the default corpus), STEPS (300),
#        DATA_FREE (sampled sequences, 2000), WINDOWS (512), THREADS (2)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 CHECKPOINT [WORKDIR]" >&2; exit 2; }
CK=$1 W=${2:-/tmp/qat-import-results}
LLAMA_CPP=${LLAMA_CPP:-/work/llama.cpp-build}
STEPS=${STEPS:-300} DATA_FREE=${DATA_FREE:-2000} WINDOWS=${WINDOWS:-512} THREADS=${THREADS:-2}
[ -x "$LLAMA_CPP/bin/llama-quantize" ] || { echo "import-results: error: $LLAMA_CPP/bin/llama-quantize not found" >&2; exit 1; }
mkdir -p "$W"
D=() && [ -n "${DATA:-}" ] && D=(--data "$DATA")
T=(--threads "$THREADS" --quiet --no-plot --cache-dir "$W/cache")
KEEP=embed=q8_0,lm_head=q8_0
M="$W/model-f16.gguf"
if [ ! -f "$M" ]; then
  bin/quantize --model "$CK" --scheme f32 --to-gguf "$W/model-f32.gguf" > /dev/null
  "$LLAMA_CPP/bin/llama-quantize" "$W/model-f32.gguf" "$M" F16 > "$W/llama-quantize.log" 2>&1
fi
train() {  # DIR ARGS...: a fine-tune of M, kept when it finished before
  local out=$1; shift
  [ -f "$W/$out/state.json" ] && grep -q "\"step\": $STEPS," "$W/$out/state.json" && return
  local t0=$SECONDS
  bin/train --init "$M" --steps "$STEPS" --out "$W/$out" "${T[@]}" "$@" > "$W/$out.log" 2>&1
  echo "import-results: $out trained in $((SECONDS - t0)) s" >&2
}
train ft "${D[@]}"
train qat --qat q4_0 --qat-keep "$KEEP" "${D[@]}"
train qat-kd --qat q4_0 --qat-keep "$KEEP" --distill "$M" "${D[@]}"
train qat-datafree --qat q4_0 --qat-keep "$KEEP" --distill "$M" --data-free "$DATA_FREE"

field() { sed -n "s/.*\"$1\":\([-0-9.eE+naif]*\).*/\1/p"; }
printf "%-22s %10s %10s %10s %10s %12s\n" model val_loss ppl "KL to M" "KL p99" "same top-1"
declare -A LOSS
row() {  # NAME EVAL-ARGS...
  local name=$1; shift
  local j
  # --data always: a model's default text is the one it trained on, and the data-free run's is its sample.
  j=$(bin/eval "$@" --reference "$M" --data "${DATA:-}" --windows "$WINDOWS" --threads "$THREADS" --cache-dir "$W/cache" \
      --json | tail -n 1)
  LOSS[$name]=$(field val_loss <<< "$j")
  printf "%-22s %10.4f %10.3f %10.5f %10.5f %11.2f%%\n" "$name" "${LOSS[$name]}" "$(field ppl <<< "$j")" \
    "$(field kl <<< "$j")" "$(field kl_p99 <<< "$j")" "$(awk -v s="$(field same_top1 <<< "$j")" 'BEGIN { print s * 100 }')"
}
row "M (imported F16)" --model "$M"
row "PTQ q4_0 minmax" --model "$M" --ptq q4_0:minmax --keep "$KEEP"
row "PTQ q4_0 MSE" --model "$M" --ptq q4_0:mse --keep "$KEEP"
row "FP fine-tune" --model "$W/ft"
row "QAT q4_0" --model "$W/qat"
row "QAT q4_0 + distill" --model "$W/qat-kd"
row "QAT q4_0 data-free" --model "$W/qat-datafree"
# Recovered fraction of PTQ's gap to M: (better PTQ - QAT) / (better PTQ - M).
awk -v m="${LOSS["M (imported F16)"]}" -v a="${LOSS["PTQ q4_0 minmax"]}" -v b="${LOSS["PTQ q4_0 MSE"]}" \
    -v q="${LOSS["QAT q4_0"]}" -v k="${LOSS["QAT q4_0 + distill"]}" -v f="${LOSS["QAT q4_0 data-free"]}" 'BEGIN {
  p = a < b ? a : b
  printf "recovered of the better PTQ gap (%.4f): QAT %.0f%%, QAT + distill %.0f%%, data-free %.0f%%\n", p - m,
         100 * (p - q) / (p - m), 100 * (p - k) / (p - m), 100 * (p - f) / (p - m) }'
