#!/usr/bin/env python3
"""Compact table of bench/run-zo's figures from the raw files in OUT_DIR:
step.jsonl (zo_step_ratio), rss.jsonl (rss_train), replay.json
(zeroth_bench_optim), peer.jsonl (PyTorch MeZO peer). Every ratio is between
figures of the same run."""
import json
import os
import sys


def lines(path):
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip()]


def t(s):
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def main(out):
    rows = ["| figure | measured | ratio | target |", "|---|---|---|---|"]
    for r in lines(os.path.join(out, "step.jsonl")):
        name = f"{r['model']} {r['task']}, q {r['q']} × B {r['batch']} × T {r['seq']} ({r['rows']} rows, {r['threads']} thr)"
        rows.append(f"| {name}: ZO step ÷ plain forward | {t(r['step_s'])} vs {t(r['fwd_s'])} | "
                    f"**{r['step_over_fwd']:.2f}** (per-rep median {r['step_over_fwd_per_rep_median']:.2f}) | ≤ 1.10 |")
        rows.append(f"| … LoRA forward (θ, no perturbation) ÷ plain forward | {t(r['fwd_lora_s'])} | "
                    f"{r['fwd_lora_over_fwd']:.2f} | |")
        rows.append(f"| … step + update ÷ plain forward | update {t(r['apply_s'])} | {r['step_apply_over_fwd']:.2f} | |")
        if "naive_s" in r:
            rows.append(f"| … naive MeZO step ÷ plain forward | {t(r['naive_s'])} (forwards {t(r['naive_fwd_s'])}, "
                        f"in-place ±εz {t(r['naive_perturb_s'])}) | {r['naive_over_fwd']:.2f} | |")
            rows.append(f"| … zeroth step ÷ naive MeZO step (update in both) | | **{r['step_over_naive']:.2f}** | < 1 |")
    rss = {r["mode"]: r for r in lines(os.path.join(out, "rss.jsonl"))}
    if "eval" in rss and "train" in rss:
        e, tr = rss["eval"], rss["train"]
        rows.append(f"| {e['model']}: peak RSS train ÷ eval ({e['rows']} rows) | {tr['peak_mib']:.0f} vs "
                    f"{e['peak_mib']:.0f} MiB | **{tr['peak_mib'] / e['peak_mib']:.3f}** | ≤ 1.2 |")
    rp = os.path.join(out, "replay.json")
    if os.path.exists(rp):
        for b in json.load(open(rp)).get("benchmarks", []):
            if b.get("run_type") == "aggregate":
                continue
            rows.append(f"| replay 10^4 steps, {b.get('label', '')} ({b['params']:.0f} params, "
                        f"{b['name'].split('threads:')[1].split('/')[0]} thr) | "
                        f"{b['steps_per_s']:,.0f} steps/s, {b['param_records_per_s'] / 1e9:.2f} G param·records/s | "
                        f"fused ÷ stepwise {b['fused_over_stepwise']:.2f} | |")
    peer = {r["mode"]: r for r in lines(os.path.join(out, "peer.jsonl"))}
    if "forward" in peer and "mezo_lora" in peer:
        f, m = peer["forward"], peer["mezo_lora"]
        rows.append(f"| PyTorch MeZO-LoRA step (B {m['batch']}) ÷ its forward over {f['batch']} × {f['seq']} | "
                    f"{t(m['median_s'])} vs {t(f['median_s'])} | {m['median_s'] / f['median_s']:.2f} | (peer) |")
    elif peer:
        rows.append("| PyTorch peer | incomplete (see stderr) | | |")
    print("\n".join(rows))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
