#!/usr/bin/env python3
"""Tables for bench/run-forward: zeroth's forward speed and memory beside the
baselines measured in the same run (Eigen f32 GEMM, the PyTorch peer).

    forward_report.py OUT_DIR   # reads zeroth_forward.json, rss.jsonl, peer.jsonl
"""
import json
import os
import sys


def jsonl(path):
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path) if line.strip()]


def main(out):
    bench = json.load(open(os.path.join(out, "zeroth_forward.json")))
    rss = jsonl(os.path.join(out, "rss.jsonl"))
    peer = jsonl(os.path.join(out, "peer.jsonl"))

    def peer_row(model, mode, tag="openblas+malloc"):
        for r in peer:
            if r["model"] == model and r["mode"] == mode and r["tag"] == tag:
                return r
        return None

    t_fp32 = {"stories260K": peer_row("stories260K", "forward"), "135m": peer_row("smollm135m", "forward")}
    t_int8 = peer_row("smollm135m", "forward_int8")

    print("## Forward, batch 16 x 64 tokens (hidden states + next-token loss on every row)\n")
    print("| model / weights | ms | tokens/s | GFLOP/s | f32 GEMM GFLOP/s | vs f32 GEMM | vs FMA peak | vs PyTorch fp32 | vs PyTorch int8 |")
    print("|---|---|---|---|---|---|---|---|---|")
    gflop_per_token = {}  # per model family, from zeroth's rows: puts the peer on the same FLOP scale
    peak = None
    for b in bench["benchmarks"]:
        if b.get("run_type") == "aggregate" or "error_occurred" in b:
            continue
        name = b["name"].split("/", 1)[1].rsplit("/min_time", 1)[0].rsplit("/real_time", 1)[0]
        fam = "stories260K" if name.startswith("stories260K") else "135m"
        ms = b["real_time"] if b["time_unit"] == "ms" else b["real_time"] * 1e-6
        tps = b["tokens/s"]
        vs_fp32 = f"{tps / t_fp32[fam]['tokens_per_s']:.2f}x" if t_fp32[fam] else "-"
        vs_int8 = f"{tps / t_int8['tokens_per_s']:.2f}x" if (t_int8 and fam == "135m") else "-"
        gflop_per_token[fam] = b["GFLOP/s"] / tps
        peak = b.get("fma_peak_GFLOP/s", peak)
        vs_peak = f"{b['vs_peak']:.2f}" if "vs_peak" in b else "-"
        print(f"| {name} | {ms:.1f} | {tps:,.0f} | {b['GFLOP/s']:.1f} | {b['f32gemm_GFLOP/s']:.1f} | "
              f"{b['vs_f32_gemm']:.2f} | {vs_peak} | {vs_fp32} | {vs_int8} |")
    for label, fam, r in (("PyTorch fp32 stories260K", "stories260K", t_fp32["stories260K"]),
                          ("PyTorch fp32 135M", "135m", t_fp32["135m"]), ("PyTorch int8 135M (onednn)", "135m", t_int8)):
        if r:
            # The same model shape does the same matrix products: zeroth's FLOPs per token.
            g = r["tokens_per_s"] * gflop_per_token[fam] if fam in gflop_per_token else None
            gs = f"{g:.1f}" if g else ""
            vp = f"{g / peak:.2f}" if (g and peak and "int8" not in label) else ""
            print(f"| {label} | {r['median_s'] * 1e3:.1f} | {r['tokens_per_s']:,.0f} | {gs} | | | {vp} | | |")
    ctx = bench.get("context", {})
    print(f"\n{ctx.get('num_cpus', '?')} CPUs, {os.environ.get('OMP_NUM_THREADS', '?')} threads; "
          f"goal: 135M quantized forward >= 1.2x PyTorch int8 (>= 3.5x PyTorch fp32).")
    if peak:
        line = f"f32 FMA peak of this machine on these threads: {peak:.1f} GFLOP/s"
        if t_fp32["135m"] and "135m" in gflop_per_token:
            g = t_fp32["135m"]["tokens_per_s"] * gflop_per_token["135m"]
            line += (f"; PyTorch fp32 runs the 135M forward at {g / peak:.2f} of it, so a forward with f32 "
                     f"arithmetic can be at most {peak / g:.2f}x PyTorch fp32 here")
        print(line + ".")
    if not peer:
        print("PyTorch peer not run (no python3-torch, or NO_PEER).")

    print("\n## Resident memory (one process per row)\n")
    stock = peer_row("smollm135m", "forward", "openblas-stock-malloc")
    print("| model | file MiB | weights MiB | RSS after load | peak after load | peak after forward 16x64 | "
          "peak / file | vs PyTorch forward peak |")
    print("|---|---|---|---|---|---|---|---|")
    def mib(v):
        return f"{v:.0f}" if v else "-"

    for r in rss:
        name = r["model"] if r["model"].startswith("random") else os.path.basename(r["model"])
        file_mib = r.get("file_mib")
        peak_fwd = r.get("peak_after_forward_mib")
        peak = peak_fwd or r["peak_after_load_mib"]
        ratio_file = f"{peak / file_mib:.2f}" if file_mib else "-"
        vs_peer = f"{peak_fwd / stock['peak_rss_mib']:.2f}x" if (stock and peak_fwd and "stories" not in name) else "-"
        print(f"| {name} | {mib(file_mib)} | {r['weight_mib']:.1f} | {mib(r['rss_after_load_mib'])} | "
              f"{mib(r['peak_after_load_mib'])} | {mib(peak_fwd)} | {ratio_file} | {vs_peer} |")
    if stock:
        print(f"| PyTorch fp32 135M forward (stock malloc) | | 513 | {stock['rss_after_model_mib']:.0f} | | "
              f"{stock['peak_rss_mib']:.0f} | | 1.00x |")
    print("\nrandom-135m rows generate f32 weights (513 MiB) before quantizing: their load peak is that, not the model."
          "\ngoal: eval peak RSS <= 0.5x PyTorch's forward peak.")


if __name__ == "__main__":
    main(sys.argv[1])
