#!/usr/bin/env python3
"""Fault tests of elastic runs (zeroth coordinator / zeroth worker) on loopback.

Each scenario runs a real coordinator and real worker processes on stories260K
(../shared), injects faults, and then checks invariants, not just that the run
finished:
  * the ledger reopens with no gaps and holds every step;
  * replaying the ledger from the base gives the coordinator's final hash;
  * every entry a worker applied (its --trace) is byte-equal to the ledger's
    entry of that step, so no worker applied an entry that is not in the
    recovered ledger;
  * after every committed step, every worker that applied it reports the same
    θ hash as the coordinator's replica;
  * no step had more than max_workers members.

Scenarios: workers (8 workers, random kill -9 and restart), coordinator (kill -9
of the coordinator at random points, restart), partition (a proxy blackholes
one worker for 3x the detection bound), joins (12 workers for max_workers 4),
tls (a run over TLS equals the plaintext one; mismatches refused and counted),
gpu (a --device cuda worker beside a CPU one; skipped without a GPU), and more:
see each scenario's docstring.

Usage: fault_test.py ZEROTH SHARED_DIR REPO SCENARIO [--seed N]
Exits 77 when SHARED_DIR is absent (CTest's skip code).
"""
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ZEROTH, SHARED, REPO, SCENARIO = sys.argv[1:5]
SEED = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else int(time.time()) % 100000
SHARED = os.environ.get("ZEROTH_SHARED", SHARED)
if not os.path.isdir(os.path.join(SHARED, "models", "stories260K")):
    print(f"skipped: {SHARED} is absent (set ZEROTH_SHARED to the shared folder)")
    sys.exit(77)
os.environ["ZEROTH_SHARED"] = SHARED
rng = random.Random(SEED)
print(f"scenario {SCENARIO}, seed {SEED} (rerun with --seed {SEED})", flush=True)

RECIPE = os.path.join(REPO, "configs", "stories260k-tinystories.yaml")
BASE = os.path.join(SHARED, "models", "stories260K", "stories260K.bin")
TMP = tempfile.mkdtemp(prefix="zeroth-fault-")
RUN = os.path.join(TMP, "run")
HEARTBEAT, MISSED = 0.2, 5  # detection bound 1 s
DEADLINE = 1000.0  # wall-clock bound of a whole scenario (CTest's timeout is the hard one)
T0 = time.time()


def fail(msg):
    print(f"FAILED: {msg}", flush=True)
    for name in sorted(os.listdir(TMP)):
        if name.endswith(".err"):
            with open(os.path.join(TMP, name), errors="replace") as f:
                tail = f.read()[-1500:]
            print(f"--- {name} (tail)\n{tail}", flush=True)
    kill_all()
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PROCS = []


