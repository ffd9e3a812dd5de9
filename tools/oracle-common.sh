# Shared by tools/import-oracle.sh and tools/lowbit-oracle.sh (sourced, not run): one GGUF file against
# llama.cpp. Needs L (llama.cpp's bin directory), W (work directory), THREADS, PROMPT and $W/val.txt.

# The text of a generation as both print it: llama-cli ends with " [end of text]" when the model
# stops, and prints an SPM prompt with the space its first piece decodes to; trailing blank lines dropped.
oracle_texts() { sed -e 's/ \[end of text\]$//' -e '1s/^ //' "$1" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'; }

oracle_header() { printf "%-16s %8s %12s %12s %9s %s\n" file chunks bin/eval llama-ppl gap "greedy 64 tokens"; }

# oracle_row NAME: $W/NAME.gguf scored by bin/eval and llama-perplexity (llama-perplexity's protocol,
# context 128) and generated greedily for 64 tokens by both; one table row.
oracle_row() {
  local f=$1 m="$W/$1.gguf" ours theirs chunks same gap
  ours=$(bin/eval --model "$m" --text "$W/val.txt" --score-second-half --ctx 128 --json --threads "$THREADS" |
         sed 's/.*"ppl":\([0-9.eE+-]*\).*/\1/')
  "$L/llama-perplexity" -m "$m" -f "$W/val.txt" -c 128 -b 128 -t "$THREADS" -ctk f32 -ctv f32 > "$W/ppl-$f.log" 2>&1
  theirs=$(sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$W/ppl-$f.log")
  chunks=$(sed -n 's/.*calculating perplexity over \([0-9]*\) chunks.*/\1/p' "$W/ppl-$f.log")
  bin/generate --model "$m" --prompt "$PROMPT" -n 64 --temp 0 --keep-going --threads "$THREADS" > "$W/gen-$f.ours" 2> /dev/null
  "$L/llama-cli" -m "$m" -p "$PROMPT" -n 64 -no-cnv --temp 0 --ignore-eos -t "$THREADS" < /dev/null > "$W/gen-$f.llama" 2> /dev/null
  same=$(cmp -s <(oracle_texts "$W/gen-$f.ours") <(oracle_texts "$W/gen-$f.llama") && echo equal || echo DIFFER)
  gap=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%+.4f%%", (a / b - 1) * 100 }')
  printf "%-16s %8s %12.4f %12.4f %9s %s\n" "$f" "$chunks" "$ours" "$theirs" "$gap" "$same"
}
