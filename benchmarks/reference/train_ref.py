#!/usr/bin/python3
"""The reference side of the end-to-end benchmark: plain eager PyTorch (Debian's python3-torch 1.13), one mode.

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 benchmarks/reference/train_ref.py --work WORK --mode full-padded-plain

It reads WORK/plan.json (written by io.sftnative.bench.Harness) and trains the same random-init checkpoint on the
same batches with the same hyper-parameters as sft-native's trainer, the way a PyTorch user writes it:
  - the model is tools/golden/hf_reference.py (transformers' Qwen2 modeling code, eager attention: torch 1.13 has
    no F.scaled_dot_product_attention, so attention is matmul + additive mask + softmax, as HF's "eager" path);
    RMSNorm, RoPE, GQA (here 8 KV heads = no grouping), SwiGLU, untied LM head, fp32;
  - loss: full logits, then F.cross_entropy over the shifted labels (-100 ignored), summed and divided by the target
    tokens of the whole accumulated batch, backward per micro-batch (HF's num_items_in_batch);
  - LoRA: PEFT's lora.Linear, y = base(x) + B(A(x)) * alpha / r, base frozen, starting from WORK/adapter_init;
  - torch.nn.utils.clip_grad_norm_, torch.optim.AdamW with HF Trainer's two parameter groups (no weight decay for
    biases and norm weights), HF's learning-rate schedule, torch.set_num_threads(threads).
The batches come pre-collated from WORK/data/batches-LAYOUT.jsonl (sft-native's pipeline, order and collator), so
both sides see identical token ids; they are turned into tensors before the clock starts, as a prefetching
DataLoader would. Writes WORK/results/reference-MODE.json (same fields as the Java side's).
"""
import argparse
import json
import os
import re
import sys
import time

START = time.time()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "golden"))
import gen_optim_golden as sched  # noqa: E402
import hf_reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

IGNORE = -100


def decays(name):
    """HF Trainer's get_decay_parameter_names by name (no decay: biases and norm weights)."""
    return re.search(r"bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)", name.lower()) is None


