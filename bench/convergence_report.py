#!/usr/bin/env python3
"""The table of bench/run-convergence: forward passes to the reference's accuracy,
final dev and test accuracy (mean ± sd over seeds), bytes per member per step and
train ÷ eval peak RSS, per task, from the runs under OUT (one folder per task,
method and seed; each holds config.yaml, metrics.jsonl and summary.json)."""
import argparse
import json
import math
import os
import statistics
import subprocess

LABELS = {
    "sgd": "MeZO-SGD (reference: best grid cell)",
    "momentum": "ZO-SGD + momentum (β 0.9, lr ÷ 10)",
    "sign": "ZO-signSGD",
    "adam": "ZO-Adam",
    "adamezo": "AdaMeZO (horizon 16)",
    "muon": "ZO-Muon (Newton–Schulz, 5 steps)",
    "allora": "MeZO-SGD + ALLoRA row lr",
    "lisa": "ZO-Adam on LISA's sampled layers",
    "q4": "MeZO-SGD, q 4 slots per member (lr × 2)",
    "hizoo": "HiZOO (curvature-shaped perturbations, α 1e-4)",
    "adam-epsdecay": "ZO-Adam, ε decaying to ε/10",
    "lozo": "MeZO-SGD, LOZO rank-2 z (subspace kept 10 steps)",
    "fo": "mode fo: backprop + AdamW (ceiling)",
}


