#!/usr/bin/env bash
# Regenerates the block fixtures from llama.cpp's own reference code:
#   tests/fixtures/tq_golden.bin (TQ1_0, TQ2_0: tools/golden/ternary_golden.c)
#   tests/fixtures/kq_golden.bin (Q4_K, Q6_K: tools/golden/kquant_golden.c)
#   tools/golden/make-golden.sh LLAMA_CPP_SRC LLAMA_CPP_BUILD
# LLAMA_CPP_SRC: a llama.cpp source tree (the fixtures were made from c392e50, 2025-02-20);
# LLAMA_CPP_BUILD: its cmake build directory (holds bin/libggml-base.so). Nothing of llama.cpp is
# committed: the generators are compiled in a temporary directory and only their output is kept.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 LLAMA_CPP_SRC LLAMA_CPP_BUILD" >&2; exit 2; }
src=$(realpath "$1"); build=$(realpath "$2")
lib=$(dirname "$(find "$build" -name 'libggml-base.so' | head -n 1)")
[ -f "$lib/libggml-base.so" ] || { echo "$0: no libggml-base.so under $build" >&2; exit 1; }
here=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for pair in ternary:tq_golden.bin kquant:kq_golden.bin; do
  gen=${pair%%:*} out=${pair#*:}
  gcc -std=c11 -O1 -I"$here/tools/golden" -I"$src/ggml/include" -I"$src/ggml/src" \
      "$here/tools/golden/${gen}_golden.c" -L"$lib" -lggml-base -Wl,-rpath,"$lib" -o "$tmp/$gen"
  "$tmp/$gen" "$here/tests/fixtures/$out"
done