def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def machine_busy_seconds():
    """CPU seconds all processes of the machine spent busy (/proc/stat, all CPUs; not idle, not iowait)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return sum(int(v) for i, v in enumerate(fields) if i not in (3, 4)) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system


def gemm_rate(reps=3, n=2048):
    x, y = torch.randn(n, n), torch.randn(n, n)
    torch.mm(x, y)
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(x, y)
        best = max(best, 2.0 * n ** 3 / (time.perf_counter() - t0))
    return best


def blas_libraries():
    seen = []
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if "/" in line else ""
            if "blas" in path and path not in seen:
                seen.append(path)
    return seen


def load_batches(path):
    """Micro-batches per step as tensors: (ids, labels, mask, pos), each (B, T) int64, plus per-step counts."""
    steps = {}
    with open(path) as f:
        for line in f:
            b = json.loads(line)
            shape = (b["B"], b["T"])
            t = [torch.tensor(b[k], dtype=torch.long).view(shape)
                 for k in ("input_ids", "labels", "attention_mask", "position_ids")]
            steps.setdefault(b["step"], []).append(t)
    return [steps[k] for k in sorted(steps)]


def lora_linear(base, lora, scaling):
    """PEFT's lora.Linear.forward (dropout 0): base(x) + lora_B(lora_A(x)) * scaling."""
    def proj(module, x):
        y = F.linear(x, base[module + ".weight"], base.get(module + ".bias"))
        if module in lora:
            a, b = lora[module]
            y = y + F.linear(F.linear(x, a), b) * scaling
        return y
    return proj


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--mode", required=True)
    args = ap.parse_args()
    plan = json.load(open(os.path.join(args.work, "plan.json")))
    s = plan["settings"]
    ft, layout, loss_kind = args.mode.split("-")
    if loss_kind != "plain":
        raise SystemExit("the reference has no fused cross-entropy (torch 1.13): run the plain mode")
    torch.set_num_threads(s["threads"])
    torch.manual_seed(s["seed"])

    cfg = json.load(open(os.path.join(plan["model_dir"], "config.json")))
    base, _ = st.load(os.path.join(plan["model_dir"], "model.safetensors"))
    base = {k: v.clone() for k, v in base.items()}  # own memory, not the file's buffer
    if ft == "full":
        for v in base.values():
            v.requires_grad_(True)
        trainable = base
        proj = None
    else:
        acfg = json.load(open(os.path.join(plan["adapter_init"], "adapter_config.json")))
        tensors, _ = st.load(os.path.join(plan["adapter_init"], "adapter_model.safetensors"))
        trainable = {k: v.clone().requires_grad_(True) for k, v in tensors.items()}
        lora = {}
        for k in trainable:
            m = re.fullmatch(r"base_model\.model\.(.+)\.lora_A\.weight", k)
            if m:
                module = m.group(1)
                lora[module] = (trainable[k], trainable["base_model.model." + module + ".lora_B.weight"])
        scaling = acfg["lora_alpha"] / acfg["r"]
        proj = lora_linear(base, lora, scaling)

    groups = [{"params": [t for k, t in trainable.items() if decays(k)], "weight_decay": s["weightDecay"]},
              {"params": [t for k, t in trainable.items() if not decays(k)], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    opt = torch.optim.AdamW(groups, lr=s["learningRate"], betas=(0.9, 0.999), eps=1e-8)
    steps = load_batches(plan["layouts"][layout]["batches"])
    total = len(steps)
    warm = sched.warmup_steps(total, 0, s["warmupRatio"])
    params = list(trainable.values())

    gemm_before = gemm_rate()
    setup = time.time() - START
    records, peak = [], -1
    t_train = time.perf_counter()
    for i, micro in enumerate(steps):
        busy0, own0 = machine_busy_seconds(), own_cpu_seconds()
        t0 = time.perf_counter()
        total_targets = max(1, sum(int((lab[:, 1:] != IGNORE).sum()) for _, lab, _, _ in micro))
        lr = s["learningRate"] * sched.multiplier(s["scheduler"], i, total, warm)
        for g in opt.param_groups:
            g["lr"] = lr
        step_sum, tokens = 0.0, 0
        for ids, labels, mask, pos in micro:
            logits = ref.forward(cfg, base, ids, pos, ref.visible_mask(cfg, attention_mask=mask), proj)  # (B, T, V)
            shift = torch.cat([labels[:, 1:], torch.full((labels.shape[0], 1), IGNORE, dtype=torch.long)], dim=1)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), shift.reshape(-1),
                                   ignore_index=IGNORE, reduction="sum")
            (loss / total_targets).backward()
            step_sum += float(loss)
            tokens += int((mask != 0).sum())
        norm = float(torch.nn.utils.clip_grad_norm_(params, s["maxGradNorm"]))
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        others = (machine_busy_seconds() - busy0 - (own_cpu_seconds() - own0)) / (dt * os.cpu_count())
        records.append({"step": i + 1, "seconds": dt, "loss": step_sum / total_targets, "lr": lr, "grad_norm": norm,
                        "targets": total_targets, "tokens": tokens, "rss_bytes": status_kb("VmRSS") * 1024,
                        "others_cpu_share": max(0.0, others), "cpu_seconds": own_cpu_seconds() - own0})
        if i + 1 == total:
            peak = status_kb("VmHWM") * 1024
        print("step %d/%d  %.2f s  loss %.4f" % (i + 1, total, dt, step_sum / total_targets), flush=True)
    train_seconds = time.perf_counter() - t_train
    gemm_after = gemm_rate()

    result = {
        "side": "reference", "mode": args.mode,
        "implementation": "eager PyTorch %s (tools/golden/hf_reference.py), torch.optim.AdamW, threads %d, BLAS %s"
                          % (torch.__version__, torch.get_num_threads(), ", ".join(blas_libraries()) or "?"),
        "threads": torch.get_num_threads(), "status": "COMPLETED", "steps": records, "setup_seconds": setup,
        "train_call_seconds": train_seconds, "process_seconds": time.time() - START, "peak_rss_bytes": peak,
        "peak_rss_process_bytes": status_kb("VmHWM") * 1024, "gemm_flops_before": gemm_before,
        "gemm_flops_after": gemm_after, "messages": [], "load_average": "%.2f" % os.getloadavg()[0],
        "blas": blas_libraries(),
    }
    out = os.path.join(args.work, "results", "reference-%s.json" % args.mode)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(out + ".tmp", out)
    print("wrote", out)


if __name__ == "__main__":
    main()
