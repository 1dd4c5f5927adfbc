#!/usr/bin/env python3
"""GPU check of sft-native's CUDA kernels (issue 5, item 6).

On a GPU machine with nvcc and PyTorch (no JDK, no network needed) this script
  1. builds libsftnative_cuda.so from native/ (CMake when present, else nvcc + g++ directly) and runs CTest,
  2. checks the CUDA kernels through ctypes against PyTorch references of the spec's semantics
     (NF4/FP4 codes and absmax bit-exact, dequantized fp32/bf16/fp16 bit-exact, 8-bit blockwise codes,
     fused cross-entropy loss and gradients vs torch.nn.functional.cross_entropy on shifted labels),
  3. measures GB/s of dequantize/quantize/cross-entropy against the device copy bandwidth measured in the
     same run, and fused vs unfused linear cross-entropy time and peak memory at vocab 151936,
  4. prints a summary and writes it as JSON (--out).

`--device cpu` runs the same checks against the CPU kernels (libsftnative.so) with PyTorch on the CPU: a smoke
test of the harness and references on machines without a GPU.

Usage: python3 benchmarks/gpu_check.py [--device cuda|cpu] [--build-dir DIR] [--lib PATH] [--out FILE] [--quick]
"""
import argparse
import ctypes
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
NATIVE = ROOT / "native"

NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
       -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
       0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]
NF4_T = [-0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544, -0.23460740596055984,
         -0.13791173323988914, -0.045525018125772476, 0.03979014977812767, 0.1202552504837513, 0.2035212516784668,
         0.2920137718319893, 0.3893125355243683, 0.5016634166240692, 0.6427869200706482, 0.8614784181118011]
FP4_MAG = [0.0, 0.005208333333, 0.66666667, 1.0, 0.33333333, 0.5, 0.16666667, 0.25]
FP4_T = [0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333]
FP4_ORDER = [0, 1, 6, 7, 4, 5, 2, 3]
NF4_ID, FP4_ID = 2, 1


def f32_literal(v: float) -> float:
    """The fp32 value a C/CUDA literal `<repr(v)>f` has: the decimal rounded once, straight to fp32.

    torch.tensor([v]) rounds twice (decimal -> double -> fp32) and for NF4's top threshold 0.8614784181118011, which
    lies within 1e-17 of the midpoint between two fp32 values, that lands one ulp above the kernels' literal.
    """
    from decimal import Decimal
    d = Decimal(repr(v))
    c = torch.tensor([v], dtype=torch.float32)
    cands = [c, torch.nextafter(c, torch.tensor([math.inf])), torch.nextafter(c, torch.tensor([-math.inf]))]
    return float(min(cands, key=lambda t: abs(Decimal(float(t)) - d)))
DTYPES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


# ---------------------------------------------------------------------------------------------------- build
def run(cmd, cwd=None):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=cwd, check=True)


