#!/usr/bin/env bash
# End-to-end checks of `zeroth train` / `replay` / `export` on stories260K from
# ../shared, with a small, fast recipe (2 members, q = 2, one sample of 32
# tokens per perturbation).
# Usage: train_e2e.sh ZEROTH_BINARY SHARED_DIR REPO_DIR CHECK
#   CHECK: replay | resume | sigint | export | full | bad-config | attack | calibrate | cuda-mixed
# Exits 77 (CTest's skip code) with a message when SHARED_DIR is absent.
set -euo pipefail
zeroth=$1; shared=${ZEROTH_SHARED:-$2}; repo=$3; check=$4
if [ ! -d "$shared/models/stories260K" ]; then
  echo "skipped: $shared is absent (set ZEROTH_SHARED to the shared folder)"
  exit 77
fi
export ZEROTH_SHARED=$shared
S=$shared/models/stories260K
sample=$shared/data/tinystories/sample.txt
recipe=$repo/configs/stories260k-tinystories.yaml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fast=(--set task.max_length=32 --set zo.samples=1 --set zo.q=2 --set run.members=2 --set run.threads=2
      --set run.log_every=50 --set run.hash_every=5 --set task.dev_size=1 --set run.eval_every=0)

fail() { echo "FAILED: $*" >&2; exit 1; }
# train RUN_DIR STEPS [more zeroth train arguments]: a fresh run; its stdout is in RUN_DIR.out.
train() {
  local dir=$1 steps=$2; shift 2
  "$zeroth" train "$recipe" "${fast[@]}" --set run.dir="$dir" --set run.steps="$steps" "$@" \
    >"$dir.out" 2>"$dir.err" || { cat "$dir.err" >&2; fail "zeroth train $dir ($steps steps) exited $?"; }
  grep -q "replica hashes: all equal (2 members" "$dir.out" || { cat "$dir.out"; fail "replicas of $dir disagree"; }
}
# NLL of the merged export and of the base on $tmp/short.txt: $tmp/eval.json, $tmp/base.json.
eval_merged_and_base() {
  "$zeroth" eval --model "$tmp/merged" --tokenizer "$S/tok512.bin" --data "$tmp/short.txt" --json >"$tmp/eval.json"
  "$zeroth" eval --model "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --data "$tmp/short.txt" --json >"$tmp/base.json"
}
# A usable GPU, as zeroth info reports it.
has_gpu() { "$zeroth" info 2>/dev/null | grep -q "^cuda: .*device(s)"; }
final_hash() { sed -n 's/.*"final_hash": "\([0-9a-f]*\)".*/\1/p' "$1/summary.json"; }
final_steps() { sed -n 's/^ *"steps": \([0-9]*\).*/\1/p' "$1/summary.json"; }
# Steps (entries) in a ledger, by replaying it from the base: also proves the
# entries reopen and are consecutive (the ledger refuses anything else).
replay_steps() {
  "$zeroth" replay --base "$S/stories260K.bin" --ledger "$1/ledger.zl" --out "$tmp/replay-$$" \
    | sed -n 's/^replayed \([0-9]*\) steps.*/\1/p'
}

