#!/usr/bin/python3
"""Writes src/test/resources/golden/optim/adamw_8bit.json: bitsandbytes' AdamW8bit (HF optim adamw_8bit) trajectory.

Run with Debian's python3 (torch 1.13):  /usr/bin/python3 tools/golden/gen_adam8bit_golden.py

bitsandbytes is not installed here (and its optimizer kernels are CUDA code), so the update is transcribed from its
sources at 95f9af3, op for op, in IEEE fp32 torch tensors:
  * bitsandbytes/functional.py create_dynamic_map(signed=True) for state1, (signed=False) for state2, evaluated with
    the exact fp32 linspace rule of ../shared/specs/quantization-and-fused-ce.md §2.3;
  * bitsandbytes/optim/optimizer.py Optimizer2State: 8-bit state (uint8 zeros, absmax zeros, block 256) only for
    tensors with numel >= min_8bit_size (4096), otherwise fp32 state and the 32-bit update;
  * csrc/kernels.cu kOptimizerStatic8bit2StateBlockwise<T, ADAM, 256, 1> (8-bit) and kOptimizer32bit2State<T, ADAM>
    (32-bit), including the padding of a partial last block, the NaN/inf-gradient branch, weight decay after the
    update, quantize_2D's binary search and the sign fix of state1.
powf(beta, step) is the fp32 rounding of the double power (bitsandbytes' CUDA build uses the approximate __powf).
Initial parameters and gradients come from a 31-bit LCG (values(seed, n, shift): integers in [-32768, 32768) times
2^-shift, exact in fp32) that the Java test regenerates, so only the results are stored: parameter, codes and absmax
after step 1 and after the last step, as base64 of little-endian bytes (float32 / uint8 / bfloat16 bits as int16).
"""
import base64
import json
import math
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "src", "test", "resources", "golden", "optim")
F32 = torch.float32
BLOCK = 256
MIN_8BIT_SIZE = 4096
FLT_MAX = float(np.finfo(np.float32).max)


def values(seed, n, shift):
    """The LCG stream shared with AdamW8bitGoldenTest: x = (x * 1103515245 + 12345) mod 2^31."""
    x, out = seed, []
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(((x >> 8) & 0xFFFF) - 32768)
    return torch.tensor(out, dtype=F32) * (2.0 ** -shift)


def f32(x):
    return torch.tensor(x, dtype=F32)


def dynamic_map(signed):
    vals = []
    for i in range(7):
        n = 2 ** i + 1 if signed else 2 ** (i + 1) + 1
        start, end = np.float32(0.1), np.float32(1.0)
        step = np.float32((end - start) / np.float32(n - 1))
        # single rounding of start + step*j (j < n/2) or end - step*(n-1-j): the double result is exact (<= 53 bits)
        b = [np.float32(float(start) + float(step) * j) if j < n // 2 else np.float32(float(end) - float(step) * (n - 1 - j))
             for j in range(n)]
        scale = np.float32(10.0 ** (i - 6))
        for j in range(n - 1):
            m = np.float32(np.float32(b[j] + b[j + 1]) / np.float32(2.0))
            vals.append(np.float32(scale * m))
            if signed:
                vals.append(np.float32(-np.float32(scale * m)))
    vals += [np.float32(0.0), np.float32(1.0)]
    assert len(vals) == 256
    return torch.tensor(sorted(float(v) for v in vals), dtype=F32)


