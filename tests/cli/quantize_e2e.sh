#!/usr/bin/env bash
# End-to-end checks of `zeroth quantize` on stories260K from ../shared.
# Usage: quantize_e2e.sh ZEROTH_BINARY SHARED_DIR REPO_DIR CHECK
#   CHECK: errors | train-replay | fisher
# Exits 77 (CTest's skip code) with a message when SHARED_DIR is absent.
set -euo pipefail
zeroth=$1; shared=${ZEROTH_SHARED:-$2}; repo=$3; check=$4
if [ ! -d "$shared/models/stories260K" ]; then
  echo "skipped: $shared is absent (set ZEROTH_SHARED to the shared folder)"
  exit 77
fi
export ZEROTH_SHARED=$shared
S=$shared/models/stories260K
model=("$S/stories260K.bin" --tokenizer "$S/tok512.bin")
sample=$shared/data/tinystories/sample.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }
# expect_error MESSAGE ARGS...: zeroth quantize ARGS fails and says MESSAGE.
expect_error() {
  local msg=$1; shift
  if "$zeroth" quantize "$@" >"$tmp/err.out" 2>&1; then fail "no error for: $*"; fi
  grep -qF -- "$msg" "$tmp/err.out" || { cat "$tmp/err.out"; fail "the error for '$*' does not say '$msg'"; }
}

case "$check" in
  errors)  # each bad input is a clear error, and an existing --out is left as it was
    expect_error "unknown method" "${model[@]}" --out "$tmp/a" --method nf5
    expect_error "use --rank 32 or less" "${model[@]}" --out "$tmp/a" --method lq-lora --rank 64
    expect_error "raise --budget-bits to at least 2.25" "${model[@]}" --out "$tmp/a" --rank 1 --budget-bits 2.1
    expect_error "--fisher needs --calib DATA" "${model[@]}" --out "$tmp/a" --fisher
    expect_error "is only read with --fisher" "${model[@]}" --out "$tmp/a" --calib "$sample"
    expect_error "--fisher applies to --method lq-lora only" "${model[@]}" --out "$tmp/a" --method int8 --fisher \
      --calib "$sample"
    expect_error "no documents found" "${model[@]}" --out "$tmp/a" --fisher --calib /dev/null
    expect_error "--calib-batch-docs 0" "${model[@]}" --out "$tmp/a" --fisher --calib "$sample" --calib-batch-docs 0
    expect_error "apply to --method lq-lora only" "${model[@]}" --out "$tmp/a" --method int8 --rank 4
    [ ! -e "$tmp/a" ] || fail "a failed quantize left $tmp/a behind"
    mkdir "$tmp/b" && echo keep >"$tmp/b/config.json"
    expect_error "already exists" "${model[@]}" --out "$tmp/b" --method int8
    [ "$(cat "$tmp/b/config.json")" = keep ] || fail "an existing --out was overwritten without --force"
    "$zeroth" quantize "${model[@]}" --out "$tmp/b" --method int8 --force >/dev/null 2>&1 || fail "--force failed"
    [ -s "$tmp/b/model.safetensors" ] || fail "--force wrote no model" ;;

  train-replay)  # an LQ-LoRA directory: eval, train from its factors, replay the ledger from it
    "$zeroth" quantize "${model[@]}" --out "$tmp/lq" --method lq-lora --rank 2 --budget-bits 3.5 --json \
      >"$tmp/q.json" 2>"$tmp/q.err" || { cat "$tmp/q.err"; fail "quantize exited $?"; }
    python3 - "$tmp/q.json" <<'PY' || fail "bad report"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["q_bits"] <= r["budget_bits"], "budget exceeded"
assert r["low_rank_bits"] > 0 and abs(r["q_bits_per_param"] - r["q_bits"] / r["quantized_params"]) < 1e-9
for m in r["matrices"]:
    if not m["kept"]:
        e = m["iteration_errors"]
        assert len(e) >= 1 and min(e) == m["error"], m
