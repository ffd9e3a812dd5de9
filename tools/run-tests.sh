#!/usr/bin/env bash
# Runs a Catch2 binary and ends with one line "P passed, F failed" (test cases), derived from Catch2's
# own totals, which CI reads to know that tests ran. Exit status: the test binary's.
set -u
bin=$1; shift
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$bin" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# Catch2 v2: "test cases: 12 | 11 passed | 1 failed" or "All tests passed (N assertions in M test cases)"
line=$(grep -E '^(test cases:|All tests passed)' "$log" | tail -n 1)
if [[ $line =~ ^All\ tests\ passed.*in\ ([0-9]+)\ test\ case ]]; then
  passed=${BASH_REMATCH[1]}; failed=0
elif [[ $line =~ test\ cases:\ +([0-9]+)\ \|\ +([0-9]+)\ passed\ \|\ +([0-9]+)\ failed ]]; then
  passed=${BASH_REMATCH[2]}; failed=${BASH_REMATCH[3]}
elif [[ $line =~ test\ cases:\ +([0-9]+)\ \|\ +([0-9]+)\ failed ]]; then
  passed=0; failed=${BASH_REMATCH[2]}
else
  echo "run-tests: could not find Catch2's totals (the test binary crashed?)"
  passed=0; failed=1
  [ "$rc" -eq 0 ] && rc=1
fi
# CI shows the end of the output: name the failed test cases there (Catch2 prints a case's name between
# two lines of 79 dashes, its first line after the first of them, and each failure as "file:line: FAILED:").
if [ "$failed" -gt 0 ]; then
  awk '/^-+$/ && length($0) == 79 { if (!hdr) { getline name; hdr = 1 } else hdr = 0; next }
       /: FAILED:$/ { print "failed: " name " (" $1 ")" }' "$log" | sort -u
fi
echo "$passed passed, $failed failed"
exit "$rc"
