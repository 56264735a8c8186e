#!/usr/bin/env bash
# `zeroth train` under mpirun (the MPI transport), on stories260K from ../shared
# with a small, fast recipe: 4 logical members, q = 2.
# Usage: mpi_train.sh ZEROTH_BINARY SHARED_DIR REPO_DIR CHECK
#   CHECK: ranks | rules | kill-resume | private | bad-config | corrupt | hybrid | roles | oom | fo | gpu
# Exits 77 (CTest's skip code) with a message when SHARED_DIR or mpirun is absent
# (gpu: also without a usable GPU; scripts/device-check runs it on the lent GPU machine).
set -euo pipefail
zeroth=$1; shared=${ZEROTH_SHARED:-$2}; repo=$3; check=$4
if [ ! -d "$shared/models/stories260K" ]; then
  echo "skipped: $shared is absent (set ZEROTH_SHARED to the shared folder)"
  exit 77
fi
if ! command -v mpirun >/dev/null; then
  echo "skipped: mpirun is not installed (scripts/install-deps installs openmpi-bin)"
  exit 77
fi
export ZEROTH_SHARED=$shared
recipe=$repo/configs/stories260k-tinystories.yaml
sample=$shared/data/tinystories/sample.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

fast=(--set task.max_length=32 --set zo.samples=1 --set zo.q=2 --set run.members=4 --set run.log_every=50
      --set run.hash_every=5 --set task.dev_size=1 --set run.eval_every=0 --set run.threads=1)
