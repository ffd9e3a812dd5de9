#!/usr/bin/env bash
# tools/serve-load.sh MODEL [THREADS] [TOKENS]: aggregate generated tokens/s of bin/serve under 1, 4 and
# 16 concurrent streaming curl clients on loopback (each asks for TOKENS tokens, ignore_eos), and the
# largest batch the server ran. Wall time includes curl's start-up; latency percentiles are not measured
# here. Run from the repository root after `make`.
set -euo pipefail
model=$1; threads=${2:-2}; tokens=${3:-128}
log=$(mktemp)
bin/serve --model "$model" --port 0 --threads "$threads" 2> "$log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "serve: ready" "$log" && break; sleep 0.1; done
port=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/.*://')
echo "| clients | tokens | seconds | aggregate tok/s | largest batch |"
echo "|---|---|---|---|---|"
for n in 1 4 16; do
  t0=$(date +%s.%N)
  kids=()
  for i in $(seq "$n"); do
    curl -sN "localhost:$port/v1/completions" \
      -d "{\"prompt\":\"The cat $i\",\"max_tokens\":$tokens,\"ignore_eos\":true,\"stream\":true,\"seed\":$i}" > /dev/null &
    kids+=($!)
  done
  wait "${kids[@]}"
  t1=$(date +%s.%N)
  batch=$(curl -s "localhost:$port/metrics" | awk '$1 == "qat_serve_batch_size_max" { print $2 }')
  awk -v n="$n" -v k="$tokens" -v t0="$t0" -v t1="$t1" -v b="$batch" \
    'BEGIN { printf "| %d | %d | %.2f | %.0f | %s |\n", n, n * k, t1 - t0, n * k / (t1 - t0), b }'
done