case "$check" in
  replay)  # train 200 steps; replaying the ledger from the base gives the same hash
    train "$tmp/run" 200
    want=$(final_hash "$tmp/run")
    [ -n "$want" ] || fail "no final_hash in summary.json"
    [ "$(final_steps "$tmp/run")" = 200 ] || fail "summary.json does not say 200 steps"
    "$zeroth" replay --base "$S/stories260K.bin" --ledger "$tmp/run/ledger.zl" --out "$tmp/rebuilt" >"$tmp/replay.out"
    cat "$tmp/replay.out"
    grep -q "^replayed 200 steps" "$tmp/replay.out" || fail "replay did not replay 200 steps"
    got=$(sed -n 's/^hash: //p' "$tmp/replay.out")
    [ "$got" = "$want" ] || fail "replayed hash $got differs from the run's final hash $want"
    [ -s "$tmp/rebuilt/adapter.safetensors" ] || fail "replay wrote no adapter.safetensors" ;;

  resume)  # 60 steps at once == 30 steps, then resumed to 60; also after a torn ledger tail
    train "$tmp/a" 60
    want=$(final_hash "$tmp/a")
    train "$tmp/b" 30
    [ "$(final_hash "$tmp/b")" != "$want" ] || fail "30 and 60 steps give the same hash: nothing was trained"
    "$zeroth" train --resume "$tmp/b" --set run.steps=60 >"$tmp/b2.out" 2>"$tmp/b2.err" \
      || { cat "$tmp/b2.err"; fail "resume exited $?"; }
    grep -q "resuming $tmp/b at step 30" "$tmp/b2.err" || { cat "$tmp/b2.err"; fail "did not resume at step 30"; }
    grep -q "replica hashes: all equal" "$tmp/b2.out" || fail "replicas of the resumed run disagree"
    [ "$(final_hash "$tmp/b")" = "$want" ] || fail "resumed hash $(final_hash "$tmp/b") != uninterrupted $want"
    [ "$(final_steps "$tmp/b")" = 60 ] || fail "the resumed run did not end at step 60"
    # A crash mid-append: chop the last few bytes off; the run resumes at the
    # last whole entry (29) and still ends at A's hash.
    train "$tmp/c" 30
    size=$(stat -c %s "$tmp/c/ledger.zl")
    truncate -s $((size - 5)) "$tmp/c/ledger.zl"
    "$zeroth" train --resume "$tmp/c" --set run.steps=60 >"$tmp/c2.out" 2>"$tmp/c2.err" \
      || { cat "$tmp/c2.err"; fail "resume after a torn tail exited $?"; }
    grep -q "dropped a torn tail" "$tmp/c2.err" || { cat "$tmp/c2.err"; fail "the torn tail was not reported"; }
    grep -q "resuming $tmp/c at step 29" "$tmp/c2.err" || { cat "$tmp/c2.err"; fail "did not resume at step 29"; }
    [ "$(final_hash "$tmp/c")" = "$want" ] || fail "hash after a torn tail $(final_hash "$tmp/c") != $want"
    [ "$(replay_steps "$tmp/c")" = 60 ] || fail "the repaired ledger does not replay 60 steps" ;;

  sigint)  # Ctrl-C mid-run: a clean exit 0, an intact ledger that resumes
    dir=$tmp/run
    "$zeroth" train "$recipe" "${fast[@]}" --set run.dir="$dir" --set run.steps=1000000 \
      >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    # Wait (bounded) until steps are being committed, then interrupt.
    for _ in $(seq 300); do
      [ -f "$dir/metrics.jsonl" ] && [ "$(grep -c '"event":"step"' "$dir/metrics.jsonl")" -ge 20 ] && break
      kill -0 "$pid" 2>/dev/null || { cat "$tmp/err"; fail "the run ended before it was interrupted"; }
      sleep 0.1
    done
    kill -INT "$pid"
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fail "still running 30 s after SIGINT"; fi
    rc=0; wait "$pid" || rc=$?
    [ "$rc" = 0 ] || { cat "$tmp/err"; fail "exit code $rc after SIGINT (wanted 0)"; }
    grep -q "stopping after step" "$tmp/err" || { cat "$tmp/err"; fail "no 'stopping after step' message"; }
    grep -q "replica hashes: all equal" "$tmp/out" || fail "replicas disagree after SIGINT"
    n=$(final_steps "$dir")
    [ -n "$n" ] && [ "$n" -ge 20 ] || fail "summary.json says $n steps"
    [ "$(replay_steps "$dir")" = "$n" ] || fail "the ledger does not hold the $n steps the run reported"
    stopped_hash=$(final_hash "$dir")
    # Resume for 3 more steps: the ledger reopens and continues consecutively.
    "$zeroth" train --resume "$dir" --set run.steps=$((n + 3)) >"$tmp/out2" 2>"$tmp/err2" \
      || { cat "$tmp/err2"; fail "resume after SIGINT exited $?"; }
    grep -q "resuming $dir at step $n" "$tmp/err2" || { cat "$tmp/err2"; fail "did not resume at step $n"; }
    [ "$(replay_steps "$dir")" = $((n + 3)) ] || fail "the resumed ledger does not hold $((n + 3)) steps"
    [ "$(final_hash "$dir")" != "$stopped_hash" ] || fail "the resumed steps did not change θ" ;;

  export)  # PEFT adapter names/shapes/config; merged model loads and evaluates like the run's test loss
    # The test split: the first 60 characters of each sample story, so no
    # document is cut at task.max_length = 64 (at most one token per byte, plus
    # BOS) and the run's own test loss is the NLL `zeroth eval` computes on the
    # merged model.
    python3 - "$sample" "$tmp/short.txt" <<'EOF'
