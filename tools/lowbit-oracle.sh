#!/usr/bin/env bash
# The low-bit formats against llama.cpp (issue 22; results in docs/LLAMACPP.md, "Low-bit formats"). Not
# part of `make test`: it needs a llama.cpp build outside the repository ($LLAMA_CPP, default
# /work/llama.cpp-build).
#   A. Byte identity: one FP32 model whose every K is a whole number of 256-blocks, exported f32, then
#      quantized post-training twice, by bin/quantize --ptq minmax and by llama.cpp's llama-quantize from
#      that f32 file: Q4_K_M (llama.cpp's mixture), Q6_K, Q4_K (llama-quantize --pure Q4_K_S), TQ2_0 and
#      TQ1_0. Every tensor's bytes are compared (tools/gguf-tensors.py).
#   B. Perplexity and greedy tokens: bin/eval vs llama-perplexity, bin/generate vs llama-cli, on our PTQ
#      files and on QAT tq2_0 / tq1_0 exports (bin/train --qat, distilled from the FP32 model).
# Usage: tools/lowbit-oracle.sh [WORKDIR]   (env: STEPS, QAT_STEPS, THREADS)
set -euo pipefail
LLAMA_CPP=${LLAMA_CPP:-/work/llama.cpp-build}
W=${1:-/tmp/qat-lowbit-oracle}
STEPS=${STEPS:-300} QAT_STEPS=${QAT_STEPS:-100} THREADS=${THREADS:-2}
L=$LLAMA_CPP/bin
for t in llama-quantize llama-perplexity llama-cli; do
  [ -x "$L/$t" ] || { echo "lowbit-oracle: error: $L/$t not found (set LLAMA_CPP to a llama.cpp build)" >&2; exit 1; }
done
mkdir -p "$W"
T="--threads $THREADS --quiet --no-plot --cache-dir $W/cache"
PROMPT="The secret of life is"
. "$(dirname "$0")/oracle-common.sh"
# d 256, ffn 768, 8 layers: every K a multiple of 256, and enough layers for Q4_K_M's rule to pick some.
SHAPE="--preset small --dim 256 --ffn 768 --heads 4 --kv-heads 2 --layers 8"

bin/eval --write-val-text "$W/val.txt" > /dev/null
[ -d "$W/fp" ] || bin/train $SHAPE --steps "$STEPS" --out "$W/fp" $T
bin/quantize --model "$W/fp" --scheme f32 --to-gguf "$W/f32.gguf" > /dev/null

echo "A. tensor bytes, bin/quantize --ptq minmax vs llama-quantize (from the same f32 file)"
printf "%-8s %-22s %8s %s\n" scheme llama-quantize tensors result
# ours:[llama-quantize option]:llama.cpp type
for triple in q4_k_m::Q4_K_M q6_k:--pure:Q6_K q4_k:--pure:Q4_K_S tq2_0:--pure:TQ2_0 tq1_0:--pure:TQ1_0; do
  IFS=: read -r s opt type <<< "$triple"
  lq="$opt${opt:+ }$type"
  bin/quantize --model "$W/fp" --scheme "$s" --ptq minmax --to-gguf "$W/$s.gguf" > "$W/quantize-$s.log"
  "$L/llama-quantize" $opt "$W/f32.gguf" "$W/llama-$s.gguf" "$type" > "$W/lq-$s.log" 2>&1
  tools/gguf-tensors.py "$W/$s.gguf" | sort > "$W/tensors-$s.ours"
  tools/gguf-tensors.py "$W/llama-$s.gguf" | sort > "$W/tensors-$s.llama"
  n=$(wc -l < "$W/tensors-$s.ours")
  if cmp -s "$W/tensors-$s.ours" "$W/tensors-$s.llama"; then r="identical"
  else r="DIFFER: $(diff "$W/tensors-$s.ours" "$W/tensors-$s.llama" | grep -c '^<') of ours differ"; fi
  printf "%-8s %-22s %8s %s\n" "$s" "$lq" "$n" "$r"
done

for s in tq2_0 tq1_0; do
  [ -d "$W/qat-$s" ] || bin/train --init "$W/fp" --qat "$s" --distill "$W/fp" --steps "$QAT_STEPS" --out "$W/qat-$s" $T
  bin/quantize --model "$W/qat-$s" --to-gguf "$W/qat-$s.gguf" > /dev/null
done
echo
echo "B. perplexity (llama-perplexity's protocol, context 128) and greedy tokens"
oracle_header
for f in f32 q4_k_m q6_k q4_k tq2_0 tq1_0 qat-tq2_0 qat-tq1_0; do oracle_row "$f"; done
