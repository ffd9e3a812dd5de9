#!/usr/bin/env bash
# Runs libFuzzer targets one after another (2 cores are shared: one process at a time) and prints one
# summary line per target: executions, seconds, exec/s, crashes. Exit status 1 if any target crashed.
#   tools/fuzz.sh SECONDS target...     (targets are bin/fuzz/fuzz_<name>; seeds tests/fuzz/corpus/<name>,
#                                        optional tests/fuzz/<name>.dict and tests/fuzz/<name>.options)
#   FUZZ_RUNS=N tools/fuzz.sh ...      also stops each target after N executions, whichever comes first
# The working corpus (seeds plus what the fuzzer finds) lives in build/fuzz/<name>/corpus so that the
# committed seed corpus stays small; a crashing input is written to build/fuzz/<name>/crash-*, and is
# what to add to tests/fuzz/corpus/<name>/ as a regression seed once fixed.
set -u
secs=$1; shift
status=0
for t in "$@"; do
  work=build/fuzz/$t
  mkdir -p "$work/corpus"
  dict=(); [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  # tests/fuzz/<target>.options: extra libFuzzer flags, e.g. -close_fd_mask=2 for a target whose code
  # under test prints a warning per input (a crash still leaves its input in build/fuzz/<target>/).
  opts=(); [ -f "tests/fuzz/$t.options" ] && read -r -a opts < "tests/fuzz/$t.options"
  [ -n "${FUZZ_RUNS:-}" ] && opts+=(-runs="$FUZZ_RUNS")
  log=$work/last.log
  start=$(date +%s.%N)
  "bin/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/" "${dict[@]}" "${opts[@]}" "$work/corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  end=$(date +%s.%N)
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1)
  execs=${execs:-0}
  crashes=0
  if [ $rc -ne 0 ]; then crashes=1; status=1; tail -n 40 "$log"; fi
  awk -v t="$t" -v n="$execs" -v s0="$start" -v s1="$end" -v c="$crashes" 'BEGIN {
    d = s1 - s0; printf "fuzz %-12s %10d execs  %6.1f s  %8.0f exec/s  crashes %d\n", t, n, d, (d > 0 ? n / d : 0), c }'
done
exit $status