import sys
docs = [d.strip()[:60] for d in open(sys.argv[1], encoding="utf-8").read().split("<|endoftext|>") if d.strip()]
open(sys.argv[2], "w", encoding="utf-8").write("<|endoftext|>".join(docs))
EOF
    train "$tmp/run" 30 --set task.max_length=64 --set task.test="$tmp/short.txt"
    "$zeroth" export "$tmp/run" --peft "$tmp/peft" --merged "$tmp/merged" >"$tmp/export.out"
    "$zeroth" inspect --json "$tmp/peft/adapter_model.safetensors" >"$tmp/inspect.json"
    python3 - "$tmp/inspect.json" "$tmp/peft/adapter_config.json" <<'EOF'
import json, sys
info = json.load(open(sys.argv[1]))
cfg = json.load(open(sys.argv[2]))
tensors = {t["name"]: t["shape"] for t in info["tensors"]}
# stories260K: dim 64, 8 heads, 4 KV heads (kv dim 32), 5 layers; LoRA r 8 on q, v.
want = {}
for l in range(5):
    p = f"base_model.model.model.layers.{l}.self_attn."
    want[p + "q_proj.lora_A.weight"] = [8, 64]
    want[p + "q_proj.lora_B.weight"] = [64, 8]
    want[p + "v_proj.lora_A.weight"] = [8, 64]
    want[p + "v_proj.lora_B.weight"] = [32, 8]
assert tensors == want, f"tensors {tensors}\nwanted {want}"
assert cfg["r"] == 8 and cfg["lora_alpha"] == 16, cfg
assert sorted(cfg["target_modules"]) == ["q_proj", "v_proj"], cfg
assert cfg["peft_type"] == "LORA", cfg
print("peft adapter: ok")
EOF
    eval_merged_and_base
    python3 - "$tmp/eval.json" "$tmp/base.json" "$tmp/run/summary.json" <<'EOF'
import json, sys
ev, base = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
summary = json.load(open(sys.argv[3]))
test = summary["test_after"]["loss"]
print(f"merged NLL {ev['mean_nll']:.5f}, the run's test loss {test:.5f}, the base's NLL {base['mean_nll']:.5f}")
assert ev["documents"] == 5 and summary["test_after"]["examples"] == 5, (ev, summary)
assert abs(ev["mean_nll"] - test) < 1e-3, (ev["mean_nll"], test)
assert abs(ev["mean_nll"] - base["mean_nll"]) > 3e-3, "the merged model equals the base: training changed nothing"
EOF
    # Zero steps: the adapter is B = 0, so the merged model is the base exactly.
    train "$tmp/zero" 0
    "$zeroth" export "$tmp/zero" --merged "$tmp/merged0" >/dev/null
    "$zeroth" eval --model "$tmp/merged0" --tokenizer "$S/tok512.bin" --data "$sample" >"$tmp/eval0.out"
    grep -qx "mean NLL: 1.2664" "$tmp/eval0.out" || { cat "$tmp/eval0.out"; fail "the 0-step merge is not the base"; } ;;

  full)  # trainable.full (the embedding = the tied output, every projection): replay, snapshots, merged export
    python3 - "$sample" "$tmp/short.txt" <<'EOF'