def build(build_dir: Path, device: str) -> Path:
    lib_name = "libsftnative_cuda.so" if device == "cuda" else "libsftnative.so"
    build_dir.mkdir(parents=True, exist_ok=True)
    if shutil.which("cmake"):
        run(["cmake", "-S", NATIVE, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
             "-DSFTNATIVE_CUDA=" + ("ON" if device == "cuda" else "OFF")])
        run(["cmake", "--build", build_dir, "--parallel"])
        run(["ctest", "--test-dir", build_dir, "--output-on-failure"])
        return build_dir / lib_name
    # No CMake: the same sources and flags by hand (CTest is then skipped).
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        sys.exit("need CMake, or g++ (with nvcc) to build the library")
    flags = ["-O3", "-std=c++17", "-fPIC", "-fvisibility=hidden", "-ffp-contract=off", "-fno-math-errno",
             "-I", NATIVE / "include"]
    isa = {"kernels_avx2.cpp": ["-mavx2", "-mfma", "-mf16c"],
           "kernels_avx512.cpp": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma", "-mf16c"]}
    srcs = [NATIVE / "src/common.cpp"] + sorted((NATIVE / "src/cpu").glob("*.cpp"))
    objs = []
    for s in srcs:
        if device == "cuda" and s.name == "cuda_stubs.cpp":
            continue
        extra = isa.get(s.name, [])
        if s.name == "dispatch.cpp":
            extra = ["-DSFTN_HAVE_AVX2", "-DSFTN_HAVE_AVX512"]
        o = build_dir / (s.stem + ".o")
        run([cxx, *flags, *extra, "-c", s, "-o", o])
        objs.append(o)
    link = ["-static-libstdc++", "-static-libgcc", "-Wl,--exclude-libs,ALL",
            "-Wl,--version-script=" + str(NATIVE / "src/exports.map"), "-lpthread"]
    out = build_dir / lib_name
    if device == "cuda":
        nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
        cu = sorted((NATIVE / "src/cuda").glob("*.cu"))
        run([nvcc, "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC,-fvisibility=hidden", "-fmad=false",
             "-cudart", "static", "-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90",
             "-gencode", "arch=compute_90,code=compute_90", "-I", NATIVE / "include", *cu, *objs,
             "-o", out, "-Xlinker", "--version-script=" + str(NATIVE / "src/exports.map"), "-lpthread", "-ldl"])
    else:
        run([cxx, "-shared", *objs, "-o", out, *link])
    return out


# ---------------------------------------------------------------------------------------------------- bindings
class Lib:
    """ctypes view of include/sftnative_bnb.h (the subset this script uses)."""

    def __init__(self, path: Path, device: str):
        self.lib = ctypes.CDLL(str(path))
        self.device = device
        P, L, I, Fl = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_float
        lib = self.lib
        lib.jbnb_last_error.restype = ctypes.c_char_p
        lib.jbnb_abi_version.restype = I
        d = "cuda" if device == "cuda" else "cpu"
        self.d = d
        for t in ("fp32", "bf16", "fp16"):
            for op in ("quantize", "dequantize"):
                f = getattr(lib, f"jbnb_{op}_4bit_{d}_{t}")
                f.argtypes = [P, P, P, L, L, I] + ([P] if d == "cuda" else [])
                f.restype = I
        for op in ("quantize", "dequantize"):
            f = getattr(lib, f"jbnb_{op}_8bit_{d}_fp32")
            f.argtypes = [P, P, P, P, L, L] + ([P] if d == "cuda" else [])
            f.restype = I
        for t in ("fp32", "bf16"):
            f = getattr(lib, f"jbnb_ce_chunk_{d}_{t}")
            f.argtypes = [P, L, L, P, L, L, L, I, L, Fl, P, P] + ([P] if d == "cuda" else [P, P])
            f.restype = I
        lib.jbnb_codebook.argtypes = [I, P]
        lib.jbnb_codebook.restype = I

    def check(self, st):
        if st != 0:
            raise RuntimeError(self.lib.jbnb_last_error().decode())

    def _stream(self):
        return [None] if self.d == "cuda" else []

    def quant4(self, x, absmax, out, bs, qt):
        f = getattr(self.lib, f"jbnb_quantize_4bit_{self.d}_{DTYPES[x.dtype]}")
        self.check(f(x.data_ptr(), absmax.data_ptr(), out.data_ptr(), bs, x.numel(), qt, *self._stream()))

    def deq4(self, packed, absmax, out, bs, qt):
        f = getattr(self.lib, f"jbnb_dequantize_4bit_{self.d}_{DTYPES[out.dtype]}")
        self.check(f(packed.data_ptr(), absmax.data_ptr(), out.data_ptr(), bs, out.numel(), qt, *self._stream()))

    def quant8(self, code, x, absmax, out, bs):
        f = getattr(self.lib, f"jbnb_quantize_8bit_{self.d}_fp32")
        self.check(f(code.data_ptr(), x.data_ptr(), absmax.data_ptr(), out.data_ptr(), bs, x.numel(), *self._stream()))

    def ce_chunk(self, z, labels, total_rows, row0, seq_len, shift, scale, row_loss):
        f = getattr(self.lib, f"jbnb_ce_chunk_{self.d}_{DTYPES[z.dtype]}")
        extra = [None] if self.d == "cuda" else [None, None]
        self.check(f(z.data_ptr(), z.shape[0], z.shape[1], labels.data_ptr(), total_rows, row0, seq_len, shift, -100,
                     scale, row_loss.data_ptr(), None, *extra))

    def codebook(self, which, n):
        out = torch.empty(n, dtype=torch.float32)
        self.check(self.lib.jbnb_codebook(which, out.data_ptr()))
        return out


# ---------------------------------------------------------------------------------------------------- references
def ref_quant4(x, bs, qt):
    """Spec §2.4-§2.5 with CUDA semantics: reciprocal multiply, strict '>' thresholds, NaN -> 0, pad code of 0."""
    dev = x.device
    xf = x.float().reshape(-1)
    n = xf.numel()
    nb = (n + bs - 1) // bs
    blocks = torch.zeros(nb * bs, device=dev)
    blocks[:n] = xf
    blocks = blocks.view(nb, bs)
    am = blocks.abs().amax(1)
    y = blocks * (1.0 / am)[:, None]
    if qt == NF4_ID:
        thr = torch.tensor([f32_literal(t) for t in NF4_T], device=dev)
        codes = (y.unsqueeze(-1) > thr).sum(-1)
    else:
        thr = torch.tensor([f32_literal(t) for t in FP4_T], device=dev)
        idx = (y.abs().unsqueeze(-1) > thr).sum(-1)
        codes = torch.tensor(FP4_ORDER, device=dev)[idx] | ((y < 0).long() * 8)
    codes = codes.reshape(-1)[:n].to(torch.uint8)
    if n % 2:
        codes = torch.cat([codes, torch.tensor([7 if qt == NF4_ID else 0], dtype=torch.uint8, device=dev)])
    return (codes[0::2] << 4) | codes[1::2], am


def ref_deq4(packed, am, n, bs, qt, dtype):
    codes = torch.stack([packed >> 4, packed & 15], 1).reshape(-1)[:n].long()
    table = torch.tensor(NF4 if qt == NF4_ID else FP4_MAG + [-v for v in FP4_MAG], device=packed.device)
    return (table[codes] * am.repeat_interleave(bs)[:n]).to(dtype)


def bits(t):
    return t.contiguous().view(torch.int16 if t.element_size() == 2 else torch.int32)


# ---------------------------------------------------------------------------------------------------- checks
def diagnose_quant4(x, packed, am, rp, ram, bs, qt):
    """Prints the first elements whose 4-bit codes differ from the reference, with where y = x / absmax falls."""
    print(f"    absmax equal: {torch.equal(bits(am), bits(ram))}")
    codes = torch.stack([packed >> 4, packed & 15], 1).reshape(-1)[:x.numel()].cpu()
    rcodes = torch.stack([rp >> 4, rp & 15], 1).reshape(-1)[:x.numel()].cpu()
    diff = (codes != rcodes).nonzero().reshape(-1)
    thr = NF4_T if qt == NF4_ID else FP4_T
    print(f"    {diff.numel()} of {x.numel()} codes differ")
    for i in diff[:5].tolist():
        xv, a = float(x.reshape(-1)[i]), float(am.cpu()[i // bs])
        y32 = torch.tensor([xv], dtype=torch.float32) * (1.0 / torch.tensor([a], dtype=torch.float32))
        t = min(thr, key=lambda v: abs(abs(float(y32)) - v))
        print(f"    [{i}] x={xv!r} absmax={a!r} y(fp32)={float(y32)!r} y(exact)={xv / a!r} nearest threshold={t!r} "
              f"(fp32 literal {f32_literal(t)!r}) code {int(codes[i])} ref {int(rcodes[i])}")


def check_quant(lib, dev, quick, cpu_lib=None):
    results = []
    gen = torch.Generator(device="cpu").manual_seed(0)
    sizes = [1, 17, 4096 * 3 + 5, 1 << 16] + ([] if quick else [1 << 22])
    for qt in (NF4_ID, FP4_ID):
        for bs in (32, 64, 256, 4096):
            for n in sizes:
                for dtype in (torch.float32, torch.bfloat16, torch.float16):
                    x = (torch.randn(n, generator=gen) * 0.02).to(dtype).to(dev)
                    if n > 1000:
                        x[:64] = 0  # an all-zero block (bs <= 64)
                    nb = (n + bs - 1) // bs
                    packed = torch.empty((n + 1) // 2, dtype=torch.uint8, device=dev)
                    am = torch.empty(nb, dtype=torch.float32, device=dev)
                    lib.quant4(x, am, packed, bs, qt)
                    rp, ram = ref_quant4(x, bs, qt)
                    ok = torch.equal(packed, rp) and torch.equal(bits(am), bits(ram))
                    for od in (torch.float32, torch.bfloat16, torch.float16):
                        out = torch.empty(n, dtype=od, device=dev)
                        lib.deq4(packed, am, out, bs, qt)
                        ok = ok and torch.equal(bits(out), bits(ref_deq4(packed, am, n, bs, qt, od)))
                    cpu_same = None
                    if cpu_lib is not None:  # the CPU kernels are bit-exact against the golden vectors
                        cp = torch.empty((n + 1) // 2, dtype=torch.uint8)
                        cam = torch.empty(nb, dtype=torch.float32)
                        cpu_lib.quant4(x.cpu(), cam, cp, bs, qt)
                        cpu_same = torch.equal(cp, packed.cpu()) and torch.equal(bits(cam), bits(am.cpu()))
                        ok = ok and cpu_same
                    results.append(ok)
                    if not ok:
                        print(f"  MISMATCH quant4 qt={qt} bs={bs} n={n} {dtype} (same as CPU kernels: {cpu_same})")
                        diagnose_quant4(x, packed, am, rp, ram, bs, qt)
    # 8-bit blockwise with the dynamic map: nearest code (random inputs never sit exactly on a midpoint)
    code = lib.codebook(8, 256).to(dev)
    x = torch.randn(1 << 16, generator=gen).to(dev)
    q = torch.empty_like(x, dtype=torch.uint8)
    am = torch.empty((x.numel() + 255) // 256, device=dev)
    lib.quant8(code, x, am, q, 256)
    y = x.view(-1, 256) * (1.0 / x.view(-1, 256).abs().amax(1))[:, None]
    nearest = (y.reshape(-1, 1) - code[None, :]).abs().argmin(1).to(torch.uint8)
    results.append(torch.equal(q, nearest))
    return all(results), len(results)


def check_ce(lib, dev, quick):
    torch.backends.cuda.matmul.allow_tf32 = False
    out = {}
    for dtype, rtol in ((torch.float32, 1e-5), (torch.bfloat16, 2e-2)):
        b, t, v = 2, 64, 151936 if not quick else 32000
        gen = torch.Generator(device="cpu").manual_seed(1)
        logits = (torch.randn(b * t, v, generator=gen) * 3).to(dtype).to(dev)
        labels = torch.randint(0, v, (b, t), generator=gen)
        labels[torch.rand(b, t, generator=gen) < 0.2] = -100
        labels[1] = -100  # a fully ignored sequence
        labels = labels.to(dev)
        shifted = torch.cat([labels[:, 1:], torch.full((b, 1), -100, device=dev)], 1).reshape(-1)
        count = int((shifted != -100).sum())
        z = logits.float().clone().requires_grad_(True)
        ref = F.cross_entropy(z, shifted, ignore_index=-100, reduction="sum") / count
        ref.backward()
        g = logits.clone()
        row_loss = torch.zeros(b * t, device=dev)
        lib.ce_chunk(g, labels.reshape(-1).contiguous(), b * t, 0, t, 1, 1.0 / count, row_loss)
        loss = float(row_loss.double().sum()) / count
        loss_err = abs(loss - float(ref)) / abs(float(ref))
        grad_err = float((g.float() - z.grad).abs().max() / z.grad.abs().max())
        out[DTYPES[dtype]] = {"loss_rel_err": loss_err, "grad_rel_err": grad_err,
                              "ok": loss_err <= rtol and grad_err <= rtol}
    return out


# ---------------------------------------------------------------------------------------------------- timing
def timed(fn, dev, reps=10):
    fn()
    if dev == "cuda":
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        best = math.inf
        for _ in range(reps):
            s.record()
            fn()
            e.record()
            e.synchronize()
            best = min(best, s.elapsed_time(e) / 1e3)
        return best
    best = math.inf
    for _ in range(max(2, reps // 3)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bandwidth(lib, dev, quick):
    n = (1 << 28) if dev == "cuda" and not quick else (1 << 24)  # elements of the weight
    src = torch.empty(n, dtype=torch.float32, device=dev)
    dst = torch.empty_like(src)
    t_copy = timed(lambda: dst.copy_(src), dev)
    copy_gbs = 2 * src.numel() * 4 / t_copy / 1e9
    res = {"copy_GBps": copy_gbs, "elements": n}
    x = torch.randn(n, device=dev, dtype=torch.bfloat16)
    packed = torch.empty(n // 2, dtype=torch.uint8, device=dev)
    am = torch.empty(n // 64, device=dev)
    t_q = timed(lambda: lib.quant4(x, am, packed, 64, NF4_ID), dev)
    res["nf4_quantize_bf16_GBps"] = (2 * n + n / 2 + n / 16) / t_q / 1e9
    for od in (torch.bfloat16, torch.float32):
        out = torch.empty(n, dtype=od, device=dev)
        t = timed(lambda: lib.deq4(packed, am, out, 64, NF4_ID), dev)
        gbs = (n / 2 + n / 16 + n * out.element_size()) / t / 1e9
        res[f"nf4_dequantize_{DTYPES[od]}_GBps"] = gbs
        res[f"nf4_dequantize_{DTYPES[od]}_pct_of_copy"] = 100 * gbs / copy_gbs
    rows, v = (1024 if dev == "cuda" else 64), 151936
    z = torch.randn(rows, v, device=dev)
    labels = torch.randint(0, v, (rows,), device=dev)
    row_loss = torch.empty(rows, device=dev)
    t_ce = timed(lambda: lib.ce_chunk(z, labels, rows, 0, 1, 0, 1e-3, row_loss), dev)
    res["ce_chunk_fp32_GBps"] = 2 * z.numel() * 4 / t_ce / 1e9  # reads and writes the chunk (plus L2 re-reads)
    return res


def fused_vs_unfused(lib, dev, quick):
    n, h, v = (4096, 896, 151936) if not quick else (512, 256, 32000)
    gen = torch.Generator(device="cpu").manual_seed(2)
    hidden = torch.randn(n, h, generator=gen).to(dev)
    weight = (torch.randn(v, h, generator=gen) * 0.02).to(dev)
    labels = torch.randint(0, v, (1, n), generator=gen).to(dev)
    shifted = torch.cat([labels[:, 1:], torch.full((1, 1), -100, device=dev)], 1).reshape(-1)
    count = int((shifted != -100).sum())

    def unfused():
        x = hidden.clone().requires_grad_(True)
        w = weight.clone().requires_grad_(True)
        loss = F.cross_entropy(x @ w.t(), shifted, ignore_index=-100, reduction="sum") / count
        loss.backward()
        return float(loss), x.grad, w.grad

    def fused(chunk=256):
        grad_h = torch.empty_like(hidden)
        grad_w = torch.zeros_like(weight)
        buf = torch.empty(chunk, v, device=dev)
        row_loss = torch.empty(chunk, device=dev)
        total = torch.zeros((), dtype=torch.float64, device=dev)
        lab = labels.reshape(-1).contiguous()
        for r0 in range(0, n, chunk):
            rows = min(chunk, n - r0)
            hc, z = hidden[r0:r0 + rows], buf[:rows]
            torch.mm(hc, weight.t(), out=z)
            lib.ce_chunk(z, lab, n, r0, n, 1, 1.0 / count, row_loss)
            total += row_loss[:rows].double().sum()
            torch.mm(z, weight, out=grad_h[r0:r0 + rows])
            grad_w.addmm_(z.t(), hc)
        return float(total) / count, grad_h, grad_w

    def measure(fn):
        if dev == "cuda":
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        t = timed(lambda: fn(), dev, reps=3)
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if dev == "cuda" else None
        return t, peak

    lu, ghu, gwu = unfused()
    lf, ghf, gwf = fused()
    res = {"tokens": n, "hidden": h, "vocab": v,
           "loss_rel_err": abs(lf - lu) / abs(lu),
           "grad_hidden_rel_err": float((ghf - ghu).abs().max() / ghu.abs().max()),
           "grad_weight_rel_err": float((gwf - gwu).abs().max() / gwu.abs().max())}
    del ghu, gwu, ghf, gwf
    tu, pu = measure(unfused)
    tf, pf = measure(fused)
    res.update({"unfused_s": tu, "fused_s": tf, "time_ratio": tf / tu, "unfused_peak_MiB": pu,
                "fused_peak_MiB": pf, "peak_ratio_pct": 100 * pf / pu if pu else None})
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--build-dir", type=Path, default=None)
    ap.add_argument("--lib", type=Path, default=None, help="use this built library instead of building")
    ap.add_argument("--out", type=Path, default=None, help="JSON results file")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    a = ap.parse_args()
    dev = a.device
    if dev == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device visible to PyTorch; use --device cpu for a smoke test")
    build_dir = a.build_dir or ROOT / ("build-gpu" if dev == "cuda" else "build-cpu-check")
    lib_path = a.lib or build(build_dir, dev)
    lib = Lib(lib_path, dev)
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                     text=True).stdout.strip() or "unknown",
            "device": torch.cuda.get_device_name() if dev == "cuda" else platform.processor() or platform.machine(),
            "torch": torch.__version__, "cuda": torch.version.cuda, "library": str(lib_path),
            "abi": lib.lib.jbnb_abi_version()}
    print(json.dumps(info, indent=1), flush=True)
    # libsftnative_cuda.so carries the CPU kernels too: the CUDA codes are also compared with them
    cpu_lib = Lib(lib_path, "cpu") if dev == "cuda" else None
    quant_ok, quant_cases = check_quant(lib, dev, a.quick, cpu_lib)
    print(f"quantize/dequantize vs PyTorch reference: {'OK' if quant_ok else 'MISMATCH'} ({quant_cases} cases)")
    ce = check_ce(lib, dev, a.quick)
    print("cross-entropy vs F.cross_entropy:", json.dumps(ce))
    perf = bandwidth(lib, dev, a.quick)
    print("bandwidth:", json.dumps(perf, indent=1))
    fused = fused_vs_unfused(lib, dev, a.quick)
    print("fused vs unfused linear cross-entropy:", json.dumps(fused, indent=1))
    result = {"info": info, "quant_ok": quant_ok, "quant_cases": quant_cases, "ce": ce, "perf": perf, "fused": fused}
    if a.out:
        a.out.write_text(json.dumps(result, indent=1))
        print("written", a.out)
    ok = quant_ok and all(v["ok"] for v in ce.values()) and fused["loss_rel_err"] <= 1e-5
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
