// The per-ISA table of the fused elementwise kernels (fused_cpu.cpp: SwiGLU and RoPE, forward and backward). Kept
// apart from kernels_isa.hpp's Table so that these kernels and the quantization/attention ones evolve
// independently; it follows the same rules: each ISA's implementation is its own translation unit compiled with
// that ISA's flags (fused_avx2.cpp, fused_avx512.cpp), including only this header and <immintrin.h>, and
// fused_cpu.cpp picks the table of the ISA that dispatch.cpp made active (jbnb_set_cpu_isa applies to both).
#pragma once

#include <cstdint>

namespace sftn::isa {

struct FusedTable {
    const char *name;
    // SwiGLU forward of one row of n values: out = silu(gate) * up, silu(g) = g / (1 + exp(-g)).
    void (*swiglu_fwd_f32)(const float *gate, const float *up, float *out, int64_t n);
    // SwiGLU backward of one row: s = sigmoid(g); dup = dout * g * s; dgate = dout * up * s * (1 + g * (1 - s))
    // (libtorch's silu_backward formula).
    void (*swiglu_bwd_f32)(const float *gate, const float *up, const float *dout, float *dgate, float *dup, int64_t n);
    // Rotary embedding of one head (HF rotate_half layout, h = rotated dims / 2; cos, sin: the h half-angle values):
    // out[i] = x[i] c[i] - x[i+h] s[i], out[i+h] = x[i+h] c[i] + x[i] s[i] for i < h. With sign = -1 the sines are
    // negated, which is the transposed rotation (the backward). out may alias x.
    void (*rope_f32)(const float *x, float *out, const float *cos, const float *sin, int64_t h, float sign);
};

extern const FusedTable FUSED_SCALAR;
extern const FusedTable FUSED_AVX2;   // defined only when built with the AVX2 translation unit
extern const FusedTable FUSED_AVX512; // defined only when built with the AVX-512 translation unit

} // namespace sftn::isa