import sys
docs = [d.strip()[:60] for d in open(sys.argv[1], encoding="utf-8").read().split("<|endoftext|>") if d.strip()]
open(sys.argv[2], "w", encoding="utf-8").write("<|endoftext|>".join(docs))
EOF
    full=(--set trainable.full=true --set optimizer.lr=1e-4 --set task.max_length=64 --set task.test="$tmp/short.txt"
          --set run.snapshot_every=10)
    train "$tmp/run" 30 "${full[@]}"
    want=$(final_hash "$tmp/run")
    "$zeroth" replay --base "$S/stories260K.bin" --ledger "$tmp/run/ledger.zl" --out "$tmp/rebuilt" >"$tmp/replay.out"
    got=$(sed -n 's/^hash: //p' "$tmp/replay.out")
    [ "$got" = "$want" ] || { cat "$tmp/replay.out"; fail "replayed hash $got differs from the run's $want"; }
    "$zeroth" inspect --json "$tmp/rebuilt/adapter.safetensors" >"$tmp/rebuilt.json"
    "$zeroth" inspect --json "$tmp/run/snapshots/step-00000030.safetensors" >"$tmp/snap.json"
    python3 - "$tmp/rebuilt.json" "$tmp/snap.json" <<'EOF'
import json, sys
for path in sys.argv[1:]:
    tensors = {t["name"]: t["shape"] for t in json.load(open(path))["tensors"]}
    # stories260K: vocab 512, dim 64, tied output (so no "output" tensor), 5 layers of 7 matrices.
    assert tensors.get("tok_embeddings") == [512, 64], (path, tensors.get("tok_embeddings"))
    assert "output" not in tensors, path
    assert len([n for n in tensors if n.endswith(".weight")]) == 35, (path, sorted(tensors))
print("full trainable set: ok")
EOF
    rc=0; "$zeroth" export "$tmp/run" --peft "$tmp/peft" >/dev/null 2>"$tmp/peft.err" || rc=$?
    [ "$rc" != 0 ] && grep -q "every weight" "$tmp/peft.err" || fail "export --peft of a full run was accepted"
    "$zeroth" export "$tmp/run" --merged "$tmp/merged" >/dev/null
    train "$tmp/zero" 0 "${full[@]}"
    "$zeroth" export "$tmp/zero" --merged "$tmp/merged0" >/dev/null
    # The merged embedding is the trained one: it differs from the 0-step export (the base's).
    python3 - "$tmp/merged/model.safetensors" "$tmp/merged0/model.safetensors" <<'EOF'
import json, struct, sys
def tensor(path, name):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        a, b = json.loads(f.read(n))[name]["data_offsets"]
        f.seek(8 + n + a)
        return f.read(b - a)
e1, e0 = (tensor(p, "model.embed_tokens.weight") for p in sys.argv[1:])
assert len(e1) == 512 * 64 * 4 and e1 != e0, "the merged embedding is the base's"
print("merged embedding: trained")
EOF
    eval_merged_and_base
    python3 - "$tmp/eval.json" "$tmp/base.json" "$tmp/run/summary.json" <<'EOF'
