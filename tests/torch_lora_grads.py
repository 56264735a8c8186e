#!/usr/bin/env python3
"""zeroth's LoRA gradients on stories260K against PyTorch autograd.

    torch_lora_grads.py LORA_GRAD_DUMP SHARED_DIR

Runs tests/tools/lora_grad_dump (zeroth's backward through the frozen base)
and the PyTorch LLaMA of SHARED_DIR/peers/torch_mezo/llama.py with the same
LoRA factors (q and v of every layer), tokens and LM loss, then compares
∂L/∂A and ∂L/∂B per tensor by normalized error max|zeroth − torch| / max|torch|.
Tolerance 1e-4 on the f32 base (both sides are float32; measured ~1e-6).
Exit 77 (skip) when torch or SHARED_DIR is absent.
"""
import json
import os
import subprocess
import sys
import tempfile

TOL = 1e-4


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    dump, shared = sys.argv[1], sys.argv[2]
    model_path = os.path.join(shared, "models", "stories260K", "stories260K.bin")
    peer = os.path.join(shared, "peers", "torch_mezo")
    if not os.path.isfile(model_path) or not os.path.isfile(os.path.join(peer, "llama.py")):
        print(f"skip: {shared} has no stories260K model or torch peer")
        return 77
    try:
        import torch  # noqa: F401
    except ImportError:
        print("skip: PyTorch is not installed (apt-get install python3-torch; run with /usr/bin/python3)")
        return 77
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, peer)
    import llama as peer_llama

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "grads.json")
        for checkpoint in (False, True):
            cmd = [dump, model_path, out] + (["--checkpoint"] if checkpoint else [])
            subprocess.run(cmd, check=True)
            with open(out) as f:
                z = json.load(f)
            if not checkpoint:
                ref = z
            elif z["dA"] != ref["dA"] or z["dB"] != ref["dB"]:
                print("FAIL: checkpointed gradients differ from keep-all ones")
                return 1

    torch.manual_seed(0)
    model = peer_llama.load_llama2c(model_path)
    model.add_lora(r=int(ref["rank"]), alpha=float(ref["alpha"]))
    with torch.no_grad():
        for i, layer in enumerate(model.layers):
            for name, mod in (("q", layer.attn.wq), ("v", layer.attn.wv)):
                key = f"layers.{i}.{name}"
                mod.lora_A.copy_(torch.tensor(ref["A"][key]).view_as(mod.lora_A))
                mod.lora_B.copy_(torch.tensor(ref["B"][key]).view_as(mod.lora_B))
    toks = torch.tensor(ref["tokens"], dtype=torch.long)
    logits = model(toks[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), toks[:, 1:].reshape(-1))
    loss.backward()

    worst = 0.0
    print(f"loss: zeroth {ref['loss']:.7f}  torch {loss.item():.7f}")
    ok = abs(ref["loss"] - loss.item()) <= 1e-5 * abs(loss.item())
    for i, layer in enumerate(model.layers):
        for name, mod in (("q", layer.attn.wq), ("v", layer.attn.wv)):
            key = f"layers.{i}.{name}"
            for part, grad in (("A", mod.lora_A.grad), ("B", mod.lora_B.grad)):
                mine = torch.tensor(ref["d" + part][key]).view_as(grad)
                err = ((mine - grad).abs().max() / grad.abs().max()).item()
                worst = max(worst, err)
                print(f"  {key}.lora_{part}: max|dz - dtorch| / max|dtorch| = {err:.2e}  (max|g| {grad.abs().max().item():.3e})")
    print(f"worst normalized error {worst:.2e} (tolerance {TOL:.0e}); checkpointed == keep-all: yes")
    ok = ok and worst <= TOL
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
