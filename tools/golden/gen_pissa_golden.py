#!/usr/bin/python3
"""Writes the PiSSA golden file src/test/resources/golden/pissa/expected.safetensors (committed; tests never run Python).

Run from the repository root with Debian's python3-torch 1.13 (NOT a pyenv python; PEFT is not installed there):
    /usr/bin/python3 tools/golden/gen_pissa_golden.py
PEFT's LoraLayer.pissa_init (tuners/lora/layer.py) transcribed for init_lora_weights="pissa" (fan_in_fan_out False):
    V, S, Uh = torch.linalg.svd(W.float(), full_matrices=False)
    Vr = V[:, :r]; Sr = S[:r] / scaling; Uhr = Uh[:r]
    lora_A = diag(sqrt(Sr)) @ Uhr; lora_B = Vr @ diag(sqrt(Sr)); W_res = W - scaling * lora_B @ lora_A
and, for "pissa_niter_N", the randomised SVD of torch.svd_lowrank(W, q=r, niter=N) (Halko et al. Algorithm 4.4 +
5.1, as torch 2.x's _lowrank.py computes it for M=None: a wide W is handled as its transpose) with its Gaussian test matrix drawn from a generator seeded
with 0 (sft-native's Pissa.FAST_SVD_SEED; PEFT uses torch's global generator, so no fixed value reproduces PEFT).
Keys: full.<path>.lora_A / lora_B / residual, fast16.<path>.lora_A / lora_B (N = 16, LLaMA-Factory's
default pissa_iter) for every projection of layer 0 and 1 of the llama_gqa golden checkpoint, r = 4, alpha = 8.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io as st  # noqa: E402

MODEL = os.path.join("src", "test", "resources", "golden", "model", "llama_gqa", "checkpoint")
OUT = os.path.join("src", "test", "resources", "golden", "pissa")
PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
R, ALPHA = 4, 8
NITER = 16


def svd_lowrank(a, q, niter, seed=0):
    """torch.svd_lowrank(a, q, niter) of current torch (2.x _lowrank.py: a wide matrix is handled as its transpose),
    M=None, with a seeded test matrix: U (m, q), S (q), V (n, q)."""
    wide = a.shape[0] < a.shape[1]
    if wide:
        a = a.t()
    n = a.shape[1]
    r = torch.randn(n, q, generator=torch.Generator().manual_seed(seed), dtype=a.dtype)
    basis = torch.linalg.qr(a @ r).Q
    for _ in range(niter):
        basis = torch.linalg.qr(a.t() @ basis).Q
        basis = torch.linalg.qr(a @ basis).Q
    b = basis.t() @ a
    u, s, vh = torch.linalg.svd(b, full_matrices=False)
    u, v = basis @ u, vh.t()
    return (v, s, u) if wide else (u, s, v)


def pissa(weight, r, scaling, niter=None):
    weight = weight.to(torch.float32)
    if niter is None:
        V, S, Uh = torch.linalg.svd(weight.data, full_matrices=False)
        Vr = V[:, :r]
        Sr = S[:r]
        Sr /= scaling
        Uhr = Uh[:r]
    else:
        Vr, Sr, Ur = svd_lowrank(weight.data, r, niter)
        Sr /= scaling
        Uhr = Ur.t()
    lora_A = torch.diag(torch.sqrt(Sr)) @ Uhr
    lora_B = Vr @ torch.diag(torch.sqrt(Sr))
    residual = weight.data - scaling * lora_B @ lora_A
    return lora_A, lora_B, residual


def main():
    with open(os.path.join(MODEL, "config.json")) as f:
        cfg = json.load(f)
    p, _ = st.load(os.path.join(MODEL, "model.safetensors"))
    scaling = ALPHA / R
    out = {}
    for li in range(cfg["num_hidden_layers"]):
        for t in PROJ:
            path = "model.layers.%d.%s.%s" % (li, "mlp" if t in ("gate_proj", "up_proj", "down_proj") else "self_attn", t)
            w = p[path + ".weight"]
            for tag, niter in (("full", None), ("fast16", NITER)):
                a, b, res = pissa(w, R, scaling, niter)
                out["%s.%s.lora_A" % (tag, path)] = a.contiguous()
                out["%s.%s.lora_B" % (tag, path)] = b.contiguous()
                if niter is None:  # the fast one's residual is W - scaling * B @ A of the factors above
                    out["%s.%s.residual" % (tag, path)] = res.contiguous()
    os.makedirs(OUT, exist_ok=True)
    st.save(os.path.join(OUT, "expected.safetensors"), out)
    print("pissa golden:", len(out), "tensors; randn(3) of seed 0:", torch.randn(3, generator=torch.Generator().manual_seed(0)))


if __name__ == "__main__":
    main()