import json, sys
ev, base = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
test = json.load(open(sys.argv[3]))["test_after"]["loss"]
print(f"merged NLL {ev['mean_nll']:.5f}, the run's test loss {test:.5f}, the base's NLL {base['mean_nll']:.5f}")
assert abs(ev["mean_nll"] - test) < 1e-3, (ev["mean_nll"], test)
assert abs(ev["mean_nll"] - base["mean_nll"]) > 3e-3, "the merged model equals the base: training changed nothing"
EOF
    "$zeroth" eval --model "$tmp/merged0" --tokenizer "$S/tok512.bin" --data "$sample" >"$tmp/eval0.out"
    grep -qx "mean NLL: 1.2664" "$tmp/eval0.out" || { cat "$tmp/eval0.out"; fail "the 0-step full merge is not the base"; } ;;

  bad-config)  # errors name the problem; an existing run is never touched without --resume
    rc=0; "$zeroth" train "$recipe" "${fast[@]}" --set run.dir="$tmp/x" --set task.foo=1 >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" != 0 ] || fail "an unknown key was accepted"
    grep -q "unknown key task.foo" "$tmp/err" || { cat "$tmp/err"; fail "the unknown key is not named"; }
    [ ! -e "$tmp/x" ] || fail "a failed config created the run directory"
    printf 'run:\n  steps: 3\n  stpes: 4\n' >"$tmp/typo.yaml"
    rc=0; "$zeroth" train "$tmp/typo.yaml" >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" != 0 ] || fail "a typo'd key was accepted"
    grep -q "typo.yaml: unknown key run.stpes" "$tmp/err" || { cat "$tmp/err"; fail "the typo is not named with its file"; }
    # A directory given where a file belongs, as the config, the data or the model.
    mkdir -p "$tmp/adir"
    for args in "$tmp/adir" "$recipe --set task.train=$tmp/adir" "$recipe --set model.path=$tmp/adir/"; do
      # shellcheck disable=SC2086  # the words of $args are the arguments
      rc=0; "$zeroth" train $args "${fast[@]}" --set run.dir="$tmp/d" >/dev/null 2>"$tmp/err" || rc=$?
      [ "$rc" != 0 ] || fail "a directory was accepted as a file ($args)"
      grep -q "is a directory\|config.json" "$tmp/err" || { cat "$tmp/err"; fail "unclear error for a directory ($args)"; }
    done
    # The exit statuses are documented, and an unknown flag is CLI11's 109.
    "$zeroth" --help | grep -q "3        replicas disagreed" || fail "--help does not document the exit statuses"
    rc=0; "$zeroth" train --no-such-flag >/dev/null 2>&1 || rc=$?
    [ "$rc" = 109 ] || fail "an unknown flag exited $rc, not 109"
    # A key with no value is an error naming it, not the compiled-in default.
    rc=0; "$zeroth" train "$recipe" "${fast[@]}" --set run.dir="$tmp/e" --set optimizer.lr= >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" != 0 ] && grep -q "optimizer.lr has no value" "$tmp/err" || { cat "$tmp/err"; fail "an empty optimizer.lr"; }
    # A directory that already holds a run.
    train "$tmp/run" 3
    before=$(cd "$tmp/run" && find . -type f | sort | xargs sha256sum)
    rc=0; "$zeroth" train "$recipe" "${fast[@]}" --set run.dir="$tmp/run" --set run.steps=5 >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" != 0 ] || fail "a second run into the same directory was accepted"
    grep -q "already holds a run: pass --resume" "$tmp/err" || { cat "$tmp/err"; fail "unclear error: $(cat "$tmp/err")"; }
    after=$(cd "$tmp/run" && find . -type f | sort | xargs sha256sum)
    [ "$before" = "$after" ] || fail "the existing run directory was changed"
    # Resuming with a setting that changes how entries apply would desync ledger and weights.
    rc=0; "$zeroth" train "$recipe" "${fast[@]}" --resume "$tmp/run" --set run.steps=6 \
      --set optimizer.weight_decay=0.5 >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" != 0 ] || fail "resume with a different weight decay was accepted"
    grep -q "optimizer.weight_decay differs from the run being resumed" "$tmp/err" || { cat "$tmp/err"; fail "unclear resume error"; }
    # --resume of a directory without a run.
    mkdir -p "$tmp/empty"
    rc=0; "$zeroth" train "$recipe" "${fast[@]}" --resume "$tmp/empty" >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" != 0 ] || fail "--resume of an empty directory was accepted"
    grep -q "holds no ledger to resume" "$tmp/err" || { cat "$tmp/err"; fail "unclear error for --resume"; }
    # GPU members: bad values name the key; where no GPU is usable the run
    # stops before its directory is created.
    rc=0; "$zeroth" train "$recipe" "${fast[@]}" --set run.dir="$tmp/g" --set model.device=gpu >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" != 0 ] && grep -q "model.device is \"gpu\"; use cpu or cuda" "$tmp/err" || { cat "$tmp/err"; fail "model.device"; }
    rc=0; "$zeroth" train "$recipe" "${fast[@]}" --set run.dir="$tmp/g" --set "model.cuda_members=[2]" >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" != 0 ] && grep -q "model.cuda_members names member 2, but the run has members 0..1" "$tmp/err" \
      || { cat "$tmp/err"; fail "model.cuda_members out of range"; }
    rc=0; "$zeroth" train "$recipe" "${fast[@]}" --set run.dir="$tmp/g" --set "model.cuda_members=[1]" \
      --set "roles.grad=[1]" >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" != 0 ] && grep -q "member 1 is a roles.grad member, which runs on the CPU" "$tmp/err" \
      || { cat "$tmp/err"; fail "a gradient member on the GPU"; }
    rc=0; "$zeroth" train "$recipe" "${fast[@]}" --set run.dir="$tmp/g" --set model.cuda_precision=fp8 >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" != 0 ] && grep -q "model.cuda_precision: 'fp8' is not a GEMM precision" "$tmp/err" \
      || { cat "$tmp/err"; fail "model.cuda_precision"; }
    if ! has_gpu; then
      rc=0; "$zeroth" train "$recipe" "${fast[@]}" --set run.dir="$tmp/g" --set "model.cuda_members=[1]" >/dev/null 2>"$tmp/err" || rc=$?
      [ "$rc" != 0 ] && grep -q "put member 1 on the GPU, but this process has none usable" "$tmp/err" \
        || { cat "$tmp/err"; fail "GPU members without a GPU"; }
      [ ! -e "$tmp/g" ] || fail "a run without its GPU created the run directory"
    fi ;;

  cuda-mixed)  # member 0 on the CPU, member 1 on the GPU: replica hashes compared after every step, replay agrees
    has_gpu || { echo "skipped: no usable GPU ($("$zeroth" info 2>&1 | grep '^cuda' || true))"; exit 77; }
    train "$tmp/mixed" 20 --set run.hash_every=1 --set "model.cuda_members=[1]"
    grep -q "GPU member 1: cuda" "$tmp/mixed.err" || { cat "$tmp/mixed.err"; fail "member 1 did not run on the GPU"; }
    grep -q '"gpu_memory_used_gib"' "$tmp/mixed/summary.json" || fail "summary.json does not report GPU memory"
    want=$(final_hash "$tmp/mixed")
    "$zeroth" replay --base "$S/stories260K.bin" --ledger "$tmp/mixed/ledger.zl" --out "$tmp/rebuilt" >"$tmp/replay.out"
    [ "$(sed -n 's/^hash: //p' "$tmp/replay.out")" = "$want" ] || fail "the mixed run's ledger replays to another hash"
    # The GPU's codes against the CPU's on the same work: f32 GEMMs differ in
    # summation order only, so a code moves by at most one rounding step.
    cal=(--set task.max_length=32 --set zo.samples=2 --set zo.q=4 --steps 4 --members 3)
    "$zeroth" calibrate "$recipe" "${cal[@]}" --out "$tmp/cpu.json" >/dev/null || fail "calibrate on the CPU"
    "$zeroth" calibrate "$recipe" "${cal[@]}" --device cuda --out "$tmp/gpu.json" >/dev/null || fail "calibrate on the GPU"
    "$zeroth" calibrate --compare "$tmp/cpu.json" "$tmp/gpu.json" >"$tmp/cmp" || fail "calibrate --compare cpu gpu"
    cat "$tmp/cmp"
    grep -q '"cpu-.*|cuda-sm[0-9]*-f32"' "$tmp/cmp" || fail "the GPU file does not carry a cuda class"
    worst=$(sed -n 's/^largest difference: //p' "$tmp/cmp")
    [ "$worst" -le 1 ] || fail "GPU codes differ from the CPU's by $worst steps"
    # Every member on the GPU, in each precision.
    for p in f32 tf32 bf16; do
      train "$tmp/all-$p" 10 --set run.hash_every=1 --set model.device=cuda --set model.cuda_precision=$p
    done ;;

  attack)  # 3 of 16 members send ±127 codes: without a robust rule the held-out loss blows up;
           # with robust.rule=clip it stays near the honest run's, and replay still equals the run
    atk=(--set run.members=16 --set zo.q=1 --set task.max_length=64 --set optimizer.lr=5e-3 --set task.dev_size=2
         --set run.hash_every=10)
    dev_after() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dev_after"]["loss"])' "$1/summary.json"; }
    "$zeroth" train "$recipe" "${fast[@]}" "${atk[@]}" --set run.dir="$tmp/honest" --set run.steps=100 \
      --set robust.rule=clip >"$tmp/honest.out" 2>"$tmp/honest.err" || fail "the honest run failed"
    "$zeroth" train "$recipe" "${fast[@]}" "${atk[@]}" --set run.dir="$tmp/none" --set run.steps=100 \
      --debug-attack huge:0,1,2 >"$tmp/none.out" 2>"$tmp/none.err" || fail "the unprotected attacked run failed"
    "$zeroth" train "$recipe" "${fast[@]}" "${atk[@]}" --set run.dir="$tmp/clip" --set run.steps=100 \
      --set robust.rule=clip --debug-attack huge:0,1,2 >"$tmp/clip.out" 2>"$tmp/clip.err" || fail "the clipped run failed"
    h=$(dev_after "$tmp/honest"); n=$(dev_after "$tmp/none"); c=$(dev_after "$tmp/clip")
    echo "dev loss after 100 steps: honest $h, attacked $n, attacked with clip $c"
    python3 -c "import sys; h,n,c=map(float,sys.argv[1:]); sys.exit(0 if n > h + 0.5 and abs(c - h) < 0.3 else 1)" \
      "$h" "$n" "$c" || fail "expected the attack to hurt (> honest + 0.5) and clip to hold (within 0.3 of honest)"
    grep -q '"robust_clipped":[1-9]' "$tmp/clip/metrics.jsonl" || fail "clip never clipped"
    got=$("$zeroth" replay --base "$S/stories260K.bin" --ledger "$tmp/clip/ledger.zl" --out "$tmp/rc" | sed -n 's/^hash: //p')
    [ "$got" = "$(final_hash "$tmp/clip")" ] || fail "the clipped run does not replay to its hash"
    # Four members per direction (zo.redundancy=4) and the median per direction:
    # one huge attacker in each of 3 groups (as one compromised rank's members
    # land under mpirun) cannot move any direction's committed code.
    med=(--set robust.rule=median --set zo.redundancy=4)
    "$zeroth" train "$recipe" "${fast[@]}" "${atk[@]}" --set run.dir="$tmp/mhonest" --set run.steps=100 "${med[@]}" \
      >"$tmp/mhonest.out" 2>"$tmp/mhonest.err" || fail "the honest median run failed"
    "$zeroth" train "$recipe" "${fast[@]}" "${atk[@]}" --set run.dir="$tmp/median" --set run.steps=100 "${med[@]}" \
      --debug-attack huge:0,4,8 >"$tmp/median.out" 2>"$tmp/median.err" || fail "the attacked median run failed"
    mh=$(dev_after "$tmp/mhonest"); m=$(dev_after "$tmp/median")
    echo "median per direction: honest $mh, attacked $m"
    python3 -c "import sys; h,m=map(float,sys.argv[1:]); sys.exit(0 if abs(m - h) < 0.3 else 1)" "$mh" "$m" \
      || fail "expected the median to hold (within 0.3 of the honest median run)"
    # Each committed entry holds one record per direction: 4 groups × q = 1, the other 12 folded in.
    grep -q '"records":4,' "$tmp/median/metrics.jsonl" && grep -q '"robust_trimmed":12' "$tmp/median/metrics.jsonl" \
      && ! grep -q '"records":\([0-35-9]\|[0-9][0-9]\),' "$tmp/median/metrics.jsonl" \
      || fail "median entries should hold one record per direction"
    got=$("$zeroth" replay --base "$S/stories260K.bin" --ledger "$tmp/median/ledger.zl" --out "$tmp/rm" | sed -n 's/^hash: //p')
    [ "$got" = "$(final_hash "$tmp/median")" ] || fail "the median run does not replay to its hash" ;;

  calibrate)  # spot-check tolerances: the same work with 1 and 2 threads gives identical codes; mismatched
              # work and an existing --out are refused with a clear error, and nothing is overwritten
    cal=(--set task.max_length=32 --set zo.samples=2 --set zo.q=4 --steps 4 --members 3)
    "$zeroth" calibrate "$recipe" "${cal[@]}" -t 1 --out "$tmp/t1.json" >/dev/null || fail "calibrate -t 1 failed"
    "$zeroth" calibrate "$recipe" "${cal[@]}" -t 2 --out "$tmp/t2.json" >/dev/null || fail "calibrate -t 2 failed"
    "$zeroth" calibrate --compare "$tmp/t1.json" "$tmp/t2.json" >"$tmp/cmp" || fail "calibrate --compare failed"
    cat "$tmp/cmp"
    grep -q "48 codes compared" "$tmp/cmp" && grep -q "^largest difference: 0$" "$tmp/cmp" \
      || fail "the same work with 1 and 2 threads should give identical codes"
    # A file whose codes differ: the difference is reported (the comparison can fail).
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); j["codes"][0][0] += 3; j["backend"]="cpu-x"; json.dump(j, open(sys.argv[2], "w"))' \
      "$tmp/t1.json" "$tmp/t3.json"
    "$zeroth" calibrate --compare "$tmp/t1.json" "$tmp/t3.json" >"$tmp/cmp3"
    grep -q "^largest difference: 3$" "$tmp/cmp3" && grep -q '"cpu-x|cpu-' "$tmp/cmp3" || { cat "$tmp/cmp3"; fail "a 3-code difference was not reported"; }
    "$zeroth" calibrate "$recipe" "${cal[@]}" --set zo.eps=2e-3 --out "$tmp/eps.json" >/dev/null
    rc=0; "$zeroth" calibrate --compare "$tmp/t1.json" "$tmp/eps.json" 2>"$tmp/err" || rc=$?
    [ "$rc" != 0 ] && grep -q "measured different work: their config_hash differ" "$tmp/err" \
      || { cat "$tmp/err"; fail "different configs were compared"; }
    before=$(md5sum <"$tmp/t1.json")
    rc=0; "$zeroth" calibrate "$recipe" "${cal[@]}" --out "$tmp/t1.json" 2>"$tmp/err" || rc=$?
    [ "$rc" != 0 ] && grep -q "exists; choose another --out" "$tmp/err" && [ "$(md5sum <"$tmp/t1.json")" = "$before" ] \
      || fail "calibrate overwrote an existing file"
    if ! has_gpu; then  # without a GPU, --device cuda says so
      rc=0; "$zeroth" calibrate "$recipe" "${cal[@]}" --device cuda --out "$tmp/gpu.json" 2>"$tmp/err" || rc=$?
      [ "$rc" != 0 ] && grep -q "\-\-device cuda: no usable GPU here" "$tmp/err" && [ ! -e "$tmp/gpu.json" ] \
        || { cat "$tmp/err"; fail "calibrate --device cuda without a GPU"; }
    fi ;;

  *) echo "unknown check $check"; exit 2 ;;
esac
echo "ok: $check"
