#!/usr/bin/env bash
# End-to-end checks of the `zeroth` CLI against the goldens in ../shared.
# Usage: shared_golden.sh ZEROTH_BINARY SHARED_DIR CHECK
# Exits 77 (CTest's skip code) with a message when SHARED_DIR is absent.
set -euo pipefail
zeroth=$1; shared=${ZEROTH_SHARED:-$2}; check=$3
if [ ! -d "$shared/models/stories260K" ]; then
  echo "skipped: $shared is absent (set ZEROTH_SHARED to the shared folder)"
  exit 77
fi
S=$shared/models/stories260K
G=$shared/golden/stories260K
out=$(mktemp)
trap 'rm -f "$out"' EXIT
case "$check" in
  generate-bin)   # run.c's greedy text, byte for byte
    "$zeroth" generate --model "$S/stories260K.bin" --tokenizer "$S/tok512.bin" \
      --prompt "Once upon a time" -n 60 --temperature 0 >"$out"
    cmp "$out" "$G/greedy_64.txt" ;;
  generate-gguf)  # the same from the GGUF file, tokenizer from its metadata
    "$zeroth" generate --model "$S/stories260K-f32.gguf" --prompt "Once upon a time" -n 60 --temperature 0 >"$out"
    cmp "$out" "$G/greedy_64.txt" ;;
  eval)           # 1804 predicted tokens, mean NLL 1.2664 on the TinyStories sample
    "$zeroth" eval --model "$S/stories260K.bin" --tokenizer "$S/tok512.bin" \
      --data "$shared/data/tinystories/sample.txt" >"$out"
    cat "$out"
    grep -qx "tokens: 1804" "$out"
    grep -qx "mean NLL: 1.2664" "$out" ;;
  inspect-gguf)
    "$zeroth" inspect "$S/stories260K-f32.gguf" >"$out"
    grep -q "gguf v3" "$out"
    grep -Eq "tokenizer vocab size +512" "$out"
    grep -q "total: 48 tensors, 292,800 parameters" "$out" ;;
  inspect-llama2c-json)
    "$zeroth" inspect --json "$S/stories260K.bin" >"$out"
    grep -q '"parameters": 260032' "$out" ;;
  *) echo "unknown check $check"; exit 2 ;;
esac
echo "ok: $check"
