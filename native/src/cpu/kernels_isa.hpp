// The per-ISA kernel table. Each ISA's implementation lives in its own translation unit compiled with that ISA's
// flags (kernels_avx2.cpp: -mavx2 -mfma -mf16c; kernels_avx512.cpp: -mavx512f -mavx512bw ...), and dispatch.cpp
// picks one at run time with __builtin_cpu_supports. Those translation units include only this header and
// <immintrin.h>: any inline C++ library template they instantiated could be merged by the linker with the generic
// copy and then execute AVX-512 instructions on a CPU without them.
#pragma once

#include <cstdint>

namespace sftn::isa {

struct Quant4Spec {
    const float *thresholds; // ascending
    int count;
    const uint8_t *fp4_mag; // nullptr for NF4; 8 magnitude codes for FP4
};

// All functions work on a range of one row / one run of elements; threading is done by the caller.
struct Table {
    const char *name;
    // 4-bit dequantize of `count` elements starting at a block boundary; blocksize is even. A points at the packed
    // byte of the first element, absmax at its block's scale; lut: 16 fp32 code values. stream != 0: the caller
    // guarantees out is 64-byte aligned and blocksize * sizeof(out element) is a multiple of 64, and the kernel
    // may use non-temporal stores (large outputs that would only evict the cache).
    void (*deq4_f32)(const uint8_t *A, const float *absmax, int64_t blocksize, const float *lut, float *out, int64_t count, int stream);
    void (*deq4_bf16)(const uint8_t *A, const float *absmax, int64_t blocksize, const float *lut, uint16_t *out, int64_t count, int stream);
    void (*deq4_f16)(const uint8_t *A, const float *absmax, int64_t blocksize, const float *lut, uint16_t *out, int64_t count, int stream);
    // 4-bit quantize of `count` (even) values: y = x * inv, code = number of thresholds t with y > t (NF4: 15
    // thresholds) or, when fp4_mag is set, fp4_mag[#thresholds below |y|] | sign (FP4: 7); packed high nibble first.
    void (*quant4_f32)(const float *x, float inv, uint8_t *out, int64_t count, const Quant4Spec *spec);
    // max |x| ignoring NaN (fmaxf semantics), starting from 0
    float (*absmax_f32)(const float *x, int64_t count);
    // Cross-entropy row primitives (fp32 math). max: NaN if any element is NaN.
    float (*row_max_f32)(const float *z, int64_t v);
    float (*row_max_bf16)(const uint16_t *z, int64_t v);
    float (*row_max_f16)(const uint16_t *z, int64_t v);
    // z := exp(z - m); returns the sum (fp32 lanes).
    float (*row_exp_sum_inplace_f32)(float *z, int64_t v, float m);
    // returns sum exp(z - m) without writing
    float (*row_sumexp_bf16)(const uint16_t *z, int64_t v, float m);
    float (*row_sumexp_f16)(const uint16_t *z, int64_t v, float m);
    // z := z * f
    void (*row_scale_f32)(float *z, int64_t v, float f);
    // z := round(exp(z - lse) * scale)
    void (*row_grad_bf16)(uint16_t *z, int64_t v, float lse, float scale);
    void (*row_grad_f16)(uint16_t *z, int64_t v, float lse, float scale);
    // Attention tiles (attention_cpu.cpp), fp32 with fused multiply-add:
    // C(M, N) = [C +] A · B with A(m, k) = A[m * a_rs + k * a_cs] (so A or its transpose) and B(k, n) = B[k * ldb + n]
    // row-major; C(m, n) = C[m * ldc + n]. accumulate != 0 adds to C, otherwise overwrites it.
    void (*attn_gemm_f32)(int64_t M, int64_t N, int64_t K, const float *A, int64_t a_rs, int64_t a_cs, const float *B,
                          int64_t ldb, float *C, int64_t ldc, int accumulate);
    // p := p * (dp - delta): the softmax backward of one row.
    void (*row_dsoftmax_f32)(float *p, const float *dp, int64_t n, float delta);
    // out[i] := bitsandbytes' 8-bit code of x[i] in the sorted 256-entry `code` (binary search with its final midpoint
    // test: code8_search in common.hpp, bit for bit; NaN -> 0). Used by the 8-bit optimizer's requantization.
    void (*quant8_search_f32)(const float *code, const float *x, uint8_t *out, int64_t count);
};

extern const Table SCALAR;
extern const Table AVX2;   // defined only when built with the AVX2 translation unit
extern const Table AVX512; // defined only when built with the AVX-512 translation unit

} // namespace sftn::isa