def read_config(path):
    """The two levels of `zeroth train`'s resolved config.yaml that the table needs
    (section: {key: scalar}); values stay strings except integers and booleans."""
    cfg, section = {}, None
    for line in open(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.strip().partition(":")
        value = value.strip()
        if not line.startswith(" "):
            section = cfg.setdefault(key, {}) if not value else None
            if value:
                cfg[key] = value
        elif section is not None and line.startswith("  ") and not line.startswith("   "):
            section[key] = int(value) if value.lstrip("-").isdigit() else \
                {"true": True, "false": False}.get(value, value)
    return cfg


def load_run(path):
    cfg = read_config(os.path.join(path, "config.yaml"))
    evals = {}
    seconds = 0.0
    step_seconds = {0: 0.0}
    for line in open(os.path.join(path, "metrics.jsonl")):
        j = json.loads(line)
        if j.get("event") == "step":
            seconds += j.get("step_seconds", 0.0)
            step_seconds[j["step"] + 1] = seconds
        elif j.get("event") == "eval" and j.get("split") == "dev" and "accuracy" in j:
            evals[j["step"]] = j["accuracy"]
    summary = json.load(open(os.path.join(path, "summary.json")))
    rss_kib = int(open(path + ".rss").read().split()[-1])
    members, zo = cfg["run"]["members"], cfg["zo"]
    if cfg.get("mode", "zo") == "fo":
        fp_per_step = members  # one forward (and one backward) per member
    else:
        # central: θ ± εz per slot, plus θ itself for hizoo's curvature; forward differences
        # on shared samples: θ + εz per slot and θ once; on per-slot samples: both per slot.
        q, rule = zo["q"], cfg["optimizer"].get("rule", "sgd")
        if zo["central"]:
            per_member = 2 * q + (1 if rule == "hizoo" else 0)
        else:
            per_member = q + 1 if zo.get("share_samples", True) else 2 * q
        fp_per_step = members * per_member
    return {"cfg": cfg, "evals": evals, "step_seconds": step_seconds, "summary": summary, "rss_mib": rss_kib / 1024,
            "fp_per_step": fp_per_step}


def mean_sd(xs):
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    if not xs:
        return "—"
    if len(xs) == 1:
        return f"{100 * xs[0]:.1f}"
    return f"{100 * statistics.mean(xs):.1f} ± {100 * statistics.stdev(xs):.1f}"


def first_reach(runs, target):
    """The first eval step after step 0 where the seeds' mean dev accuracy reaches target, or None."""
    steps = sorted(set.intersection(*(set(r["evals"]) for r in runs)))
    for s in steps:
        if s == 0:
            continue
        if statistics.mean(r["evals"][s] for r in runs) >= target - 1e-12:
            return s
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tasks", default="sst2-16")
    ap.add_argument("--methods", default="sgd")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--grid", default="")
    ap.add_argument("--long", default="")
    ap.add_argument("--zeroth", default="")
    a = ap.parse_args()
    seeds = a.seeds.split()
    if a.zeroth:
        info = subprocess.run([a.zeroth, "info"], capture_output=True, text=True).stdout
        simd = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("cpu kernels")), "?")
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        print(f"Machine: {cpu}, {os.cpu_count()} cores, zeroth's CPU kernels: {simd}\n")
    for task in a.tasks.split():
        root = os.path.join(a.out, task)
        eval_rss = load_run(os.path.join(root, "eval", f"seed{seeds[0]}"))["rss_mib"]
        lr, eps = open(os.path.join(root, "reference")).read().split()
        print(f"## {task}\n")
        if a.grid:
            print("Reference grid (MeZO-SGD, seed " + seeds[0] + "): " + "; ".join(
                f"lr {c.split(':')[0]} ε {c.split(':')[1]}: dev "
                f"{100 * load_run(os.path.join(root, 'grid-' + c.replace(':', '-'), 'seed' + seeds[0]))['summary']['dev_after'].get('accuracy', float('nan')):.1f}%"
                for c in a.grid.split()) + f". Chosen by final dev accuracy: lr {lr}, ε {eps}.\n")
        runs = {}
        for m in a.methods.split():
            paths = [os.path.join(root, m, f"seed{s}") for s in seeds]
            if all(os.path.exists(os.path.join(p, "summary.json")) for p in paths):
                runs[m] = [load_run(p) for p in paths]
        if "sgd" not in runs:
            print("(no reference runs)\n")
            continue
        ref = runs["sgd"]

        def mean_curve(rs):
            steps = sorted(set.intersection(*(set(r["evals"]) for r in rs)))
            return [(st, statistics.mean(r["evals"][st] for r in rs)) for st in steps]

        def best(rs):
            return max(((acc, -st) for st, acc in mean_curve(rs) if st > 0), default=(float("nan"), 0))

        start = statistics.mean(r["evals"].get(0, float("nan")) for r in ref)
        target, ref_best_step = best(ref)
        ref_best_step = -ref_best_step
        final_ref = statistics.mean(r["summary"]["dev_after"]["accuracy"] for r in ref)
        if not target > start:
            print(f"The reference did not learn: its best mean dev accuracy {100 * target:.1f}% is not above the "
                  f"start's {100 * start:.1f}%. Widen the grid (GRID) or the budget (STEPS); forward passes to "
                  "the target mean nothing here.\n")
        ref_step = first_reach(ref, target)
        ref_fp = ref_step * ref[0]["fp_per_step"] if ref_step is not None else None
        steps = ref[0]["cfg"]["run"]["steps"]
        print(f"Target: the reference's dev-selected accuracy, its best mean dev accuracy over the run: "
              f"{100 * target:.1f}% at step {ref_best_step} (start {100 * start:.1f}%, final {100 * final_ref:.1f}%). "
              f"Budget {steps} steps; dev accuracy every {ref[0]['cfg']['run']['eval_every']} steps on "
              f"{ref[0]['summary']['dev_after']['examples']} examples; test accuracy at the end of each run on "
              f"{ref[0]['summary'].get('test_after', {}).get('examples', 0)} examples.\n")
        print("| method | forward passes to target (÷ reference) | wall s to target | best mean dev % (step) | "
              "final dev acc % | final test acc % | record bytes / member / step | train ÷ eval peak RSS |")
        print("|---|---|---|---|---|---|---|---|")
        for m, rs in runs.items():
            reach = first_reach(rs, target)
            if reach is None:
                fp = "not reached"
                wall = "—"
            else:
                f = reach * rs[0]["fp_per_step"]
                fp = f"{f:,}" + (f" ({f / ref_fp:.2f})" if ref_fp else "")
                wall = f"{statistics.mean(r['step_seconds'].get(reach, float('nan')) for r in rs):.0f}"
            b_acc, b_step = best(rs)
            dev = mean_sd([r["summary"]["dev_after"].get("accuracy") for r in rs])
            test = mean_sd([r["summary"].get("test_after", {}).get("accuracy") for r in rs])
            by = rs[0]["summary"].get("record_bytes_per_member_per_step")
            by = f"{by:.1f}" if by is not None else \
                f"{4 * rs[0]['summary']['trainable_parameters']:,} (fp32 gradient)"
            rss = statistics.mean(r["rss_mib"] for r in rs) / eval_rss
            print(f"| {LABELS.get(m, m)} | {fp} | {wall} | {100 * b_acc:.1f} ({-b_step}) | {dev} | {test} | {by} | "
                  f"{rss:.2f} |")
        print(f"\nEval-only peak RSS: {eval_rss:.0f} MiB. Dev curves (mean over seeds, step: accuracy %):\n")
        for m, rs in runs.items():
            steps_seen = sorted(set.intersection(*(set(r["evals"]) for r in rs)))
            curve = ", ".join(f"{s}: {100 * statistics.mean(r['evals'][s] for r in rs):.1f}" for s in steps_seen)
            print(f"- {m}: {curve}")
        for spec in a.long.split():
            m, f = spec.split(":")
            p = os.path.join(root, f"long-{m}-x{f}", f"seed{seeds[0]}")
            if not os.path.exists(os.path.join(p, "summary.json")):
                continue
            r = load_run(p)
            losses, scales = [], []
            for line in open(os.path.join(p, "metrics.jsonl")):
                j = json.loads(line)
                if j.get("event") == "step":
                    losses.append(j["loss"])
                    scales.append(j["scale"])
            q = max(1, len(losses) // 10)
            first, last = statistics.mean(losses[:q]), statistics.mean(losses[-q:])
            print(f"\nStability, {m} for {f} × the budget ({len(losses)} steps, seed {seeds[0]}): train loss "
                  f"{first:.3f} (first tenth) → {last:.3f} (last tenth), codec scale {scales[0]:.3g} → "
                  f"max {max(scales):.3g} → {scales[-1]:.3g}, final dev "
                  f"{100 * r['summary']['dev_after']['accuracy']:.1f}%, test "
                  f"{100 * r['summary'].get('test_after', {}).get('accuracy', float('nan')):.1f}%.")
        print()


if __name__ == "__main__":
    main()