def spawn(args, name):
    out = open(os.path.join(TMP, name + ".out"), "ab")
    err = open(os.path.join(TMP, name + ".err"), "ab")
    p = subprocess.Popen([ZEROTH] + args, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    PROCS.append(p)
    return p


def kill_all():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
    for p in PROCS:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def coordinator_args(port, steps, min_w, max_w, extra=()):
    return ["coordinator", RECIPE, "--listen", f"127.0.0.1:{port}", "--run", RUN, "--no-http",
            "--set", "task.max_length=32", "--set", "zo.samples=1", "--set", "zo.q=2", "--set", "run.hash_every=5",
            "--set", "task.dev_size=1", "--set", "run.eval_every=0", "--set", f"run.steps={steps}",
            "--set", "run.snapshot_every=25", "--set", f"elastic.min_workers={min_w}",
            "--set", f"elastic.max_workers={max_w}", "--set", f"elastic.heartbeat_s={HEARTBEAT}",
            "--set", f"elastic.missed_heartbeats={MISSED}", "--set", "elastic.step_deadline_s=5",
            "--set", "elastic.wait_s=60", *extra]


def worker(port, i, gen=0, extra=()):
    return spawn(["worker", "--join", f"127.0.0.1:{port}", "--name", f"w{i}", "--threads", "1",
                  "--retry-seconds", "60", "--trace", os.path.join(TMP, f"trace-w{i}.txt"), *extra], f"w{i}-{gen}")


def steps_committed():
    path = os.path.join(RUN, "metrics.jsonl")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        steps = [json.loads(l)["step"] for l in f if '"event":"step"' in l]
    return max(steps) + 1 if steps else 0


def wait_until(pred, what, limit=120):
    end = time.time() + limit
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    fail(f"timed out waiting for {what}")


def ledger_entries():
    """The entry bodies of RUN/ledger.zl, by step (frames: magic, length, body, crc)."""
    with open(os.path.join(RUN, "ledger.zl"), "rb") as f:
        b = f.read()
    at, bodies = 0, []
    while at + 8 <= len(b):
        magic, n = struct.unpack_from("<II", b, at)
        if at + 8 + n + 4 > len(b):
            break
        if at > 0:
            bodies.append(b[at + 8:at + 8 + n])
        at += 8 + n + 4
    return bodies


def check_invariants(steps, max_workers):
    entries = ledger_entries()
    if len(entries) != steps:
        fail(f"the ledger holds {len(entries)} entries, expected {steps}")
    # Replay from the base: the coordinator's final hash.
    rep = subprocess.run([ZEROTH, "replay", "--base", BASE, "--ledger", os.path.join(RUN, "ledger.zl"), "--out",
                          os.path.join(TMP, "replayed")], capture_output=True, text=True)
    if rep.returncode != 0:
        fail(f"replay failed: {rep.stderr}")
    replay_hash = [l.split()[1] for l in rep.stdout.splitlines() if l.startswith("hash:")][0]
    with open(os.path.join(RUN, "summary.json")) as f:
        summary = json.load(f)
    if summary["final_hash"] != replay_hash:
        fail(f"coordinator's final hash {summary['final_hash']} != replay {replay_hash}")
    # The coordinator's hash after each step (metrics; a step may be logged twice
    # around a restart, with the same hash).
    coord = {}
    with open(os.path.join(RUN, "metrics.jsonl")) as f:
        for l in f:
            j = json.loads(l)
            if j.get("event") == "step":
                if j["step"] in coord and coord[j["step"]] != j["hash"]:
                    fail(f"step {j['step']} was committed twice with different hashes")
                coord[j["step"]] = j["hash"]
    applied = checked = 0
    for name in os.listdir(TMP):
        if not name.startswith("trace-"):
            continue
        with open(os.path.join(TMP, name)) as f:
            for line in f:
                parts = line.split()
                if parts[0] != "commit":
                    continue
                s, h, body = int(parts[1]), parts[2], bytes.fromhex(parts[3])
                if s >= len(entries) or entries[s] != body:
                    fail(f"{name} applied an entry for step {s} that is not the ledger's")
                applied += 1
                if h != "-":
                    if s in coord and coord[s] != h:
                        fail(f"{name}: θ hash after step {s} is {h}; the coordinator's is {coord[s]}")
                    checked += s in coord
    # At most max_workers members per step (records carry the member id).
    for s, body in enumerate(entries):
        n = struct.unpack_from("<I", body, 24)[0] if len(body) >= 28 else 0
        members = {struct.unpack_from("<I", body, 28 + 10 * k)[0] for k in range(n)} if n else set()
        if len(members) > max_workers:
            fail(f"step {s} had {len(members)} members, more than max_workers {max_workers}")
    if applied == 0 or checked == 0:
        fail("the traces hold no applied entries: nothing was checked")
    print(f"invariants hold: {steps} entries, replay hash {replay_hash}, {applied} applied entries byte-equal to "
          f"the ledger, {checked} per-step hashes equal to the coordinator's", flush=True)
    return summary


def scenario_workers():
    port, steps, n = free_port(), 200, 8
    coord = spawn(coordinator_args(port, steps, 2, 8), "coordinator")
    ws = {i: worker(port, i) for i in range(n)}
    gens = {i: 0 for i in range(n)}
    kills = 0
    while coord.poll() is None and time.time() - T0 < DEADLINE:
        time.sleep(rng.uniform(0.2, 0.8))
        i = rng.randrange(n)
        if ws[i].poll() is None and steps_committed() < steps - 10:
            ws[i].kill()  # kill -9
            kills += 1
            time.sleep(rng.uniform(0.0, 0.5))
            gens[i] += 1
            ws[i] = worker(port, i, gens[i])
    if coord.wait(timeout=120) != 0:
        fail(f"coordinator exited {coord.returncode}")
    kill_all()
    print(f"{kills} workers killed with SIGKILL and restarted", flush=True)
    if kills < 3:
        fail("fewer than 3 kills happened: the run was too short to test anything")
    check_invariants(steps, 8)


def scenario_coordinator():
    port, steps = free_port(), 120
    coord = spawn(coordinator_args(port, steps, 2, 4), "coordinator-0")
    ws = [worker(port, i) for i in range(4)]
    restarts = 0
    for k in range(3):
        target = rng.randrange(15 + 30 * k, 30 + 30 * k)
        wait_until(lambda: steps_committed() >= target or coord.poll() is not None, f"step {target}")
        if coord.poll() is not None:
            break
        coord.kill()  # kill -9 of the coordinator, mid-step
        coord.wait()
        restarts += 1
        print(f"killed the coordinator at step ~{steps_committed()}", flush=True)
        time.sleep(rng.uniform(0.0, 1.0))
        coord = spawn(coordinator_args(port, steps, 2, 4), f"coordinator-{restarts}")
    if coord.wait(timeout=180) != 0:
        fail(f"restarted coordinator exited {coord.returncode}")
    for w in ws:
        try:
            w.wait(timeout=30)
        except subprocess.TimeoutExpired:
            fail("a worker did not finish after the run completed")
    if restarts < 3:
        fail(f"only {restarts} coordinator restarts happened")
    summary = check_invariants(steps, 4)
    print(f"{restarts} coordinator kills; rejections {summary.get('rejections')}", flush=True)


class Proxy:
    """A userspace TCP proxy that can blackhole: while `hole` is set it stops
    forwarding both ways (bytes wait, as TCP would retransmit them through a
    dead link) and delivers them, late, once healed. `sent` records what the
    first client sent (a captured session, for replay attacks)."""

    def __init__(self, target_port):
        self.target = target_port
        self.sent = bytearray()
        self.recording = True
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.hole = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            c, _ = self.srv.accept()
            try:
                u = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            record, self.recording = self.recording, False
            for a, b, rec in ((c, u, record), (u, c, False)):
                threading.Thread(target=self.pipe, args=(a, b, rec), daemon=True).start()

    def pipe(self, a, b, record):
        try:
            while True:
                while self.hole.is_set():
                    time.sleep(0.01)
                d = a.recv(65536)
                if not d:
                    break
                while self.hole.is_set():
                    time.sleep(0.01)
                if record:
                    self.sent += d
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def status(port):
    r = subprocess.run([ZEROTH, "status", f"127.0.0.1:{port}", "--json"], capture_output=True, text=True, timeout=20)
    return json.loads(r.stdout) if r.returncode == 0 else None


def scenario_partition():
    port, steps = free_port(), 500
    coord = spawn(coordinator_args(port, steps, 2, 4), "coordinator")
    proxy = Proxy(port)
    ws = [worker(port, i) for i in range(2)]
    cut = spawn(["worker", "--join", f"127.0.0.1:{proxy.port}", "--name", "cut", "--threads", "1",
                 "--retry-seconds", "60", "--trace", os.path.join(TMP, "trace-cut.txt")], "cut")
    wait_until(lambda: steps_committed() >= 30, "step 30")
    proxy.hole.set()
    print(f"blackholed the worker 'cut' at step {steps_committed()} for {3 * HEARTBEAT * MISSED:.1f} s", flush=True)
    time.sleep(3 * HEARTBEAT * MISSED)
    st = status(port)
    names = {m["name"]: m["state"] for m in st["members"]} if st else {}
    if names.get("cut") not in ("evicted", None):
        fail(f"the cut-off worker was not evicted: {names}")
    healed_at = steps_committed()
    if healed_at >= steps - 100:
        fail(f"the run was nearly over ({healed_at} of {steps} steps) when healed: nothing left to test")
    proxy.hole.clear()
    print(f"healed at step {healed_at}", flush=True)
    if coord.wait(timeout=180) != 0:
        fail(f"coordinator exited {coord.returncode}")
    kill_all()
    summary = check_invariants(steps, 4)
    rej = summary.get("rejections", {})
    if rej.get("stale_epoch", 0) < 1:
        fail(f"no stale-epoch rejection was counted: {rej}")
    # It came back only through catch-up: a 'ready' line after the heal, and
    # commits after it, in its trace.
    with open(os.path.join(TMP, "trace-cut.txt")) as f:
        lines = [l.split() for l in f]
    readies = [int(l[1]) for l in lines if l[0] == "ready"]
    if len(readies) < 2 or readies[-1] < healed_at:
        fail(f"the healed worker did not catch up again (ready lines at steps {readies})")
    after = [int(l[1]) for l in lines if l[0] == "commit" and int(l[1]) >= readies[-1]]
    if not after:
        fail("the healed worker applied nothing after catching up")
    print(f"evicted, {rej.get('stale_epoch')} stale frames rejected, caught up again at step {readies[-1]}", flush=True)


def scenario_joins():
    port, steps, max_w = free_port(), 80, 4
    coord = spawn(coordinator_args(port, steps, 2, max_w), "coordinator")
    ws = [worker(port, 0), worker(port, 1)]
    for i in range(2, 12):  # ten more join while the run goes on
        time.sleep(rng.uniform(0.05, 0.3))
        ws.append(worker(port, i))
    if coord.wait(timeout=180) != 0:
        fail(f"coordinator exited {coord.returncode}")
    kill_all()
    check_invariants(steps, max_w)
    # Joins happen between steps: a member's records appear only at steps at or
    # after the one it caught up to (its "ready" line names step and member id).
    ready_at = {}
    for i in range(12):
        path = os.path.join(TMP, f"trace-w{i}.txt")
        if os.path.exists(path):
            with open(path) as f:
                for l in f:
                    p = l.split()
                    if p[0] == "ready":
                        ready_at[int(p[3])] = int(p[1])
    entries = ledger_entries()
    seen = 0
    for s, body in enumerate(entries):
        n = struct.unpack_from("<I", body, 24)[0]
        for k in range(n):
            m = struct.unpack_from("<I", body, 28 + 10 * k)[0]
            if m not in ready_at:
                fail(f"member {m} contributed to step {s} without ever catching up")
            if s < ready_at[m]:
                fail(f"member {m} contributed to step {s} before it caught up (at step {ready_at[m]})")
            seen += 1
    refused = sum("the run is full" in open(os.path.join(TMP, n), errors="replace").read()
                  for n in os.listdir(TMP) if n.endswith(".err") and n.startswith("w"))
    print(f"{len(ready_at)} members caught up and joined; {seen} records all after their member's catch-up; "
          f"{refused} joins refused while the waiting room was full", flush=True)

def scenario_status():
    """The status page of a live coordinator in headless Chromium, and `zeroth status`."""
    import shutil
    port, http, steps = free_port(), free_port(), 400
    coord = spawn([a for a in coordinator_args(port, steps, 2, 4) if a != "--no-http"] + ["--http", f"127.0.0.1:{http}"],
                  "coordinator")
    ws = [worker(port, i) for i in range(2)]
    wait_until(lambda: steps_committed() >= 20, "step 20")
    st = subprocess.run([ZEROTH, "status", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=20)
    print(st.stdout, flush=True)
    if st.returncode != 0 or "members: 2" not in st.stdout or " w0 " not in st.stdout or " cpu-x86-64" not in st.stdout:
        fail(f"zeroth status did not show the run: {st.stdout} {st.stderr}")
    chromium = shutil.which("chromium")
    if not chromium:
        coord.wait(timeout=180)
        kill_all()
        print("zeroth status checked; the page itself needs chromium (apt-get install chromium): skipped", flush=True)
        sys.exit(77)
    else:
        def dump():
            profile = tempfile.mkdtemp(dir=TMP)
            r = subprocess.run(["timeout", "-k", "5", "60", chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                                "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                                "--virtual-time-budget=3000", "--dump-dom", f"http://127.0.0.1:{http}/"],
                               capture_output=True, text=True)
            return r.stdout
        import re
        def shown_step(dom):
            m = re.search(r'id="step"[^>]*>([0-9]+)<', dom)
            return int(m.group(1)) if m else None
        first = dump()
        s1 = shown_step(first)
        if s1 is None or s1 < 20 or "w0" not in first or "loss-curve-path" not in first or "<td>cpu-x86-64" not in first:
            fail(f"the page did not render the live run (step shown: {s1})")
        time.sleep(1.0)
        s2 = shown_step(dump())
        if s2 is None or s2 <= s1:
            fail(f"the page's step did not advance ({s1} then {s2})")
        print(f"status page in Chromium: step {s1}, then {s2}; members and loss curve rendered", flush=True)
    coord.wait(timeout=180)
    kill_all()


def scenario_lifecycle():
    """Too few workers: the coordinator fails in time with a clear error. Private
    data: each worker trains on its own shard. SIGTERM: a worker leaves within
    about a second and the run goes on."""
    global RUN
    # 1. min_workers 2, one worker, wait_s 2: a clear failure, non-zero, in time.
    port = free_port()
    RUN = os.path.join(TMP, "lonely")
    args = coordinator_args(port, 50, 2, 4)
    args[args.index("elastic.wait_s=60")] = "elastic.wait_s=2"
    t = time.time()
    coord = spawn(args, "lonely")
    w = worker(port, 99)
    rc = coord.wait(timeout=60)
    took = time.time() - t
    err = open(os.path.join(TMP, "lonely.err")).read()
    if rc == 0 or "fewer than elastic.min_workers = 2 workers" not in err:
        fail(f"one worker for min_workers 2 did not fail clearly (exit {rc})")
    if took > 20:
        fail(f"the coordinator took {took:.1f} s to give up after wait_s = 2")
    w.wait(timeout=20)
    print(f"too few workers: the coordinator failed after {took:.1f} s with a clear error", flush=True)
    # 2. + 3. Private shards, and a worker that gets SIGTERM mid-run.
    RUN = os.path.join(TMP, "run")
    sample = os.path.join(SHARED, "data", "tinystories", "sample.txt")
    docs = open(sample).read().split("<|endoftext|>")
    for i, part in enumerate((docs[:3], docs[2:])):
        with open(os.path.join(TMP, f"shard-{i}.txt"), "w") as f:
            f.write("<|endoftext|>".join(part))
    port, steps = free_port(), 300
    coord = spawn(coordinator_args(port, steps, 2, 4, ["--set", "elastic.data=private"]), "coordinator")
    no_data = spawn(["worker", "--join", f"127.0.0.1:{port}", "--name", "nodata"], "nodata")
    ws = [spawn(["worker", "--join", f"127.0.0.1:{port}", "--name", f"p{i}", "--threads", "1", "--data",
                 os.path.join(TMP, f"shard-{i % 2}.txt"), "--trace", os.path.join(TMP, f"trace-p{i}.txt")], f"p{i}")
          for i in range(3)]
    if no_data.wait(timeout=60) == 0 or "pass --data PATH" not in open(os.path.join(TMP, "nodata.err")).read():
        fail("a worker without --data joined a private-data run")
    wait_until(lambda: steps_committed() >= 40, "step 40")
    t = time.time()
    ws[2].send_signal(signal.SIGTERM)
    rc = ws[2].wait(timeout=10)
    took = time.time() - t
    if rc != 0 or took > 2.0:
        fail(f"SIGTERM: the worker exited {rc} after {took:.2f} s (want 0 within 2 s)")
    at = steps_committed()
    if coord.wait(timeout=180) != 0:
        fail(f"coordinator exited {coord.returncode}")
    kill_all()
    if "p2 (member" not in open(os.path.join(TMP, "coordinator.err")).read().split("left (stopped by a signal)")[0][-200:]:
        fail("the coordinator did not log that p2 left")
    if at >= steps:
        fail("the run was over before the worker left")
    check_invariants(steps, 4)
    print(f"private shards trained; p2 left on SIGTERM in {took:.2f} s at step {at}, the run went on", flush=True)


def token(secret, name, expires="1h"):
    r = subprocess.run([ZEROTH, "token", "issue", "--secret", secret, "--name", name, "--expires", expires],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"zeroth token issue failed: {r.stderr}")
    return r.stdout.strip()


def frames_of(data):
    """Splits a recorded stream into whole frames (header, body, tag when flagged)."""
    out, at = [], 0
    while at + 40 <= len(data):
        n, flags = struct.unpack_from("<II", data, at + 8)
        end = at + 40 + n + (32 if flags & 1 else 0)
        if end > len(data):
            break
        out.append(bytes(data[at:end]))
        at = end
    return out


def scenario_auth():
    """An authenticated run: tokens work; no credential, a forged, an expired
    and a revoked token are refused with clear errors and counted; a captured
    session replayed whole and in shuffled pieces against the live coordinator
    is rejected, and the ledger equals that of the same run without the attack."""
    global RUN
    secret = os.path.join(TMP, "run.secret")
    if subprocess.run([ZEROTH, "token", "secret", secret], capture_output=True).returncode != 0:
        fail("zeroth token secret failed")
    ta, tb = token(secret, "alice"), token(secret, "bob")
    # Lifetimes that would wrap or overflow are refused, naming the flag.
    for bad in ("-1h", "+5m", "99999999999999999999d", "4000d", "0s", "12"):
        r = subprocess.run([ZEROTH, "token", "issue", "--secret", secret, "--name", "x", "--expires", bad],
                           capture_output=True, text=True)
        if r.returncode == 0 or "--expires" not in r.stderr:
            fail(f"zeroth token issue --expires {bad} was accepted or its error does not name the flag: {r.stderr}")
    hashes, ledgers = {}, {}
    for attack in (False, True):
        RUN = os.path.join(TMP, f"run-{'attacked' if attack else 'clean'}")
        port, steps = free_port(), 150
        coord = spawn(coordinator_args(port, steps, 2, 2, ["--secret", secret]), f"coord-{attack}")
        wait_listening(port)
        rec = Proxy(port) if attack else None
        wa = spawn(["worker", "--join", f"127.0.0.1:{rec.port if attack else port}", "--token", ta, "--name", "a",
                    "--threads", "1"], f"a-{attack}")
        wb = spawn(["worker", "--join", f"127.0.0.1:{port}", "--token", tb, "--name", "b", "--threads", "1"],
                   f"b-{attack}")
        if attack:
            wait_until(lambda: steps_committed() >= 30, "step 30")
            # Refusals, each with a clear error.
            for name, args, want in (
                    ("nocred", [], "requires a credential"),
                    ("forged", ["--token", ta.replace("alice", "mallory")], "proof is wrong"),
                    ("expired", ["--token", token(secret, "carol", "1s")], "expired")):
                if name == "expired":
                    time.sleep(2.5)
                p = spawn(["worker", "--join", f"127.0.0.1:{port}", "--threads", "1", "--retry-seconds", "5", *args],
                          name)
                if p.wait(timeout=60) == 0 or want not in open(os.path.join(TMP, name + ".err")).read():
                    fail(f"the {name} worker was not refused with '{want}'")
            # Replay alice's captured session: whole, then shuffled.
            captured = frames_of(rec.sent)
            if len(captured) < 10:
                fail(f"captured only {len(captured)} frames")
            for order in ("whole", "shuffled"):
                frames = list(captured)
                if order == "shuffled":
                    rng.shuffle(frames)
                with socket.create_connection(("127.0.0.1", port)) as sock:
                    sock.settimeout(5)
                    try:
                        sock.sendall(b"".join(frames))
                        while sock.recv(65536):
                            pass
                    except OSError:
                        pass
            st = status_with(port, ta)
            if st["rejections"].get("auth_failed", 0) + st["rejections"].get("unauthenticated", 0) < 4:
                fail(f"the replays and bad credentials were not all counted: {st['rejections']}")
            print(f"refused and counted: {st['rejections']}", flush=True)
        if coord.wait(timeout=180) != 0:
            fail(f"coordinator exited {coord.returncode}")
        for w in (wa, wb):
            w.wait(timeout=30)
        with open(os.path.join(RUN, "summary.json")) as f:
            hashes[attack] = json.load(f)["final_hash"]
        ledgers[attack] = ledger_entries()
    if ledgers[True] != ledgers[False] or hashes[True] != hashes[False]:
        fail(f"the attacked run's ledger differs from the clean one (hashes {hashes})")
    # Revocation: bob is revoked mid-run and cannot come back.
    RUN = os.path.join(TMP, "run-revoke")
    port = free_port()
    coord = spawn(coordinator_args(port, 400, 1, 2, ["--secret", secret]), "coord-revoke")
    wa = spawn(["worker", "--join", f"127.0.0.1:{port}", "--token", ta, "--threads", "1"], "a-revoke")
    wb = spawn(["worker", "--join", f"127.0.0.1:{port}", "--token", tb, "--threads", "1", "--retry-seconds", "5"],
               "b-revoke")
    wait_until(lambda: steps_committed() >= 20, "step 20")
    subprocess.run([ZEROTH, "token", "revoke", "bob", "--run", RUN], check=True, capture_output=True)
    if wb.wait(timeout=30) == 0 or "revoked" not in open(os.path.join(TMP, "b-revoke.err")).read():
        fail("the revoked worker was not dropped with a clear error")
    at = steps_committed()
    if coord.wait(timeout=180) != 0:
        fail(f"coordinator exited {coord.returncode}")
    kill_all()
    print(f"identical ledgers and hash {hashes[True]} with and without the attack; bob revoked at step {at}",
          flush=True)


def wait_listening(port):
    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_until(up, f"the coordinator to listen on {port}", 60)


def status_with(port, tok):
    r = subprocess.run([ZEROTH, "status", f"127.0.0.1:{port}", "--json", "--token", tok], capture_output=True,
                       text=True, timeout=20)
    if r.returncode != 0:
        fail(f"zeroth status failed: {r.stderr}")
    return json.loads(r.stdout)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def scenario_hostile():
    """10^4 frames that declare 4 GiB bodies, from many connections, against an
    authenticated coordinator while honest members train: each connection is
    closed at the header, the coordinator's RSS stays flat, training goes on."""
    global RUN
    secret = os.path.join(TMP, "run.secret")
    subprocess.run([ZEROTH, "token", "secret", secret], check=True, capture_output=True)
    RUN = os.path.join(TMP, "run")
    port, steps = free_port(), 2000
    coord = spawn(coordinator_args(port, steps, 2, 2, ["--secret", secret]), "coordinator")
    ws = [spawn(["worker", "--join", f"127.0.0.1:{port}", "--token", token(secret, f"h{i}"), "--threads", "1"],
                f"h{i}") for i in range(2)]
    wait_until(lambda: steps_committed() >= 20, "step 20")
    rss0, step0 = rss_kib(coord.pid), steps_committed()
    evil = bytearray(struct.pack("<IHHIIQQQ", 0x3150545a, 1, 7, 0xFFFFFFFF, 0, 1, 0, 1))  # a Commit of 4 GiB
    sent = 0
    for burst in range(100):
        socks = []
        for k in range(100):
            try:
                s2 = socket.create_connection(("127.0.0.1", port), timeout=5)
                s2.sendall(evil)
                socks.append(s2)
                sent += 1
            except OSError:
                pass
        for s2 in socks:
            s2.close()
    time.sleep(1.0)
    rss1, step1 = rss_kib(coord.pid), steps_committed()
    if coord.poll() is not None:
        fail("the coordinator died under the flood")
    if step1 <= step0:
        fail("training stopped during the flood")
    if rss1 > rss0 + 32 * 1024:
        fail(f"the coordinator's RSS grew from {rss0} KiB to {rss1} KiB")
    st = status_with(port, token(secret, "observer"))
    oversize = st["rejections"].get("oversize", 0)
    if oversize < 0.9 * sent:
        fail(f"only {oversize} of {sent} oversize frames were counted: {st['rejections']}")
    print(f"rejections counted: {st['rejections']}", flush=True)
    coord.kill()
    kill_all()
    print(f"{sent} frames declaring 4 GiB: coordinator RSS {rss0} → {rss1} KiB; steps {step0} → {step1} meanwhile",
          flush=True)


def scenario_tls():
    """TLS (zeroth token tls; coordinator --tls-cert/--tls-key; worker and
    status --tls --tls-ca): an authenticated run over TLS with 2 workers commits
    the same ledger and hash as the same run in plaintext, and what a worker
    sent (through a recording proxy) holds no frame header and no name in the
    clear. A plaintext worker on the TLS coordinator, a worker with the wrong CA,
    and a TLS worker on the plaintext coordinator are refused with clear errors
    and counted (tls_failed); a key that does not match its certificate stops
    the coordinator before it listens; existing files are never overwritten.
    Workers reconnect, with a new TLS handshake, to a TLS coordinator killed
    (-9) and restarted mid-run."""
    global RUN
    secret = os.path.join(TMP, "run.secret")
    if subprocess.run([ZEROTH, "token", "secret", secret], capture_output=True).returncode != 0:
        fail("zeroth token secret failed")
    ta, tb = token(secret, "alice"), token(secret, "bob")
    mine, other = os.path.join(TMP, "tls"), os.path.join(TMP, "tls-other")
    for d in (mine, other):
        r = subprocess.run([ZEROTH, "token", "tls", "--out", d], capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"zeroth token tls failed: {r.stderr}")
    cert, key = os.path.join(mine, "cert.pem"), os.path.join(mine, "key.pem")
    r = subprocess.run([ZEROTH, "token", "tls", "--out", mine], capture_output=True, text=True)
    if r.returncode == 0 or "already exists" not in r.stderr:
        fail(f"zeroth token tls overwrote {mine} or said nothing clear: {r.stderr}")
    RUN = os.path.join(TMP, "run-badkey")
    bad_key = os.path.join(other, "key.pem")
    r = subprocess.run([ZEROTH] + coordinator_args(free_port(), 10, 1, 1, ["--tls-cert", cert, "--tls-key", bad_key]),
                       capture_output=True, text=True, timeout=60)
    if r.returncode == 0 or f"the key in {bad_key} does not match the certificate in {cert}" not in r.stderr:
        fail(f"a mismatched key was not refused clearly: {r.stderr[-500:]}")
    steps, hashes, ledgers, sent = 60, {}, {}, b""
    for tls in (False, True):
        RUN = os.path.join(TMP, f"run-{'tls' if tls else 'plain'}")
        port = free_port()
        extra = ["--secret", secret] + (["--tls-cert", cert, "--tls-key", key] if tls else [])
        coord = spawn(coordinator_args(port, steps, 2, 2, extra), f"coord-tls-{tls}")
        wait_listening(port)
        with_tls = ["--tls", "--tls-ca", cert] if tls else []
        # Refusals first: the run waits for its two workers meanwhile.
        if tls:
            cases = (("plain-on-tls", [], "this coordinator requires TLS: connect with --tls --tls-ca"),
                     ("wrong-ca", ["--token", ta, "--tls", "--tls-ca", os.path.join(other, "cert.pem")],
                      "certificate was not accepted"))
        else:
            cases = (("tls-on-plain", ["--token", ta, "--tls", "--tls-ca", cert], "does not speak TLS"),)
        for name, args, want in cases:
            p = spawn(["worker", "--join", f"127.0.0.1:{port}", "--threads", "1", "--retry-seconds", "5", *args], name)
            if p.wait(timeout=60) == 0 or want not in open(os.path.join(TMP, name + ".err")).read():
                fail(f"the {name} worker was not refused with '{want}'")
        r = subprocess.run([ZEROTH, "status", f"127.0.0.1:{port}", "--json", "--token", ta, *with_tls],
                           capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            fail(f"zeroth status failed: {r.stderr}")
        st = json.loads(r.stdout)
        if st["tls"] != tls or st["rejections"].get("tls_failed", 0) < len(cases):
            fail(f"the TLS refusals were not counted (tls {st['tls']}): {st['rejections']}")
        print(f"{'TLS' if tls else 'plaintext'} coordinator refused and counted: {st['rejections']}", flush=True)
        rec = Proxy(port) if tls else None
        trace = (lambda w: ["--trace", os.path.join(TMP, f"trace-{w}.txt")]) if tls else (lambda w: [])
        wa = spawn(["worker", "--join", f"127.0.0.1:{rec.port if tls else port}", "--token", ta, "--name", "alice",
                    "--threads", "1", *with_tls, *trace("a")], f"a-tls-{tls}")
        wb = spawn(["worker", "--join", f"127.0.0.1:{port}", "--token", tb, "--name", "bob", "--threads", "1",
                    *with_tls, *trace("b")], f"b-tls-{tls}")
        if coord.wait(timeout=120) != 0:
            fail(f"coordinator exited {coord.returncode}")
        for w in (wa, wb):
            if w.wait(timeout=30) != 0:
                fail(f"a worker of the {'TLS' if tls else 'plaintext'} run exited {w.returncode}")
        with open(os.path.join(RUN, "summary.json")) as f:
            hashes[tls] = json.load(f)["final_hash"]
        ledgers[tls] = ledger_entries()
        if tls:
            check_invariants(steps, 2)
            sent = bytes(rec.sent)
    if ledgers[True] != ledgers[False] or hashes[True] != hashes[False]:
        fail(f"the TLS run's ledger differs from the plaintext one (hashes {hashes})")
    if len(sent) < 1000 or b"ZTP1" in sent or b"alice" in sent:
        fail(f"alice's {len(sent)} bytes on the wire are not opaque (a frame header or her name in the clear)")
    # Reconnects redo TLS: kill -9 the TLS coordinator mid-run and restart it on the same run directory.
    for name in os.listdir(TMP):
        if name.startswith("trace-"):
            os.remove(os.path.join(TMP, name))
    RUN = os.path.join(TMP, "run-tls-restart")
    port = free_port()
    args = coordinator_args(port, steps, 2, 2, ["--secret", secret, "--tls-cert", cert, "--tls-key", key])
    coord = spawn(args, "coord-restart-0")
    ws = [spawn(["worker", "--join", f"127.0.0.1:{port}", "--token", t, "--threads", "1", "--tls", "--tls-ca", cert,
                 "--trace", os.path.join(TMP, f"trace-r{t[4]}.txt")], f"{n}-restart")
          for t, n in ((ta, "a"), (tb, "b"))]
    wait_until(lambda: steps_committed() >= 20, "step 20 before the restart")
    coord.kill()
    coord.wait()
    coord = spawn(args, "coord-restart-1")
    if coord.wait(timeout=120) != 0:
        fail(f"the restarted TLS coordinator exited {coord.returncode}")
    for w in ws:
        if w.wait(timeout=30) != 0:
            fail(f"a worker of the restarted TLS run exited {w.returncode}")
    for n in ("a", "b"):
        if "reconnecting" not in open(os.path.join(TMP, f"{n}-restart.err")).read():
            fail(f"worker {n} did not reconnect after the restart")
    rejoined = open(os.path.join(TMP, "coord-restart-1.err")).read().count(" joined from ")
    if rejoined < 2:
        fail(f"only {rejoined} worker(s) rejoined the restarted TLS coordinator")
    check_invariants(steps, 2)
    kill_all()
    print(f"identical ledgers and hash {hashes[True]} over TLS and in plaintext; alice's {len(sent)} bytes on the "
          f"wire hold no frame header and no name; both workers reconnected over TLS after a kill -9", flush=True)


def scenario_spot():
    """Spot checks. Honest members: at p = 1 over 10^4 checks nobody disagrees
    and nobody is evicted. A liar that sign-flips a fraction q = 0.25 of its
    codes is evicted within the bound p and q give, and only it."""
    global RUN
    # 1. honest: 8 workers, p = 1, until 10^4 checks.
    RUN = os.path.join(TMP, "honest")
    port, steps = free_port(), 1300
    coord = spawn(coordinator_args(port, steps, 8, 8, ["--set", "elastic.spot_p=1"]), "coord-honest")
    ws = [worker(port, i) for i in range(8)]
    if coord.wait(timeout=380) != 0:
        fail(f"coordinator exited {coord.returncode}")
    kill_all()
    with open(os.path.join(RUN, "summary.json")) as f:
        summary = json.load(f)
    err = open(os.path.join(TMP, "coord-honest.err")).read()
    spot = [l for l in err.splitlines() if "spot check" in l]
    checks = steps * 8  # every member checked every step (p = 1), when both delivered
    if spot or "evicted" in err:
        fail(f"honest members were evicted or disagreed: {spot[:3]}")
    # Every check was between two members of this machine's backend class, whose
    # codes must agree exactly (the tolerance calibrated for cpu classes is 0).
    pairs = summary["spot_checks"]["by_backends"]
    if len(pairs) != 1 or not next(iter(pairs)).startswith("cpu-"):
        fail(f"expected one backend class among the honest workers: {pairs}")
    (cls, stats), = pairs.items()
    if stats["checks"] < 10000 or stats["max_code_difference"] != 0 or stats["disagreements"] != 0:
        fail(f"honest {cls} members: {stats}")
    print(f"honest: {stats['checks']} spot checks over {steps} steps between {cls} members, largest code difference "
          f"{stats['max_code_difference']}, no disagreement, no eviction", flush=True)
    # 2. a liar among 6.
    RUN = os.path.join(TMP, "liar")
    port, steps, p, q = free_port(), 400, 0.5, 0.25
    coord = spawn(coordinator_args(port, steps, 2, 6, ["--set", f"elastic.spot_p={p}"]), "coord-liar")
    ws = [worker(port, i) for i in range(5)]
    liar = spawn(["worker", "--join", f"127.0.0.1:{port}", "--name", "liar", "--threads", "1", "--retry-seconds", "5",
                  "--debug-lie", str(q), "--trace", os.path.join(TMP, "trace-liar.txt")], "liar")
    if coord.wait(timeout=300) != 0:
        fail(f"coordinator exited {coord.returncode}")
    kill_all()
    err = open(os.path.join(TMP, "coord-liar.err")).read()
    evicted = [l for l in err.splitlines() if "evicted" in l and "spot checks" in l]
    if not evicted or any("liar" not in l for l in evicted):
        fail(f"expected only the liar to be evicted by spot checks: {evicted}")
    # When: the liar's first ready and its eviction, in steps (the coordinator's log).
    with open(os.path.join(TMP, "trace-liar.txt")) as f:
        ready = min(int(l.split()[1]) for l in f if l.startswith("ready"))
    first = evicted[0]
    applied = [int(l.split()[1]) for l in open(os.path.join(TMP, "trace-liar.txt")) if l.startswith("commit")]
    caught = max(applied) if applied else ready
    # Each step the liar is checked with probability p, and a check of q-falsified
    # codes (q = 1 slot) disagrees with probability q; two partners are needed.
    bound = 10 / (p * q)
    if caught - ready > bound:
        fail(f"the liar was caught after {caught - ready} steps; the bound is {bound:.0f}")
    print(f"the liar (q = {q}) was evicted after {caught - ready} steps (bound {bound:.0f} for p = {p}): {first}",
          flush=True)


def scenario_roles():
    """Roles in an elastic run: --role grad, zo, jvp and auto workers (auto:
    this machine's free memory against its probed backward) under
    roles.grad_slots = 4. The coordinator and `zeroth status` show each role;
    every step's records hold 4 gradient-kind slots per gradient or JVP member
    and 2 zeroth-order slots per ZO member; spot checks pair members of one
    role only, and honest ones agree; the usual invariants hold."""
    # Roles of a fixed member set and mode fo are refused with a message that names the fix.
    for bad, says in ((["--set", "roles.jvp=[0]"], "each volunteer picks its own role"),
                      (["--set", "roles.auto=true"], "each volunteer picks its own role"),
                      (["--set", "mode=fo"], "mode fo is for zeroth train and mpirun jobs")):
        r = subprocess.run([ZEROTH] + coordinator_args(free_port(), 10, 1, 1, bad), capture_output=True, text=True,
                           timeout=60)
        if r.returncode == 0 or says not in r.stderr:
            fail(f"the coordinator accepted {bad} or said something else: {r.stderr[-300:]}")
    # A GPU worker on a machine without a usable GPU says so before it tries to join.
    if "device(s)" not in subprocess.run([ZEROTH, "info"], capture_output=True, text=True, timeout=60).stdout:
        r = subprocess.run([ZEROTH, "worker", "--join", f"127.0.0.1:{free_port()}", "--device", "cuda"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode == 0 or "--device cuda: no usable GPU here" not in r.stderr:
            fail(f"a --device cuda worker without a GPU did not stop with a clear error: {r.stderr[-300:]}")
    port, steps = free_port(), 60
    coord = spawn(coordinator_args(port, steps, 4, 4, ["--set", "roles.grad_slots=4", "--set", "elastic.spot_p=0.5",
                                                       "--set", "elastic.step_deadline_s=30"]), "coordinator")
    roles = {"w0": "grad", "w1": "zo", "w2": "auto", "w3": "jvp"}
    for i, (name, role) in enumerate(roles.items()):
        spawn(["worker", "--join", f"127.0.0.1:{port}", "--name", name, "--threads", "1", "--role", role,
               "--retry-seconds", "60", "--trace", os.path.join(TMP, f"trace-{name}.txt")], f"{name}-0")
    shown = {}
    def all_shown():
        st = status(port)
        if not st:
            return False
        shown.clear()
        shown.update({m["name"]: m.get("role") for m in st["members"] if m["state"] == "active"})
        return len(shown) == 4
    wait_until(all_shown, "four active members in zeroth status")
    auto_log = open(os.path.join(TMP, "w2-0.err")).read()
    want_auto = next((r for r, said in (("grad", "grad member:"), ("jvp", "jvp member:"), ("zo", "zeroth-order member"))
                      if said in auto_log), None)
    if want_auto is None:
        fail(f"the auto worker did not say what it chose: {auto_log[-500:]}")
    want = {"w0": "grad", "w1": "zo", "w2": want_auto, "w3": "jvp"}
    if shown != want:
        fail(f"zeroth status shows roles {shown}, expected {want}")
    txt = subprocess.run([ZEROTH, "status", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=20).stdout
    if not any(" w0 " in l and " grad " in l for l in txt.splitlines()):
        fail(f"zeroth status does not show w0's role:\n{txt}")
    if coord.wait(timeout=300) != 0:
        fail(f"coordinator exited {coord.returncode}")
    kill_all()
    summary = check_invariants(steps, 4)
    # Member ids by name, from the coordinator's log ("w0 (member 0, grad role, 4 slots) is caught up ...").
    err = open(os.path.join(TMP, "coordinator.err")).read()
    ids = {}
    for l in err.splitlines():
        for name in want:
            if f"{name} (member " in l and "is caught up" in l:
                ids[int(l.split(f"{name} (member ")[1].split(",")[0])] = name
    if sorted(ids.values()) != sorted(want):
        fail(f"could not tell the members' ids from the coordinator's log: {ids}")
    slots_seen = {}
    for s, body in enumerate(ledger_entries()):
        n = struct.unpack_from("<I", body, 24)[0]
        per = {}
        for k in range(n):
            member, slot, code, kind = struct.unpack_from("<IIBB", body, 28 + 10 * k)
            per.setdefault(member, []).append((slot, kind))
        for member, recs in per.items():
            role = want[ids[member]]
            kinds = {kind for _, kind in recs}
            if kinds != ({1} if role in ("grad", "jvp") else {0}):
                fail(f"step {s}: member {member} ({role}) sent record kinds {kinds}")
            slots_seen.setdefault(role, set()).add(max(slot for slot, _ in recs) + 1)
    if (max(slots_seen.get("grad", {0})) != 4 or max(slots_seen.get("jvp", {0})) != 4
            or max(slots_seen.get("zo", {0})) != 2):
        fail(f"slots per member per role: {slots_seen} (want grad 4, jvp 4, zo 2)")
    spot = summary["spot_checks"]
    if spot["disagreements"] != 0 or spot["evictions"] != 0:
        fail(f"honest members of one role disagreed: {spot}")
    print(f"roles: status showed {shown}; ledger: gradient and JVP members 4 slots (kind gradient), ZO 2; "
          f"{spot['checks']} spot checks within roles, no disagreement", flush=True)


def scenario_gpu():
    """A GPU worker (--device cuda) beside a CPU worker: after every committed
    step both report the coordinator's θ hash, the ledger replays, and the GPU
    worker says it computes on the GPU. Skipped (77) without a usable GPU; run
    by scripts/device-check on the lent GPU machine."""
    if "device(s)" not in subprocess.run([ZEROTH, "info"], capture_output=True, text=True, timeout=60).stdout:
        print("skipped: no usable GPU here")
        sys.exit(77)
    port, steps = free_port(), 30
    coord = spawn(coordinator_args(port, steps, 2, 2, ["--set", "run.hash_every=1",
                                                       "--set", "elastic.step_deadline_s=30"]), "coordinator")
    worker(port, 0)
    worker(port, 1, extra=("--device", "cuda"))
    if coord.wait(timeout=300) != 0:
        fail(f"coordinator exited {coord.returncode}")
    kill_all()
    check_invariants(steps, 2)
    log = open(os.path.join(TMP, "w1-0.err")).read()
    if "GPU member 0: cuda (cuda-sm" not in log:
        fail(f"the --device cuda worker does not say it runs on the GPU: {log[-500:]}")
    print("gpu: a CUDA worker and a CPU worker kept one θ over TCP", flush=True)


def scenario_hizoo():
    """HiZOO over TCP: every Result frame carries a curvature code per slot
    beside its gradient code, the coordinator commits both kinds, spot checks
    recompute both, and a worker killed mid-run catches up by replaying the
    ledger (the curvature estimate D is state a θ snapshot does not hold)."""
    port, steps = free_port(), 60
    coord = spawn(coordinator_args(port, steps, 3, 3, ["--set", "optimizer.rule=hizoo",
                                                       "--set", "optimizer.hessian_smooth=1e-3",
                                                       "--set", "elastic.spot_p=0.5"]), "coordinator")
    ws = {i: worker(port, i) for i in range(3)}
    wait_until(lambda: steps_committed() >= 20, "20 committed steps")
    ws[1].kill()  # kill -9, then back under the same name
    ws[1] = worker(port, 1, 1)
    if coord.wait(timeout=240) != 0:
        fail(f"coordinator exited {coord.returncode}")
    kill_all()
    kinds = {}
    for body in ledger_entries():
        n = struct.unpack_from("<I", body, 24)[0]
        for k in range(n):
            kind = body[28 + 10 * k + 9]
            kinds[kind] = kinds.get(kind, 0) + 1
    if not kinds.get(2) or not kinds.get(0):
        fail(f"the ledger's record kinds are {kinds}: hizoo commits zeroth-order (0) and curvature (2) records")
    # The restarted worker's trace (its commits, with θ hashes every 5 steps) is
    # checked against the ledger and the coordinator's hashes below.
    print(f"hizoo: record kinds {kinds}", flush=True)
    check_invariants(steps, 3)


try:
    {"hizoo": scenario_hizoo, "gpu": scenario_gpu, "roles": scenario_roles, "spot": scenario_spot, "tls": scenario_tls, "auth": scenario_auth, "hostile": scenario_hostile, "lifecycle": scenario_lifecycle, "status": scenario_status, "workers": scenario_workers, "coordinator": scenario_coordinator, "partition": scenario_partition,
     "joins": scenario_joins}[SCENARIO]()
except KeyError:
    fail(f"unknown scenario {SCENARIO}")
finally:
    kill_all()
print(f"ok: {SCENARIO} ({time.time() - T0:.1f} s)")
