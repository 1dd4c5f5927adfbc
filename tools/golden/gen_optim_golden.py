#!/usr/bin/python3
"""Writes the golden files for io.sftnative.optim (AdamW, clip_grad_norm_, LR schedules).

Run with Debian's python3 (torch 1.13):  /usr/bin/python3 tools/golden/gen_optim_golden.py
Outputs src/test/resources/golden/optim/{adamw_fp32,adamw_bf16,schedules}.json.

AdamW and clipping come from torch itself (torch.optim.AdamW, torch.nn.utils.clip_grad_norm_) with HF Trainer's
two parameter groups (weight decay / no weight decay). transformers is not installed here, so the LR multipliers
are re-implemented from transformers.optimization's documented definitions (get_scheduler with LambdaLR).
"""
import json
import math
import os
import sys

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "src", "test", "resources", "golden", "optim")


# ---- transformers.optimization LR multipliers (lr = base_lr * multiplier(step)) ----
def warmup_steps(total, warmup_steps_, warmup_ratio):
    # TrainingArguments.get_warmup_steps: explicit steps win over the ratio; the ratio is rounded up
    return warmup_steps_ if warmup_steps_ > 0 else math.ceil(total * warmup_ratio)


def multiplier(kind, step, total, warmup):
    if kind == "constant":
        return 1.0
    if step < warmup:
        return float(step) / float(max(1, warmup))
    if kind == "constant_with_warmup":
        return 1.0
    if kind == "linear":
        return max(0.0, float(total - step) / float(max(1, total - warmup)))
    if kind == "cosine":
        num_cycles = 0.5
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))
    raise ValueError(kind)


def schedules():
    cases = []
    for kind in ("linear", "cosine", "constant", "constant_with_warmup"):
        for total, ws, wr in ((10, 0, 0.0), (10, 3, 0.0), (10, 0, 0.25), (7, 2, 0.5), (1, 0, 0.0), (100, 0, 0.1),
                              (5, 8, 0.0), (33, 0, 0.03)):
            w = warmup_steps(total, ws, wr)
            cases.append({"type": kind, "total_steps": total, "warmup_steps": ws, "warmup_ratio": wr,
                          "num_warmup": w,
                          "multipliers": [multiplier(kind, s, total, w) for s in range(total + 2)]})
    return cases


# ---- AdamW + clipping through torch itself ----
NAMES = [  # (name, shape); decay follows HF Trainer's get_decay_parameter_names
    ("model.layers.0.self_attn.q_proj.weight", (4, 3)),
    ("model.layers.0.self_attn.q_proj.bias", (4,)),
    ("model.layers.0.input_layernorm.weight", (3,)),
    ("model.norm.weight", (3,)),
    ("lm_head.weight", (5, 3)),
]
NO_DECAY = {"model.layers.0.self_attn.q_proj.bias", "model.layers.0.input_layernorm.weight", "model.norm.weight"}


def flat(t):
    return [float(x) for x in t.detach().float().reshape(-1).tolist()]


def lerp_adamw_trajectory(params, groups_wd, grads, lrs, betas, eps, max_norm):
    """torch >= 2.1's _single_tensor_adam(decoupled_weight_decay=True) op by op (first moment by lerp_), run with
    torch 1.13's kernels: the Java port must reproduce this bit for bit."""
    beta1, beta2 = betas
    state = {n: (torch.zeros_like(p), torch.zeros_like(p)) for n, p in params.items()}
    out = []
    with torch.no_grad():
        for k, lr in enumerate(lrs):
            for n, p in params.items():
                p.grad = grads[k][n].clone()
            torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm)
            for n, p in params.items():
                exp_avg, exp_avg_sq = state[n]
                step = float(k + 1)
                if groups_wd[n] != 0:
                    p.mul_(1 - lr * groups_wd[n])
                exp_avg.lerp_(p.grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                bias_correction1 = 1 - beta1 ** step
                bias_correction2 = 1 - beta2 ** step
                step_size = lr / bias_correction1
                bias_correction2_sqrt = bias_correction2 ** 0.5
                denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                p.addcdiv_(exp_avg, denom, value=-step_size)
                p.grad = None
            out.append({n: flat(p) for n, p in params.items()})
    return out


def adamw_case(dtype, steps=6, lr=1e-2, wd=0.1, betas=(0.9, 0.95), eps=1e-8, max_norm=1.0,
               schedule="cosine", total=8, warmup=2):
    g = torch.Generator().manual_seed(1234)
    params = {n: torch.randn(s, generator=g).to(dtype).requires_grad_(True) for n, s in NAMES}
    init = {n: flat(p) for n, p in params.items()}
    grads = []
    for k in range(steps):
        # some steps have a total norm > max_norm (clipped), some < (left alone)
        scale = 2.0 if k % 2 == 0 else 0.05
        grads.append({n: (torch.randn(s, generator=g) * scale).to(dtype) for n, s in NAMES})
    groups = [
        {"params": [params[n] for n, _ in NAMES if n not in NO_DECAY], "weight_decay": wd},
        {"params": [params[n] for n, _ in NAMES if n in NO_DECAY], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: multiplier(schedule, s, total, warmup))
    records = []
    for k in range(steps):
        for n, p in params.items():
            p.grad = grads[k][n].clone()
        used_lr = opt.param_groups[0]["lr"]
        norm = torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm)
        opt.step()
        sched.step()
        records.append({"lr": used_lr, "grad_norm": float(norm),
                        "params": {n: flat(p) for n, p in params.items()}})
        opt.zero_grad(set_to_none=True)
    g2 = torch.Generator().manual_seed(1234)
    fresh = {n: torch.randn(s, generator=g2).to(dtype) for n, s in NAMES}
    lerp_steps = lerp_adamw_trajectory(fresh, {n: (0.0 if n in NO_DECAY else wd) for n, _ in NAMES}, grads,
                                       [r["lr"] for r in records], betas, eps, max_norm)
    state = {}
    for n, p in params.items():
        st = opt.state[p]
        state[n] = {"step": float(st["step"]), "exp_avg": flat(st["exp_avg"]), "exp_avg_sq": flat(st["exp_avg_sq"])}
    return {
        "torch_version": torch.__version__,
        "dtype": str(dtype).replace("torch.", ""),
        "lr": lr, "weight_decay": wd, "beta1": betas[0], "beta2": betas[1], "eps": eps, "max_grad_norm": max_norm,
        "schedule": schedule, "total_steps": total, "warmup_steps": warmup,
        "names": [n for n, _ in NAMES], "shapes": {n: list(s) for n, s in NAMES}, "no_decay": sorted(NO_DECAY),
        "init": init,
        "grads": [{n: flat(t) for n, t in gk.items()} for gk in grads],
        "steps": records,
        "lerp_steps": lerp_steps,
        "final_state": state,
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {
        "adamw_fp32.json": adamw_case(torch.float32),
        "adamw_bf16.json": adamw_case(torch.bfloat16),
        "schedules.json": {"cases": schedules()},
    }
    for name, data in files.items():
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        print("wrote", os.path.join(OUT, name), file=sys.stderr)


if __name__ == "__main__":
    main()
