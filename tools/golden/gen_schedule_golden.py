#!/usr/bin/python3
"""Writes src/test/resources/golden/optim/hf_schedules.json: every HF lr_scheduler_type, run through torch.

Run with Debian's python3 (torch 1.13):  /usr/bin/python3 tools/golden/gen_schedule_golden.py

transformers is not installed here, so each multiplier of transformers.optimization (get_scheduler) is transcribed
below from its source, one function per scheduler type, and driven through torch's own LambdaLR on an SGD optimizer
exactly as the HF Trainer drives it (lr read before each optimizer step, scheduler.step() after). reduce_lr_on_plateau
is torch's ReduceLROnPlateau itself, stepped with a sequence of evaluation metrics.
"""
import json
import math
import os
import sys

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "src", "test", "resources", "golden", "optim")


def warmup_lambda(step, w):
    return float(step) / float(max(1, w))


def constant(step, w, t, lr0, kw):
    return 1.0


def constant_with_warmup(step, w, t, lr0, kw):
    return warmup_lambda(step, w) if step < w else 1.0


def linear(step, w, t, lr0, kw):
    if step < w:
        return warmup_lambda(step, w)
    return max(0.0, float(t - step) / float(max(1, t - w)))


def cosine(step, w, t, lr0, kw):
    if step < w:
        return warmup_lambda(step, w)
    progress = float(step - w) / float(max(1, t - w))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(kw.get("num_cycles", 0.5)) * 2.0 * progress)))


def cosine_with_restarts(step, w, t, lr0, kw):
    if step < w:
        return warmup_lambda(step, w)
    progress = float(step - w) / float(max(1, t - w))
    if progress >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(kw.get("num_cycles", 1)) * progress) % 1.0))))


def polynomial(step, w, t, lr0, kw):
    lr_end = kw.get("lr_end", 1e-7)
    power = kw.get("power", 1.0)
    if step < w:
        return warmup_lambda(step, w)
    if step > t:
        return lr_end / lr0
    pct_remaining = 1 - (step - w) / (t - w)
    return ((lr0 - lr_end) * pct_remaining ** power + lr_end) / lr0


def inverse_sqrt(step, w, t, lr0, kw):
    timescale = kw.get("timescale") or (w or 10_000)
    if step < w:
        return warmup_lambda(step, w)
    shift = timescale - w
    return 1.0 / math.sqrt((step + shift) / timescale)


def min_lr_rate(kw, lr0):
    return kw["min_lr"] / lr0 if "min_lr" in kw else kw["min_lr_rate"]


def cosine_with_min_lr(step, w, t, lr0, kw):
    if step < w:
        return warmup_lambda(step, w)
    progress = float(step - w) / float(max(1, t - w))
    factor = 0.5 * (1.0 + math.cos(math.pi * float(kw.get("num_cycles", 0.5)) * 2.0 * progress))
    rate = min_lr_rate(kw, lr0)
    return max(0, factor * (1 - rate) + rate)


def cosine_warmup_with_min_lr(step, w, t, lr0, kw):
    step, w, t = float(step), float(w), float(t)
    if step < w:
        if kw.get("warmup_lr_rate") is None:
            return (step + 1.) / max(1., w)
        r = float(kw["warmup_lr_rate"])
        return r + (1.0 - r) * step / max(1, w - 1)
    progress = (step - w + 1.) / max(1., t - w)
    factor = 0.5 * (1.0 + math.cos(math.pi * kw.get("num_cycles", 0.5) * 2.0 * progress))
    rate = min_lr_rate(kw, lr0)
    return max(0, factor * (1 - rate) + rate)


def warmup_stable_decay(step, w, t, lr0, kw):
    decay = kw["num_decay_steps"]
    stable = kw.get("num_stable_steps", t - w - decay)
    warmup_type = kw.get("warmup_type", "linear")
    decay_type = kw.get("decay_type", "cosine")
    min_ratio = kw.get("min_lr_ratio", 0)
    num_cycles = kw.get("num_cycles", 0.5)
    if step < w:
        progress = float(step) / float(max(1, w))
        if warmup_type == "linear":
            f = progress
        elif warmup_type == "cosine":
            f = 0.5 * (1.0 - math.cos(math.pi * progress))
        else:
            f = 1.0 - math.sqrt(1.0 - progress)
        return max(0.0, f * (1.0 - min_ratio) + min_ratio)
    if step < w + stable:
        return 1.0
    if step < w + stable + decay:
        progress = float(step - w - stable) / float(max(1, decay))
        if decay_type == "linear":
            f = 1.0 - progress
        elif decay_type == "cosine":
            f = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
        else:
            f = 1.0 - math.sqrt(progress)
        return max(0.0, f * (1.0 - min_ratio) + min_ratio)
    return min_ratio


