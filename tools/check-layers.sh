#!/usr/bin/env bash
# Layering check (DESIGN.md invariant 7): every #include "..." in src/ kernels/ models/ data/ tools/ must point
# at the same layer or one below it:
#   0 base      src/util/error.h, src/core/dtype.h
#   1 kernels   kernels/            (leaves: their own reference spec; only base below them)
#   2 engine    src/                (knows no model, data or tool)
#   3 models    models/, data/
#   4 training  models/train/       (the training application: trainer, evaluation)
#   5 tools     tools/              (mains)
# An upward include prints "file:line: includes <path> (layer A -> layer B)" and fails, unless the line is in
# the debt list (tools/layering-debt.txt: "file include" pairs that issue 16 removes). A debt entry that no
# longer occurs fails too, so the list only shrinks.
set -euo pipefail
cd "$(dirname "$0")/.."
debt=tools/layering-debt.txt
layer() {  # sets L to the layer of path $1 (9: outside the layers, e.g. a system header)
  case $1 in
    src/util/error.h|src/core/dtype.h) L=0 ;;
    kernels/*) L=1 ;;
    models/train/*) L=4 ;;
    src/*) L=2 ;;
    models/*|data/*) L=3 ;;
    tools/*) L=5 ;;
    *) L=9 ;;
  esac
}
names=(base kernels engine models/data training tools)
found=$(mktemp); trap 'rm -f "$found"' EXIT
bad=0
while IFS= read -r hit; do
  file=${hit%%:*}; rest=${hit#*:}; line=${rest%%:*}
  [[ ${rest#*:} =~ \"([^\"]+)\" ]] && inc=${BASH_REMATCH[1]}
  # An include resolves next to the file first, then from the repository root (-I.).
  dir=${file%/*}
  if [[ -f $dir/$inc ]]; then target=$dir/$inc; else target=$inc; fi
  layer "$file"; lf=$L; layer "$target"; lt=$L
  [[ $lt == 9 ]] && continue
  if (( lt > lf )); then
    echo "$file $target" >>"$found"
    if ! grep -qxF "$file $target" "$debt" 2>/dev/null; then
      echo "$file:$line: includes $target (${names[$lf]} -> ${names[$lt]}: upward)"
      bad=1
    fi
  fi
done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"' src kernels models data tools \
           --include='*.h' --include='*.cpp' --include='*.inc' || true)
if [[ -f $debt ]]; then
  while IFS= read -r entry; do
    [[ -z $entry || $entry == \#* ]] && continue
    if ! grep -qxF "$entry" "$found"; then
      echo "$debt: '$entry' no longer occurs: remove it from the list"
      bad=1
    fi
  done <"$debt"
fi
n=$(sort -u "$found" | wc -l)
if (( bad )); then echo "check-layers: FAILED"; exit 1; fi
echo "check-layers: ok ($n known upward includes left in $debt)"
