#!/usr/bin/env bash
# The import oracles against llama.cpp (issue 20; results in docs/LLAMACPP.md, "Imported models"). Not
# part of `make test`: it needs a llama.cpp build outside the repository ($LLAMA_CPP, default
# /work/llama.cpp-build; its vocabularies in $LLAMA_CPP_SRC/models, default /work/llama.cpp-src).
#   A. one of our models exported as f32 GGUF, then written by llama.cpp's own llama-quantize as F16,
#      Q8_0 and Q4_0 (files qat did not write): bin/eval perplexity vs llama-perplexity, greedy tokens;
#   B. QAT q4_0 from the imported F16 file with distillation from it, exported, the same checks;
#   C. a model with llama's SentencePiece tokenizer (bin/train --vocab-from ggml-vocab-llama-spm.gguf),
#      exported f32, F16 by llama-quantize: the same checks with a tokenizer that is not ours.
# Usage: tools/import-oracle.sh [WORKDIR]   (env: STEPS, QAT_STEPS, SPM_STEPS, THREADS)
set -euo pipefail
LLAMA_CPP=${LLAMA_CPP:-/work/llama.cpp-build}
LLAMA_CPP_SRC=${LLAMA_CPP_SRC:-/work/llama.cpp-src}
W=${1:-/tmp/qat-import-oracle}
STEPS=${STEPS:-300} QAT_STEPS=${QAT_STEPS:-60} SPM_STEPS=${SPM_STEPS:-300} THREADS=${THREADS:-2}
L=$LLAMA_CPP/bin
for t in llama-quantize llama-perplexity llama-cli; do
  [ -x "$L/$t" ] || { echo "import-oracle: error: $L/$t not found (set LLAMA_CPP to a llama.cpp build)" >&2; exit 1; }
done
SPM_VOCAB=$LLAMA_CPP_SRC/models/ggml-vocab-llama-spm.gguf
[ -f "$SPM_VOCAB" ] || { echo "import-oracle: error: $SPM_VOCAB not found (set LLAMA_CPP_SRC)" >&2; exit 1; }
mkdir -p "$W"
T="--threads $THREADS --quiet --no-plot --cache-dir $W/cache"
PROMPT="The secret of life is"
. "$(dirname "$0")/oracle-common.sh"

bin/eval --write-val-text "$W/val.txt" > /dev/null
# A: ours, then foreign files written by llama-quantize.
[ -d "$W/fp" ] || bin/train --preset small --steps "$STEPS" --out "$W/fp" $T
bin/quantize --model "$W/fp" --scheme f32 --to-gguf "$W/f32.gguf" > /dev/null
"$L/llama-quantize" "$W/f32.gguf" "$W/f16.gguf" F16 > "$W/lq-f16.log" 2>&1
"$L/llama-quantize" --pure "$W/f32.gguf" "$W/q8_0.gguf" Q8_0 > "$W/lq-q8_0.log" 2>&1
"$L/llama-quantize" --pure "$W/f32.gguf" "$W/q4_0.gguf" Q4_0 > "$W/lq-q4_0.log" 2>&1
# B: QAT from the imported F16 model, distilling from it; embedding and output kept q8_0.
[ -d "$W/qat" ] || bin/train --init "$W/f16.gguf" --qat q4_0 --qat-keep embed=q8_0,lm_head=q8_0 --distill "$W/f16.gguf" \
  --steps "$QAT_STEPS" --out "$W/qat" $T
bin/quantize --model "$W/qat" --to-gguf "$W/qat-q4_0.gguf" > /dev/null
# C: llama's SentencePiece tokenizer.
[ -d "$W/spm" ] || bin/train --preset tiny --ctx 128 --vocab-from "$SPM_VOCAB" --steps "$SPM_STEPS" --batch 8 --out "$W/spm" $T
bin/quantize --model "$W/spm" --scheme f32 --to-gguf "$W/spm-f32.gguf" > /dev/null
"$L/llama-quantize" "$W/spm-f32.gguf" "$W/spm-f16.gguf" F16 > "$W/lq-spm.log" 2>&1

oracle_header
for f in f32 f16 q8_0 q4_0 qat-q4_0 spm-f16; do oracle_row "$f"; done