def quantize_2d(code, x, signed):
    """csrc/kernels.cu quantize_2D<SIGNED>: the binary search, literally (quadrants = code[63], code[127], code[191])."""
    pivot = torch.full(x.shape, 127, dtype=torch.long)
    upper_pivot = torch.full(x.shape, 255, dtype=torch.long)
    lower_pivot = torch.zeros(x.shape, dtype=torch.long)
    lower = torch.full(x.shape, -1.0 if signed else 0.0, dtype=F32)
    upper = torch.full(x.shape, 1.0, dtype=F32)
    val = code[pivot]
    i = 64
    while i > 0:
        up = x > val
        lower_pivot = torch.where(up, pivot, lower_pivot)
        lower = torch.where(up, val, lower)
        upper_pivot = torch.where(up, upper_pivot, pivot)
        upper = torch.where(up, upper, val)
        pivot = torch.where(up, pivot + i, pivot - i)
        val = code[pivot]
        i >>= 1
    up = x > val
    mid_up = (upper + val) * f32(0.5)
    mid_lo = (lower + val) * f32(0.5)
    res = torch.where(up, torch.where(x > mid_up, upper_pivot, pivot), torch.where(x < mid_lo, lower_pivot, pivot))
    return res


def rnd(x, dtype):
    """The kernel's (T)(float) conversion: round to the parameter dtype, computed on in fp32."""
    return x.to(dtype).to(F32)


def scalars(beta1, beta2, eps, step, lr, wd):
    b1, b2 = np.float32(beta1), np.float32(beta2)
    c1 = f32(1.0) - f32(math.pow(float(b1), step))
    c2 = torch.sqrt(f32(1.0) - f32(math.pow(float(b2), step)))
    step_size = (-f32(lr) * c2) / c1
    return dict(b1=f32(b1), b2=f32(b2), omb1=f32(1.0) - f32(b1), omb2=f32(1.0) - f32(b2), eps=f32(eps), lr=f32(lr),
                c2=c2, step_size=step_size, decay=f32(1.0) - f32(lr) * f32(wd), has_decay=wd > 0)


def step_8bit(st, p, g, s, q1, q2, dtype):
    """kOptimizerStatic8bit2StateBlockwise, ADAM, gnorm_scale 1. p, g: fp32 views of the dtype values."""
    n = p.numel()
    nb = (n + BLOCK - 1) // BLOCK
    pad = nb * BLOCK - n
    gp = torch.cat([g, torch.zeros(pad, dtype=F32)]).view(nb, BLOCK)
    c1 = torch.cat([st["state1"], torch.full((pad,), 128, dtype=torch.uint8)]).long().view(nb, BLOCK)
    c2 = torch.cat([st["state2"], torch.zeros(pad, dtype=torch.uint8)]).long().view(nb, BLOCK)
    finite = torch.isfinite(gp)
    gs = gp * f32(1.0)
    v = q2[c2] * st["absmax2"].view(nb, 1)
    v = (v * s["b2"]) + ((s["omb2"] * gs) * gs)
    m = q1[c1] * st["absmax1"].view(nb, 1)
    m = (m * s["b1"]) + (s["omb1"] * gs)
    m = torch.where(finite, m, f32(0.0))
    v = torch.where(finite, v, f32(0.0))

    def bmax(t):  # fmaxf from -FLT_MAX: NaN ignored
        a = torch.where(torch.isnan(t), f32(-FLT_MAX), t.abs())
        return torch.maximum(a.amax(dim=1), f32(-FLT_MAX))

    am1, am2 = bmax(m), bmax(v)
    st["absmax1"], st["absmax2"] = am1, am2
    mf, vf, fin = m.reshape(-1)[:n], v.reshape(-1)[:n], finite.reshape(-1)[:n]
    upd = rnd(p + (s["step_size"] * (mf / (torch.sqrt(vf) + (s["c2"] * s["eps"])))), dtype)
    if s["has_decay"]:
        upd = rnd(upd * s["decay"], dtype)
    p_new = torch.where(fin, upd, p)
    x1 = (m / am1.view(nb, 1)).reshape(-1)[:n]
    x2 = (v / am2.view(nb, 1)).reshape(-1)[:n]
    k1 = quantize_2d(q1, x1, True)
    k2 = quantize_2d(q2, x2, False)
    flip = torch.signbit(q1[k1]) != torch.signbit(mf)
    k1 = torch.where(flip, torch.where(mf > 0, k1 + 1, k1 - 1), k1) % 256
    st["state1"], st["state2"] = k1.to(torch.uint8), k2.to(torch.uint8)
    return p_new