fail() { echo "FAILED: $*" >&2; exit 1; }
# mpi NP OUT [zeroth train arguments]: runs under mpirun (bounded: a hang fails
# instead of blocking CI); OUT.out/OUT.err hold its output; returns its status.
mpi() {
  local np=$1 out=$2; shift 2
  timeout --kill-after=10 180 mpirun --allow-run-as-root --oversubscribe -np "$np" "$zeroth" train "$@" \
    >"$out.out" 2>"$out.err"
}
has_gpu() { "$zeroth" info 2>/dev/null | grep -q "^cuda: .*device(s)"; }
final_hash() { sed -n 's/.*"final_hash": "\([0-9a-f]*\)".*/\1/p' "$1/summary.json"; }
# The ledger's entries: the file after its header frame (the header holds the
# config, which names the run directory).
entries() { python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read(); n=struct.unpack_from("<I",b,4)[0]; sys.stdout.buffer.write(b[8+n+4:])' "$1"; }
# local_and_replay RUN [zeroth train arguments]: the same run on the local
# transport commits RUN's ledger byte for byte, and replaying RUN's ledger from
# the base reaches RUN's final hash.
local_and_replay() {
  local run=$1; shift
  "$zeroth" train "$@" --set run.dir="$run-local" >"$run-local.out" 2>"$run-local.err" \
    || { cat "$run-local.err" >&2; fail "the local run of $run exited $?"; }
  cmp <(entries "$run/ledger.zl") <(entries "$run-local/ledger.zl") || fail "$run: np 2 and local ledgers differ"
  "$zeroth" replay --base "$shared/models/stories260K/stories260K.bin" --ledger "$run/ledger.zl" --out "$run-replayed" \
    >"$run-replay.out" 2>&1 || { cat "$run-replay.out"; fail "replay of $run's ledger"; }
  grep -q "$(final_hash "$run")" "$run-replay.out" || { cat "$run-replay.out"; fail "$run: replay misses the final hash"; }
}

case "$check" in
  ranks)  # np 1, 2, 4 and the local transport: identical ledgers and final hashes
    for np in 1 2 4; do
      mpi "$np" "np$np" "$recipe" "${fast[@]}" --set run.steps=40 --set run.dir="np$np" \
        || { cat "np$np.err" >&2; fail "mpirun -np $np exited $?"; }
      grep -q "replica hashes: all equal ($np ranks, 4 members" "np$np.out" || { cat "np$np.out"; fail "np $np"; }
    done
    "$zeroth" train "$recipe" "${fast[@]}" --set run.steps=40 --set run.dir=local >local.out 2>local.err \
      || { cat local.err >&2; fail "the local run exited $?"; }
    want=$(final_hash np1)
    [ -n "$want" ] || fail "no final hash"
    for run in np2 np4 local; do
      [ "$(final_hash $run)" = "$want" ] || fail "$run's final hash $(final_hash $run) differs from np 1's $want"
      cmp <(entries np1/ledger.zl) <(entries $run/ledger.zl) || fail "$run's ledger entries differ from np 1's"
    done
    [ "$(entries np1/ledger.zl | wc -c)" -gt 1000 ] || fail "the ledger holds almost nothing"
    echo "np 1, 2, 4 and local: identical ledgers, final hash $want" ;;

  rules)  # every update rule with state or structure (adam, adamezo, muon, ALLoRA, LISA, the sparse mask, the ε
          # schedule): np 2 and np 4 end on the
          # local run's ledger and hash, replay reaches it, and a run resumed halfway ends on it too
    for rule in "adam" "adamezo --set optimizer.horizon=4" "muon" "sgd --set optimizer.allora_eta=2" \
                "adam --set optimizer.allora_eta=2" "sgd --set zo.lisa_layers=2" "adam --set zo.lisa_layers=2" \
                "sgd --set trainable.full=true --set trainable.sparse_density=0.1" \
                "adam --set trainable.full=true --set trainable.sparse_density=0.1" \
                "sgd --set zo.eps_final=1e-4 --set zo.eps_steps=20" "hizoo --set optimizer.hessian_smooth=1e-2" \
                "hizoo --set zo.distribution=gaussian --set optimizer.hessian_smooth=1e-2" \
                "sgd --set zo.lozo_rank=2 --set zo.lozo_period=5" \
                "adam --set trainable.full=true --set zo.lozo_rank=2" "sgd --set zo.orthogonal_slots=true"; do
      name=${rule%% *}
      if [[ $rule == *allora* ]]; then name=$name-allora; fi
      if [[ $rule == *lisa* ]]; then name=$name-lisa; fi
      if [[ $rule == *sparse* ]]; then name=$name-sparse; fi
      if [[ $rule == *eps_final* ]]; then name=$name-epsdecay; fi
      if [[ $rule == *gaussian* ]]; then name=$name-gaussian; fi
      if [[ $rule == *lozo* ]]; then name=$name-lozo; fi
      if [[ $rule == *orthogonal* ]]; then name=$name-orthogonal; fi
      args=("$recipe" "${fast[@]}" --set run.steps=30 --set optimizer.lr=1e-3 --set optimizer.rule=$rule)
      for np in 2 4; do
        mpi "$np" "$name-np$np" "${args[@]}" --set run.dir="$name-np$np" \
          || { cat "$name-np$np.err" >&2; fail "$name: mpirun -np $np exited $?"; }
        grep -q "replica hashes: all equal ($np ranks, 4 members" "$name-np$np.out" || { cat "$name-np$np.out"; fail "$name np $np"; }
      done
      local_and_replay "$name-np2" "${args[@]}"
      want=$(final_hash "$name-np2")
      [ "$(final_hash "$name-np4")" = "$want" ] || fail "$name: np 4 ends on $(final_hash "$name-np4"), np 2 on $want"
      [ "$(final_hash "$name-np2-local")" = "$want" ] || fail "$name: the local run's hash differs from np 2's"
      "$zeroth" train "${args[@]}" --set run.steps=15 --set run.dir="$name-half" >"$name-half.out" 2>"$name-half.err" \
        || { cat "$name-half.err" >&2; fail "$name: 15 steps exited $?"; }
      "$zeroth" train --resume "$name-half" --set run.steps=30 >"$name-resumed.out" 2>"$name-resumed.err" \
        || { cat "$name-resumed.err" >&2; fail "$name: resume exited $?"; }
      [ "$(final_hash "$name-half")" = "$want" ] || fail "$name: resumed at 15 ends on $(final_hash "$name-half"), not $want"
      if [[ $name == hizoo* ]]; then  # members sent curvature records, and the log shows their mean
        grep -q '"curvature_mean":' "$name-np2/metrics.jsonl" || fail "$name: no curvature_mean in the metrics"
      fi
      [[ " ${seen:-} " != *" $want "* ]] || fail "$name ends on the hash of an earlier rule: the rule did not apply"
      seen="${seen:-} $want"
      echo "$name: np 2 = np 4 = local = replay = resumed, hash $want"
    done ;;

  kill-resume)  # kill -9 one rank near step 50 of 100: non-zero exit; resume reaches the uninterrupted hash
    slow=(--set task.max_length=64 --set zo.samples=4 --set run.steps=100 --set run.snapshot_every=20)
    mpi 2 whole "$recipe" "${fast[@]}" "${slow[@]}" --set run.dir=whole || { cat whole.err >&2; fail "whole run"; }
    want=$(final_hash whole)
    ( rc=0; mpi 2 killed "$recipe" "${fast[@]}" "${slow[@]}" --set run.dir=killed || rc=$?; echo $rc >killed.rc ) &
    for _ in $(seq 1 1200); do
      grep -q '"step":50,' killed/metrics.jsonl 2>/dev/null && break
      sleep 0.05
    done
    victim=""
    for p in $(pgrep -f "$zeroth train" || true); do
      if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then victim=$p; fi
    done
    [ -n "$victim" ] || fail "found no rank 1 process to kill"
    killed_at=$(date +%s.%N)
    kill -9 "$victim"
    wait
    ended=$(date +%s.%N)
    rc=$(cat killed.rc)
    [ "$rc" != 0 ] || fail "the job exited 0 after one rank was killed"
    steps=$(grep -c '"event":"step"' killed/metrics.jsonl)
    [ "$steps" -lt 100 ] || fail "the run finished all 100 steps before the kill; nothing was tested"
    echo "killed rank 1 at step $steps: mpirun exited $rc after $(python3 -c "print(f'{$ended-$killed_at:.1f}')") s"
    mpi 2 resumed --resume killed || { cat resumed.err >&2; fail "resume exited $?"; }
    grep -q "resuming killed at step" resumed.err || fail "resume did not say where it resumed"
    [ "$(final_hash killed)" = "$want" ] || fail "resumed hash $(final_hash killed) != uninterrupted $want" ;;

  private)  # each rank reads its own shard ({rank}); replicas still agree
    awk 'BEGIN{RS="<\\|endoftext\\|>"} NR<=3{printf "%s<|endoftext|>", $0 > "shard-0.txt"}
         NR>=3{printf "%s<|endoftext|>", $0 > "shard-1.txt"}' "$sample"
    mpi 2 priv "$recipe" "${fast[@]}" --set run.members=2 --set run.steps=30 --set run.dir=priv \
      --set 'task.train=shard-{rank}.txt' || { cat priv.err >&2; fail "private-data run exited $?"; }
    grep -q "replica hashes: all equal (2 ranks, 2 members" priv.out || { cat priv.out; fail "hashes"; }
    grep -q "rank 0's" priv.err || fail "the log does not say the task is rank 0's"
    # The same run on shared data commits other records: the shards mattered.
    mpi 2 shared "$recipe" "${fast[@]}" --set run.members=2 --set run.steps=30 --set run.dir=shared \
      || fail "shared-data run"
    [ "$(final_hash priv)" != "$(final_hash shared)" ] || fail "private shards gave the shared-data hash" ;;

  bad-config)  # a data file missing on one rank only; too few members: one clear error, no hang
    awk 'BEGIN{RS="<\\|endoftext\\|>"} NR<=3{printf "%s<|endoftext|>", $0 > "shard-0.txt"}' "$sample"
    if mpi 2 miss "$recipe" "${fast[@]}" --set run.members=2 --set run.steps=10 --set run.dir=miss \
        --set 'task.train=shard-{rank}.txt'; then fail "a missing file on rank 1 did not fail the job"; fi
    cat miss.err
    [ "$(grep -c '^zeroth: error:' miss.err)" = 1 ] || fail "expected exactly one error line"
    grep -q "^zeroth: error: rank 1 of 2: the data file shard-1.txt: no such file" miss.err || fail "the error does not name rank 1's file"
    [ ! -e miss/ledger.zl ] || [ "$(entries miss/ledger.zl | wc -c)" = 0 ] || fail "a step was committed"
    if mpi 4 few "$recipe" "${fast[@]}" --set run.members=2 --set run.steps=10 --set run.dir=few; then
      fail "2 members on 4 ranks did not fail"
    fi
    grep -q "all 4 ranks: .*run.members is 2 but mpirun started 4 ranks" few.err || { cat few.err; fail "members"; }
    # A GPU member on a rank without a usable GPU: that rank's error, and no run directory.
    if ! has_gpu; then
      if mpi 2 gpu "$recipe" "${fast[@]}" --set run.members=2 --set run.steps=10 --set run.dir=gpu \
          --set 'model.cuda_members=[1]'; then fail "a GPU member without a GPU did not fail the job"; fi
      grep -q "^zeroth: error: rank 1 of 2: .*put member 1 on the GPU, but this process has none usable" gpu.err \
        || { cat gpu.err; fail "the GPU error does not name rank 1"; }
      [ ! -e gpu ] || fail "a job that could not start created its run directory"
      if mpi 2 nccl "$recipe" "${fast[@]}" --set run.members=2 --set run.steps=10 --set run.dir=nccl \
          --transport nccl; then fail "--transport nccl without GPUs did not fail"; fi
      grep -q "^zeroth: error: --transport nccl: " nccl.err || { cat nccl.err; fail "no clear --transport nccl error"; }
      [ ! -e nccl ] || fail "--transport nccl without GPUs created the run directory"
    fi ;;

  corrupt)  # a corrupted θ on rank 1 is caught by the next hash check, naming ranks and step
    if mpi 2 bad "$recipe" "${fast[@]}" --set run.steps=40 --set run.dir=bad --debug-corrupt 1:12; then
      fail "a corrupted replica did not stop the run"
    fi
    cat bad.err | grep -v '^step'
    grep -q "replicas diverged: after step 14 (checked every 5 steps), rank 0 has hash [0-9a-f]*; rank 1 has" bad.err \
      || fail "the error does not name rank 1 and step 14" ;;

  hybrid)  # ZO members + one gradient member (roles.grad): replicas agree, the ledger replays,
           # and np 2 commits the same ledger as the local transport
    hy=(--set 'roles.grad=[1]' --set run.steps=20)
    mpi 2 hyb "$recipe" "${fast[@]}" "${hy[@]}" --set run.dir=hyb || { cat hyb.err >&2; fail "hybrid mpirun exited $?"; }
    grep -q "replica hashes: all equal (2 ranks, 4 members" hyb.out || { cat hyb.out hyb.err; fail "hybrid hashes"; }
    grep -q "roles: member(s) 1 grad" hyb.err || fail "the log does not show the roles"
    # Member 1's q = 2 records are gradient projections in every step, the others' ZO.
    [ "$(grep -c '"grad_records":2,' hyb/metrics.jsonl)" = 20 ] || fail "not every step holds member 1's 2 gradient records"
    local_and_replay hyb "$recipe" "${fast[@]}" "${hy[@]}"
    # The all-ZO run with the same seeds: its records are marked zeroth-order, so
    # the ledgers differ (kind bytes) even where the codes agree — the ZO
    # estimate at ε = 1e-3 is within ~1e-3 of the exact projection and the
    # codec's rounding uniform is keyed by the slot, so most codes are equal.
    mpi 2 zo "$recipe" "${fast[@]}" --set run.steps=20 --set run.dir=zo || fail "all-ZO run"
    ! cmp -s <(entries zo/ledger.zl) <(entries hyb/ledger.zl) || fail "the hybrid ledger equals the all-ZO one"
    # Addax's mix (optimizer.grad_weight): the same records weighed by kind; agrees everywhere, moves θ otherwise.
    mpi 2 mix "$recipe" "${fast[@]}" "${hy[@]}" --set optimizer.grad_weight=0.8 --set run.dir=mix \
      || { cat mix.err >&2; fail "grad_weight mpirun exited $?"; }
    local_and_replay mix "$recipe" "${fast[@]}" "${hy[@]}" --set optimizer.grad_weight=0.8
    [ "$(final_hash mix)" != "$(final_hash hyb)" ] || fail "optimizer.grad_weight changed nothing"
    # Addax's split (roles.short_tokens): the gradient member draws the stories of at most 230 tokens, the
    # ZO members the longer ones; np 2 = local = replay, and the draws differ from the unsplit run's.
    ax=("${hy[@]}" --set task.max_length=256 --set run.steps=8)
    mpi 2 axs "$recipe" "${fast[@]}" "${ax[@]}" --set roles.short_tokens=230 --set run.dir=axs \
      || { cat axs.err >&2; fail "short_tokens mpirun exited $?"; }
    local_and_replay axs "$recipe" "${fast[@]}" "${ax[@]}" --set roles.short_tokens=230
    mpi 2 axn "$recipe" "${fast[@]}" "${ax[@]}" --set run.dir=axn || fail "the unsplit run"
    [ "$(final_hash axs)" != "$(final_hash axn)" ] || fail "roles.short_tokens changed nothing"
    echo "hybrid: final hash $(final_hash hyb) on np 2 = local = replay; with grad_weight 0.8: $(final_hash mix);" \
         "all-ZO run: $(final_hash zo); Addax's split: $(final_hash axs)" ;;

  roles)  # more slots per gradient member (roles.grad_slots) and roles.auto: np 2 = local = replay
    gs=(--set 'roles.grad=[1]' --set 'roles.jvp=[2]' --set roles.grad_slots=6 --set run.steps=12)
    mpi 2 gs "$recipe" "${fast[@]}" "${gs[@]}" --set run.dir=gs || { cat gs.err >&2; fail "grad_slots mpirun exited $?"; }
    grep -q "replica hashes: all equal (2 ranks, 4 members" gs.out || { cat gs.out gs.err; fail "grad_slots hashes"; }
    grep -q "roles: member(s) 1 grad (backward + exact projections, 6 slots each), member(s) 2 jvp (forward-mode exact projections, 6 slots each), 2 zeroth-order" gs.err \
      || { cat gs.err; fail "roles log"; }
    # Members 1 (backward) and 2 (forward mode) send 6 exact-projection records
    # each, the 2 ZO members 2 each: 16 records a step, 12 of them gradient-kind.
    [ "$(grep -c '"grad_records":12,' gs/metrics.jsonl)" = 12 ] || fail "not every step holds 2 × 6 gradient records"
    [ "$(grep -c '"records":16,' gs/metrics.jsonl)" = 12 ] || { head -3 gs/metrics.jsonl; fail "records per step"; }
    local_and_replay gs "$recipe" "${fast[@]}" "${gs[@]}"
    # roles.auto: each rank probes one backward and gives its members the role
    # where roles.memory holds them (the count per budget is unit-tested); with
    # no room, none; with plenty, all four.
    au=(--set roles.auto=true --set roles.grad_slots=4 --set run.steps=4)
    mpi 2 au0 "$recipe" "${fast[@]}" "${au[@]}" --set roles.memory=1KiB --set run.dir=au0 || { cat au0.err; fail "auto, no room"; }
    grep -q "roles.auto: member(s) none get a role, 2 zeroth-order" au0.err || { cat au0.err; fail "auto gave a role without room"; }
    [ "$(grep -c '"grad_records":0,' au0/metrics.jsonl)" = 4 ] || fail "auto without room: gradient records"
    peak=$(sed -n 's/.*backward peaks at \([0-9]*\) MiB.*/\1/p' au0.err | sort -n | tail -1)
    [ -n "$peak" ] || fail "no measured peak in the log"
    mpi 2 au1 "$recipe" "${fast[@]}" "${au[@]}" --set roles.memory=64GiB --set run.dir=au1 || { cat au1.err; fail "auto, room"; }
    grep -q "roles: member(s) 0, 1, 2, 3 grad (backward + exact projections, 4 slots each" au1.err || { cat au1.err; fail "auto roles"; }
    [ "$(grep -c '"grad_records":16,' au1/metrics.jsonl)" = 4 ] || fail "auto with room: 4 members × 4 gradient records"
    echo "roles: grad_slots np 2 = local = replay ($(final_hash gs)); auto: peak ${peak} MiB, none at 1 KiB, all at 64 GiB" ;;

  oom)  # a gradient member whose backward runs out of memory says so and goes on as a ZO
        # member: rank 1 (member 1, roles.grad) under an address-space limit that holds
        # the ZO step but not a keep-all backward through a deep, thin random model
    python3 - deep.bin <<'PY'
