#!/usr/bin/env bash
# The build check of the kernels issue: disassembles the binaries and fails if an instruction that a
# baseline x86-64 CPU cannot run appears outside the kernel symbols allowed to use it:
#   AVX-512 (EVEX encoding, zmm, opmask k0-k7, xmm16-31 / ymm16-31)  only in qat::avx512::, qat::avx512vnni::
#   AVX (VEX encoding: ymm, vpmaddubsw, vfmadd, ...)                 only there and in qat::avx2::, qat::avxvnni::
# Such code anywhere else (an inline function from a shared header compiled with -mavx512f and picked
# by the linker, a stray -march=native) would crash a CPU without the ISA (SIGILL) before dispatch
# could choose another table. The SIMDe builds (qat::*_simde) must stay baseline too.
# Usage: tools/check-isa.sh BINARY...   (make check-isa; run by make test)
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
command -v objdump >/dev/null || { echo "check-isa: objdump not found (Debian package binutils)" >&2; exit 1; }

status=0
for bin in "$@"; do
  # Symbols are matched mangled: _ZN3qat6avx512... is a function of namespace qat::avx512 (a std::
  # template instantiated with a kernel type is not); c++filt demangles the report.
  report=$(objdump -d --no-addresses "$bin" 2>/dev/null | awk '
    # A symbol header: "<name>:". Instruction lines: "\tbytes \tmnemonic operands".
    /^<.*>:$/ { sym = substr($0, 2, length($0) - 3); next }
    /^\t/ {
      n = split($0, f, "\t")
      if (n < 3 || f[3] == "") next             # continuation of a long instruction
      split(f[2], b, " ")
      i = 1
      while (b[i] ~ /^(66|67|f2|f3|2e|3e|26|36|64|65|f0)$/) i++   # legacy prefixes
      evex = b[i] == "62" || f[3] ~ /%zmm|%k[0-7]|%[xy]mm(1[6-9]|2[0-9]|3[01])/
      vex = b[i] == "c4" || b[i] == "c5"
      if (!evex && !vex) next
      zmm_ok = sym ~ /^_ZZ?N3qat(6avx512|10avx512vnni)[0-9]/
      ymm_ok = zmm_ok || sym ~ /^_ZZ?N3qat(4avx2|7avxvnni)[0-9]/
      if ((evex && !zmm_ok) || (vex && !ymm_ok)) {
        key = (evex ? "AVX-512" : "AVX") " in " sym
        if (!(key in seen)) { seen[key] = f[3]; order[++count] = key }
        hits[key]++
      }
    }
    END {
      for (k = 1; k <= count; k++) printf "  %s: %d instruction(s), first: %s\n", order[k], hits[order[k]], seen[order[k]]
    }' | c++filt)
  if [ -n "$report" ]; then
    echo "check-isa: $bin has ISA-specific instructions outside their kernel namespaces:"
    echo "$report" | head -n 40
    status=1
  fi
done
if [ $status -eq 0 ]; then echo "check-isa: $# binaries clean (AVX only in kernels/<isa> namespaces, AVX-512 only in avx512/avx512vnni)"; fi
exit $status