PY
    "$zeroth" eval -m "$tmp/lq" -d "$sample" >"$tmp/eval.out" 2>&1 || { cat "$tmp/eval.out"; fail "eval of the directory"; }
    grep -q "^tokens: 1804$" "$tmp/eval.out" || { cat "$tmp/eval.out"; fail "eval did not read the tokenizer"; }
    run=(--set model.path="$tmp/lq" --set 'model.tokenizer=""' --set lora.rank=2 --set task.max_length=32
         --set zo.samples=1 --set run.threads=2 --set run.eval_every=0 --set run.steps=12 --set run.hash_every=4
         --set run.snapshot_every=0 --set optimizer.lr=5e-4)
    "$zeroth" train "$repo/configs/stories260k-tinystories.yaml" "${run[@]}" --set run.dir="$tmp/run" \
      >"$tmp/run.out" 2>"$tmp/run.err" || { cat "$tmp/run.err"; fail "train exited $?"; }
    want=$(sed -n 's/.*"final_hash": "\([0-9a-f]*\)".*/\1/p' "$tmp/run/summary.json")
    [ -n "$want" ] || fail "no final_hash"
    "$zeroth" replay --base "$tmp/lq" --ledger "$tmp/run/ledger.zl" --out "$tmp/rebuilt" >"$tmp/replay.out" 2>&1 ||
      { cat "$tmp/replay.out"; fail "replay exited $?"; }
    got=$(sed -n 's/^hash: //p' "$tmp/replay.out")
    [ "$got" = "$want" ] || fail "replayed hash $got differs from the run's $want"
    # A LoRA rank other than the directory's is refused with the fix.
    if "$zeroth" train "$repo/configs/stories260k-tinystories.yaml" "${run[@]}" --set lora.rank=8 \
         --set run.dir="$tmp/run8" >"$tmp/run8.out" 2>&1; then fail "rank 8 on a rank-2 directory trained"; fi
    grep -q "set lora.rank=2" "$tmp/run8.out" || { cat "$tmp/run8.out"; fail "the rank error does not say what to set"; } ;;
  fisher)  # LQ-LoRA + Fisher from the sample's first 4 stories: a report with both errors, a directory that evaluates
    "$zeroth" quantize "${model[@]}" --out "$tmp/fq" --method lq-lora --rank 2 --budget-bits 3.5 --fisher \
      --calib "$sample" --calib-docs 4 --json >"$tmp/q.json" 2>"$tmp/q.err" || { cat "$tmp/q.err"; fail "quantize exited $?"; }
    grep -q "^fisher: 4 documents" "$tmp/q.err" || { cat "$tmp/q.err"; fail "no calibration line"; }
    python3 - "$tmp/q.json" "$tmp/fq/quantize_report.json" <<'PY' || fail "bad report"
import json, sys
r = json.load(open(sys.argv[1]))
assert r == json.load(open(sys.argv[2]))
f = r["fisher"]
assert f["calib_batches"] >= 1 and f["calib_tokens"] > 0 and 0 < f["calib_mean_nll"] < 10, f
assert r["q_bits"] <= r["budget_bits"], "budget exceeded"
for m in r["matrices"]:
    if not m["kept"]:
        # iteration errors are the weighted ones; error/rel_error the plain ones
        assert min(m["iteration_errors"]) == m["fisher_error"] > 0, m
        assert m["error"] > 0 and 0 < m["rel_error"] < 1 and 0 < m["fisher_rel_error"] < 1, m
PY
    "$zeroth" eval -m "$tmp/fq" -d "$sample" --json >"$tmp/eval.json" 2>"$tmp/eval.err" ||
      { cat "$tmp/eval.err"; fail "eval of the directory"; }
    python3 - "$tmp/eval.json" <<'PY' || fail "bad eval"
import json, math, sys
e = json.load(open(sys.argv[1]))
assert e["tokens"] == 1804 and math.isfinite(e["mean_nll"]) and e["mean_nll"] < 3.0, e
PY
    ;;
  *) fail "unknown check $check" ;;
esac
echo "ok: $check"
