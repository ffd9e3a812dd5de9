#!/usr/bin/env bash
# Regenerates tests/fixtures/kq_golden.bin from llama.cpp's own K-quant reference code (Q4_K, Q6_K).
#   tools/golden/make-kquant-golden.sh LLAMA_CPP_SRC LLAMA_CPP_BUILD
# LLAMA_CPP_SRC: a llama.cpp source tree (the fixture was made from c392e50, 2025-02-20);
# LLAMA_CPP_BUILD: its cmake build directory (holds bin/libggml-base.so). Nothing of llama.cpp is
# committed: the generator is compiled in a temporary directory and only its output is kept.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 LLAMA_CPP_SRC LLAMA_CPP_BUILD" >&2; exit 2; }
src=$(realpath "$1"); build=$(realpath "$2")
lib=$(dirname "$(find "$build" -name 'libggml-base.so' | head -n 1)")
[ -f "$lib/libggml-base.so" ] || { echo "$0: no libggml-base.so under $build" >&2; exit 1; }
here=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
gcc -std=c11 -O1 -I"$src/ggml/include" -I"$src/ggml/src" \
    "$here/tools/golden/kquant_golden.c" -L"$lib" -lggml-base -Wl,-rpath,"$lib" -o "$tmp/gen"
"$tmp/gen" "$here/tests/fixtures/kq_golden.bin"
