#!/usr/bin/python3
"""Writes src/test/resources/golden/optim/{sgd,adafactor}.json: HF's optim sgd and adafactor trajectories.

Run with Debian's python3 (torch 1.13):  /usr/bin/python3 tools/golden/gen_optimizers_golden.py

sgd is torch.optim.SGD itself (the HF Trainer's optim=sgd, no momentum) with HF's two parameter groups. transformers
is not installed here, so Adafactor.step is transcribed below from transformers.optimization.Adafactor, restricted to
what the Trainer's optim=adafactor sets (scale_parameter=False, relative_step=False, beta1=None, eps=(1e-30, 1e-3),
clip_threshold=1.0, decay_rate=-0.8), op for op.
"""
import json
import math
import os
import sys

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "src", "test", "resources", "golden", "optim")
NAMES = [("model.layers.0.self_attn.q_proj.weight", (4, 3)), ("model.layers.0.self_attn.q_proj.bias", (4,)),
         ("model.norm.weight", (3,)), ("lm_head.weight", (5, 3))]
NO_DECAY = {"model.layers.0.self_attn.q_proj.bias", "model.norm.weight"}


def flat(t):
    return [float(x) for x in t.detach().float().reshape(-1).tolist()]


def rms(t):
    return t.norm(2) / (t.numel() ** 0.5)


def adafactor_step(p, grad, state, lr, wd):
    factored = len(grad.shape) >= 2
    if len(state) == 0:
        state["step"] = 0
        if factored:
            state["row"] = torch.zeros(grad.shape[:-1]).to(grad)
            state["col"] = torch.zeros(grad.shape[:-2] + grad.shape[-1:]).to(grad)
        else:
            state["sq"] = torch.zeros_like(grad)
    state["step"] += 1
    beta2t = 1.0 - math.pow(state["step"], -0.8)
    update = (grad ** 2) + 1e-30
    if factored:
        state["row"].mul_(beta2t).add_(update.mean(dim=-1), alpha=(1.0 - beta2t))
        state["col"].mul_(beta2t).add_(update.mean(dim=-2), alpha=(1.0 - beta2t))
        r = (state["row"] / state["row"].mean(dim=-1, keepdim=True)).rsqrt_().unsqueeze(-1)
        c = state["col"].unsqueeze(-2).rsqrt()
        update = torch.mul(r, c)
        update.mul_(grad)
    else:
        state["sq"].mul_(beta2t).add_(update, alpha=(1.0 - beta2t))
        update = state["sq"].rsqrt().mul_(grad)
    update.div_((rms(update) / 1.0).clamp_(min=1.0))
    update.mul_(lr)
    if wd != 0:
        p.add_(p, alpha=(-wd * lr))
    p.add_(-update)


def case(kind, steps=5, lr=1e-2, wd=0.1):
    g = torch.Generator().manual_seed(99)
    params = {n: torch.randn(s, generator=g) for n, s in NAMES}
    init = {n: flat(p) for n, p in params.items()}
    grads = [{n: torch.randn(s, generator=g) * (3.0 if k % 2 else 0.1) for n, s in NAMES} for k in range(steps)]
    records = []
    if kind == "sgd":
        ps = {n: p.clone().requires_grad_(True) for n, p in params.items()}
        opt = torch.optim.SGD([{"params": [ps[n] for n, _ in NAMES if n not in NO_DECAY], "weight_decay": wd},
                               {"params": [ps[n] for n, _ in NAMES if n in NO_DECAY], "weight_decay": 0.0}], lr=lr)
        for k in range(steps):
            for n, p in ps.items():
                p.grad = grads[k][n].clone()
            opt.step()
            records.append({n: flat(p) for n, p in ps.items()})
    else:
        states = {n: {} for n, _ in NAMES}
        with torch.no_grad():
            for k in range(steps):
                for n, p in params.items():
                    adafactor_step(p, grads[k][n].clone(), states[n], lr, 0.0 if n in NO_DECAY else wd)
                records.append({n: flat(p) for n, p in params.items()})
    return {"torch_version": torch.__version__, "optim": kind, "lr": lr, "weight_decay": wd,
            "names": [n for n, _ in NAMES], "shapes": {n: list(s) for n, s in NAMES}, "no_decay": sorted(NO_DECAY),
            "init": init, "grads": [{n: flat(t) for n, t in gk.items()} for gk in grads], "steps": records}


def main():
    os.makedirs(OUT, exist_ok=True)
    for kind in ("sgd", "adafactor"):
        path = os.path.join(OUT, kind + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(case(kind), f, indent=1)
            f.write("\n")
        print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main()