import random, struct, sys
dim, hidden, layers, heads, kv, vocab, seq = 64, 172, 40, 8, 4, 512, 512  # stories260K's tokenizer
rnd, kvd = random.Random(1), 64 * 4 // 8
def mat(n, fan): a = fan ** -0.5; return struct.pack(f"<{n}f", *(rnd.uniform(-a, a) for _ in range(n)))
def ones(n): return struct.pack(f"<{n}f", *([1.0] * n))
with open(sys.argv[1], "wb") as f:  # llama2.c legacy layout
    f.write(struct.pack("<7i", dim, hidden, layers, heads, kv, vocab, seq))
    f.write(mat(vocab * dim, dim) + ones(layers * dim) + mat(layers * dim * dim, dim) + mat(layers * kvd * dim, dim)
            + mat(layers * kvd * dim, dim) + mat(layers * dim * dim, dim) + ones(layers * dim)
            + mat(layers * hidden * dim, dim) + mat(layers * dim * hidden, hidden) + mat(layers * hidden * dim, dim)
            + ones(dim) + b"\0" * (seq * (dim // heads) * 4))
PY
    deep=(--set model.path="$tmp/deep.bin" --set run.members=2 --set zo.samples=3 --set task.max_length=256
          --set run.threads=1 --set run.eval_every=0 --set run.steps=4 --set run.hash_every=1)
    limited() {  # MiB RUN [args]: np 2, each rank under `prlimit --as`
      local mib=$1 run=$2; shift 2
      timeout --kill-after=10 180 mpirun --allow-run-as-root --oversubscribe -np 2 -x MALLOC_ARENA_MAX=1 \
        prlimit --as=$((mib * 1048576)) -- "$zeroth" train "$recipe" "${deep[@]}" "$@" --set run.dir="$run" \
        >"$run.out" 2>"$run.err"
    }
    # The least limit (10 MiB steps) under which the all-ZO run completes, by
    # bisection: where the build links the CUDA libraries, their mappings alone
    # take hundreds of MiB of address space, so the range is wide.
    lo=50 hi=4000
    limited "$hi" "zo$hi" || { cat "zo$hi.err"; fail "the all-ZO run did not complete under $hi MiB"; }
    ! limited "$lo" "zo$lo" || fail "the all-ZO run completed under $lo MiB: the limit does not bite"
    while (( hi - lo > 10 )); do
      mid=$(( (lo + hi) / 20 * 10 ))
      (( mid > lo )) || mid=$(( lo + 10 ))
      if limited "$mid" "zo$mid"; then hi=$mid; else lo=$mid; fi
    done
    lim=$hi
    limited "$lim" oomg --set 'roles.grad=[1]' || { cat oomg.err; fail "the gradient member's OOM ended the run"; }
    grep -q "member 1: out of memory in the backward pass at step 0; zeroth-order steps from now on" oomg.err \
      || { cat oomg.err; fail "no fallback message under ${lim} MiB"; }
    grep -q "replica hashes: all equal (2 ranks, 2 members" oomg.out || { cat oomg.out; fail "oom replicas"; }
    [ "$(grep -c '"grad_records":0,' oomg/metrics.jsonl)" = 4 ] || fail "the fallen-back member still sent gradient records"
    "$zeroth" replay --base "$tmp/deep.bin" --ledger oomg/ledger.zl --out oomr >oomr.out 2>&1 || { cat oomr.out; fail "replay"; }
    grep -q "$(final_hash oomg)" oomr.out || { cat oomr.out; fail "replay of the fallen-back run misses its hash"; }
    # Without the limit the same member backpropagates.
    mpi 2 oomu "$recipe" "${deep[@]}" --set 'roles.grad=[1]' --set run.dir=oomu || { cat oomu.err; fail "unlimited run"; }
    [ "$(grep -c '"grad_records":2,' oomu/metrics.jsonl)" = 4 ] || fail "without the limit member 1 sent no gradient records"
    echo "oom: under ${lim} MiB per rank the gradient member fell back to ZO, the run completed and replays" ;;

  fo)  # mode fo: data-parallel backprop + AdamW; the reduction is in member order, so
       # np 2, np 4 and the local transport end on the same θ, and the loss falls
    f=(--set mode=fo --set optimizer.lr=1e-2 --set zo.samples=2 --set run.steps=30 --set run.snapshot_every=10)
    for np in 2 4; do
      mpi "$np" "fo$np" "$recipe" "${fast[@]}" "${f[@]}" --set run.dir="fo$np" || { cat "fo$np.err" >&2; fail "fo np $np"; }
      grep -q "replica hashes: all equal ($np ranks, 4 members" "fo$np.out" || { cat "fo$np.out"; fail "fo hashes"; }
    done
    "$zeroth" train "$recipe" "${fast[@]}" "${f[@]}" --set run.dir=fol >fol.out 2>fol.err || { cat fol.err; fail "fo local"; }
    [ "$(final_hash fo2)" = "$(final_hash fo4)" ] && [ "$(final_hash fo2)" = "$(final_hash fol)" ] \
      || fail "fo final hashes differ: np 2 $(final_hash fo2), np 4 $(final_hash fo4), local $(final_hash fol)"
    python3 - fo2/metrics.jsonl <<'PY' || fail "the fo loss did not fall"
import json, sys
steps = [json.loads(l)["loss"] for l in open(sys.argv[1]) if '"event": "step"' in l or '"event":"step"' in l]
first, last = sum(steps[:5]) / 5, sum(steps[-5:]) / 5
print(f"fo train loss: first 5 steps {first:.4f}, last 5 {last:.4f}")
sys.exit(0 if len(steps) == 30 and last < 0.7 * first else 1)
PY
    [ -f fo2/snapshots/step-00000030.safetensors ] || fail "no fo snapshot"
    # Resume: 20 steps, then --resume to 30 from the step-20 snapshot (θ and the
    # AdamW moments; rank 0 sends it to rank 1): the uninterrupted run's bits.
    mpi 2 fr "$recipe" "${fast[@]}" "${f[@]}" --set run.steps=20 --set run.dir=fr || { cat fr.err; fail "fo, 20 steps"; }
    mpi 2 fr2 --resume fr --set run.steps=30 || { cat fr2.err; fail "fo resume exited"; }
    grep -q "mode fo: resuming at step 20" fr2.err || { cat fr2.err; fail "the resume did not start from step 20"; }
    [ "$(final_hash fr)" = "$(final_hash fo2)" ] || fail "resumed fo run ends on $(final_hash fr), uninterrupted $(final_hash fo2)"
    "$zeroth" train --resume fr --set run.steps=40 >frl.out 2>frl.err || { cat frl.err; fail "local fo resume"; }
    rm -rf fr/snapshots
    ! "$zeroth" train --resume fr --set run.steps=50 >frn.out 2>frn.err || fail "fo resumed without a snapshot"
    grep -q "holds no snapshot" frn.err || { cat frn.err; fail "no clear error without a snapshot"; }
    echo "fo: np 2 = np 4 = local, final hash $(final_hash fo2); 20 + resumed 10 = the same bits" ;;

  gpu)  # GPU members over MPI: rank 1's member on the GPU beside rank 0's on the CPU (hashes compared
        # after every step; = local = replay), then every member on the GPU over the NCCL transport
    has_gpu || { echo "skipped: no usable GPU"; exit 77; }
    g=("$recipe" "${fast[@]}" --set run.members=2 --set run.steps=20 --set run.hash_every=1)
    mpi 2 mixed "${g[@]}" --set 'model.cuda_members=[1]' --set run.dir=mixed || { cat mixed.err >&2; fail "mixed np 2"; }
    grep -q "replica hashes: all equal (2 ranks, 2 members" mixed.out || { cat mixed.out; fail "mixed hashes"; }
    grep -q "GPU member 1: cuda" mixed.err || { cat mixed.err; fail "member 1 did not run on the GPU"; }
    local_and_replay mixed "${g[@]}" --set 'model.cuda_members=[1]'
    mpi 1 nccl "${g[@]}" --set model.device=cuda --set run.dir=nccl --transport nccl || { cat nccl.err >&2; fail "nccl"; }
    grep -q "replica hashes: all equal (1 ranks, 2 members" nccl.out || { cat nccl.out; fail "nccl hashes"; }
    grep -q "GPU members 0, 1: cuda" nccl.err || { cat nccl.err; fail "the NCCL run's members were not on the GPU"; }
    local_and_replay nccl "${g[@]}" --set model.device=cuda
    echo "gpu: mixed CPU+GPU over MPI $(final_hash mixed), all-GPU over NCCL $(final_hash nccl): each = local = replay" ;;

  *) fail "unknown check $check" ;;
esac
echo "ok: $check"