def step_32bit(st, p, g, s, dtype):
    """kOptimizer32bit2State, ADAM, gnorm_scale 1, max_unorm 0, skip_zeros False."""
    gs = rnd(f32(1.0) * g, dtype)
    m = st["state1"] * s["b1"] + (s["omb1"] * gs)
    v = st["state2"] * s["b2"] + (s["omb2"] * (gs * gs))
    pn = rnd(p + ((f32(1.0) * s["step_size"]) * (m / (torch.sqrt(v) + (s["eps"] * s["c2"])))), dtype)
    if s["has_decay"]:
        pn = rnd(pn * s["decay"], dtype)
    st["state1"], st["state2"] = m, v
    return pn


def b64(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        arr = t.view(torch.int16).numpy().astype("<i2")
    elif t.dtype == torch.uint8:
        arr = t.numpy().astype("u1")
    else:
        arr = t.numpy().astype("<f4")
    return base64.b64encode(arr.tobytes()).decode("ascii")


def main():
    q1, q2 = dynamic_map(True), dynamic_map(False)
    params = [  # name, shape, dtype, weight decay (HF groups: none for biases and norms)
        ("model.layers.0.mlp.up_proj.weight", (90, 50), torch.float32, 0.01),   # 8-bit, partial last block
        ("model.layers.0.mlp.down_proj.weight", (64, 64), torch.bfloat16, 0.01),  # exactly min_8bit_size: 8-bit
        ("model.layers.0.mlp.up_proj.bias", (300,), torch.float32, 0.0),       # below min_8bit_size: 32-bit
        ("model.norm.weight", (4095,), torch.float32, 0.0),                     # one below: 32-bit
    ]
    lrs = [1e-3, 8e-4, 6e-4, 4e-4]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    out = {"beta1": beta1, "beta2": beta2, "eps": eps, "lrs": lrs, "min_8bit_size": MIN_8BIT_SIZE,
           "qmap1": b64(q1), "qmap2": b64(q2), "params": []}
    for pi, (name, shape, dtype, wd) in enumerate(params):
        n = int(np.prod(shape))
        p = values(1000 * pi, n, 19).to(dtype)  # |p| < 0.0625
        entry = {"name": name, "shape": list(shape), "dtype": str(dtype).replace("torch.", ""), "weight_decay": wd,
                 "results": {}}
        eight = n >= MIN_8BIT_SIZE
        if eight:
            nb = (n + BLOCK - 1) // BLOCK
            st = {"state1": torch.zeros(n, dtype=torch.uint8), "state2": torch.zeros(n, dtype=torch.uint8),
                  "absmax1": torch.zeros(nb, dtype=F32), "absmax2": torch.zeros(nb, dtype=F32)}
        else:
            st = {"state1": torch.zeros(n, dtype=F32), "state2": torch.zeros(n, dtype=F32)}
        pf = p.to(F32)
        for k, lr in enumerate(lrs):
            step = k + 1
            g = values(1000 * pi + step, n, 20 if k % 2 == 0 else 22)
            if step == 2 and eight:  # the Java test repeats these edits (the 32-bit kernel has no NaN branch)
                g[5] = float("nan")
                g[200] = float("inf")
            if step == 3 and n > 512:
                g[256:512] = 0.0  # one whole block of zero gradient
            g = g.to(dtype)
            s = scalars(beta1, beta2, eps, step, lr, wd)
            gf = g.to(F32)
            pf = step_8bit(st, pf, gf, s, q1, q2, dtype) if eight else step_32bit(st, pf, gf, s, dtype)
            if step == 1 or step == len(lrs):
                rec = {"param": b64(pf.to(dtype))}
                rec.update({key: b64(val) for key, val in st.items()})
                entry["results"][str(step)] = rec
        out["params"].append(entry)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "adamw_8bit.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