FUNCS = {f.__name__: f for f in (linear, cosine, cosine_with_restarts, polynomial, constant, constant_with_warmup,
                                  inverse_sqrt, cosine_with_min_lr, cosine_warmup_with_min_lr, warmup_stable_decay)}

KWARGS = {
    "linear": [{}],
    "cosine": [{}, {"num_cycles": 1.5}],
    "cosine_with_restarts": [{}, {"num_cycles": 3}],
    "polynomial": [{}, {"lr_end": 1e-5, "power": 2.0}],
    "constant": [{}],
    "constant_with_warmup": [{}],
    "inverse_sqrt": [{}, {"timescale": 7}],
    "cosine_with_min_lr": [{"min_lr_rate": 0.1}, {"min_lr": 5e-5, "num_cycles": 0.25}],
    "cosine_warmup_with_min_lr": [{"min_lr_rate": 0.1}, {"min_lr": 2e-5, "warmup_lr_rate": 0.2}],
    "warmup_stable_decay": [{"num_decay_steps": 4}, {"num_decay_steps": 3, "decay_type": "1-sqrt",
                                                      "warmup_type": "cosine", "min_lr_ratio": 0.1},
                            {"num_decay_steps": 2, "num_stable_steps": 3, "decay_type": "linear",
                             "warmup_type": "1-sqrt"}],
}

SHAPES = ((10, 0), (10, 3), (7, 2), (20, 5), (1, 0), (33, 4), (6, 6))  # (total steps, warmup steps)


def lambda_cases(lr0=2e-4):
    cases = []
    for kind, kw_list in KWARGS.items():
        for kw in kw_list:
            for total, w in SHAPES:
                if kind == "polynomial" and total == w:
                    continue  # HF divides by zero at step == total there
                if kind == "warmup_stable_decay" and "num_stable_steps" not in kw and total - w - kw[
                        "num_decay_steps"] < 0:
                    continue
                p = torch.nn.Parameter(torch.zeros(1))
                opt = torch.optim.SGD([p], lr=lr0)
                f = FUNCS[kind]
                sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: f(s, w, total, lr0, kw))
                lrs = []
                for _ in range(total + 2):
                    lrs.append(opt.param_groups[0]["lr"])
                    opt.step()
                    sched.step()
                cases.append({"type": kind, "learning_rate": lr0, "total_steps": total, "warmup_steps": w,
                              "kwargs": kw, "lrs": lrs})
    return cases


def plateau_cases(lr0=1e-3):
    metrics = [2.0, 1.5, 1.5, 1.6, 1.49995, 1.7, 1.8, 1.2, 1.3, 1.3, 1.3, 1.3, 1.25, 1.3, 1.3, 1.3, 1.3, 1.3]
    cases = []
    for kw in ({"patience": 1}, {"patience": 2, "factor": 0.5, "cooldown": 2, "min_lr": 2e-4},
               {"mode": "max", "patience": 0, "threshold": 0.01, "threshold_mode": "abs"},
               {"patience": 1, "factor": 0.5, "threshold": 0.0, "eps": 1e-3}):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=lr0)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
        lrs = []
        for m in metrics:
            sched.step(m)
            lrs.append(opt.param_groups[0]["lr"])
        cases.append({"type": "reduce_lr_on_plateau", "learning_rate": lr0, "kwargs": kw, "metrics": metrics,
                      "lrs_after_each_eval": lrs})
    return cases


def main():
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "hf_schedules.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"torch_version": torch.__version__, "lambda_cases": lambda_cases(),
                   "plateau_cases": plateau_cases()}, f, indent=1)
        f.write("\n")
    print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main()
