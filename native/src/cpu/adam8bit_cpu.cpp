// bitsandbytes' Adam/AdamW with blockwise 8-bit state (bnb.optim.AdamW8bit / HF optim adamw_8bit) on host memory,
// and the 32-bit update bitsandbytes uses for tensors below min_8bit_size.
//
// The 8-bit step transcribes bitsandbytes' CUDA kernel kOptimizerStatic8bit2StateBlockwise (csrc/kernels.cu at
// 95f9af3, launched with BLOCK_SIZE 256 by csrc/ops.cu optimizerStatic8bitBlockwise) operation by operation, per
// block of 256 elements:
//   dequantize m = code1[c1] * absmax1[b], v = code2[c2] * absmax2[b]; update both with the gradient (an element
//   whose gradient is NaN/inf gets m = v = 0 and no parameter update); new absmax = max |m|, max |v| over the block
//   (the padding of a last, partial block takes part with g = 0, c1 = 128, c2 = 0, as the CUDA block loads pad);
//   p += step_size * m / (sqrt(v) + correction2 * eps), then p *= 1 - lr * weight_decay (decay AFTER the update:
//   the kernel's order, not torch's); requantize m / absmax1 and v / absmax2 with the binary search of quantize_2D,
//   then step c1 one code towards zero's other side when the code's sign differs from m's.
// Arithmetic is IEEE fp32 without FMA contraction. bitsandbytes builds its CUDA library with --use_fast_math
// (__powf, __fdividef, approximate sqrtf/division); those results differ from IEEE in the last ulps, which moves a
// state code by one where a value lies that close to a midpoint between two codes (docs/training.md).
#include <cfloat>
#include <cmath>

#include "../adam_scalars.hpp"
#include "../common.hpp"
#include "dispatch.hpp"
#include "sftnative_bnb.h"

namespace sftn {
namespace {

constexpr int64_t kBlock = 256; // BLOCKSIZE_2STATE in bitsandbytes' csrc/ops.cu

struct F32 {
    using T = float;
    static float load(float v) { return v; }
    static float round(float v) { return v; }
    static float store(float v) { return v; }
};
struct BF16 {
    using T = uint16_t;
    static float load(uint16_t v) { return bf16_to_float(v); }
    static float round(float v) { return bf16_to_float(float_to_bf16(v)); } // the kernel's (T)(...) conversions
    static uint16_t store(float v) { return float_to_bf16(v); }
};
struct FP16 {
    using T = uint16_t;
    static float load(uint16_t v) { return fp16_to_float(v); }
    static float round(float v) { return fp16_to_float(float_to_fp16(v)); }
    static uint16_t store(float v) { return float_to_fp16(v); }
};

using Scalars = AdamScalars;

template <class K>
struct Args8 {
    typename K::T *p;
    const typename K::T *g;
    uint8_t *state1, *state2;
    const float *code1, *code2;
    float *absmax1, *absmax2;
    int64_t n;
    Scalars s;
};

// One block of kOptimizerStatic8bit2StateBlockwise (ADAM).
template <class K>
void adam8_block(const Args8<K> &a, int64_t b) {
    const Scalars &s = a.s;
    const int64_t lo = b * kBlock;
    const int64_t count = a.n - lo < kBlock ? a.n - lo : kBlock;
    float s1[kBlock], s2[kBlock]; // (256) the block's updated moments in fp32
    bool finite[kBlock];
    const float am1 = a.absmax1[b], am2 = a.absmax2[b];
    float max1 = -FLT_MAX, max2 = -FLT_MAX;
    for (int64_t j = 0; j < kBlock; ++j) {
        bool valid = j < count;
        float g = valid ? K::load(a.g[lo + j]) : 0.0f;
        uint8_t c1 = valid ? a.state1[lo + j] : 128, c2 = valid ? a.state2[lo + j] : 0;
        finite[j] = std::isfinite(g);
        if (finite[j]) {
            float v = a.code2[c2] * am2;
            g = g * s.gnorm;
            v = (v * s.beta2) + ((s.one_m_b2 * g) * g);
            float m = a.code1[c1] * am1;
            m = (m * s.beta1) + (s.one_m_b1 * g);
            s1[j] = m;
            s2[j] = v;
        } else {
            s1[j] = 0.0f;
            s2[j] = 0.0f;
        }
        max1 = std::fmax(max1, std::fabs(s1[j]));
        max2 = std::fmax(max2, std::fabs(s2[j]));
    }
    a.absmax1[b] = max1;
    a.absmax2[b] = max2;
    const float c2eps = s.correction2 * s.eps;
    for (int64_t j = 0; j < count; ++j) {
        if (!finite[j]) continue;
        float p = K::load(a.p[lo + j]);
        p = K::round(p + (s.step_size * (s1[j] / (std::sqrt(s2[j]) + c2eps))));
        if (s.has_decay) p = K::round(p * s.decay);
        a.p[lo + j] = K::store(p);
    }
    // quantize_2D<SIGNED> returns what code8_search (dQuantize<0>) returns: the two differ only in the initial
    // `lower` bound, which is read only when the search ends at index 0, where both answer 0.
    float x1[kBlock], x2[kBlock]; // (count) the moments scaled by the new absmax
    for (int64_t j = 0; j < count; ++j) {
        x1[j] = s1[j] / max1;
        x2[j] = s2[j] / max2;
    }
    const isa::Table &k = kernels();
    k.quant8_search_f32(a.code1, x1, a.state1 + lo, count);
    k.quant8_search_f32(a.code2, x2, a.state2 + lo, count);
    for (int64_t j = 0; j < count; ++j) {
        uint8_t c1 = a.state1[lo + j];
        if (std::signbit(a.code1[c1]) != std::signbit(s1[j])) a.state1[lo + j] = uint8_t(s1[j] > 0.0f ? c1 + 1 : c1 - 1);
    }
}

template <class K>
int32_t adam8(const char *fn, typename K::T *p, const typename K::T *g, uint8_t *state1, uint8_t *state2, float beta1,
              float beta2, float eps, int32_t step, float lr, const float *q1, const float *q2, float *absmax1,
              float *absmax2, float weight_decay, float gnorm_scale, int64_t n) {
    return guarded(fn, [&] {
        require_n(n);
        if (n > 0) {
            require_ptr(p, "p");
            require_ptr(g, "g");
            require_ptr(state1, "state1");
            require_ptr(state2, "state2");
            require_ptr(q1, "quantiles1");
            require_ptr(q2, "quantiles2");
            require_ptr(absmax1, "absmax1");
            require_ptr(absmax2, "absmax2");
        }
        if (step < 1) invalid("step must be >= 1 (the count after this update), got " + std::to_string(step));
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) invalid("betas must be in [0, 1)");
        Args8<K> a{p, g, state1, state2, q1, q2, absmax1, absmax2, n,
                   adam_scalars(beta1, beta2, eps, step, lr, weight_decay, gnorm_scale)};
        parallel_for(ceil_div(n, kBlock), 1, 64, [&](int64_t lo, int64_t hi) {
            for (int64_t b = lo; b < hi; ++b) adam8_block(a, b);
        });
    });
}

// kOptimizer32bit2State (ADAM), without max_unorm: bitsandbytes' update for tensors kept in 32-bit state.
template <class K>
int32_t adam32(const char *fn, const typename K::T *g, typename K::T *p, float *state1, float *state2,
               float max_unorm, float beta1, float beta2, float eps, float weight_decay, int32_t step, float lr,
               float gnorm_scale, int32_t skip_zeros, int64_t n) {
    return guarded(fn, [&] {
        require_n(n);
        if (n > 0) {
            require_ptr(p, "p");
            require_ptr(g, "g");
            require_ptr(state1, "state1");
            require_ptr(state2, "state2");
        }
        if (max_unorm > 0.0f) throw Error(JBNB_EUNSUPPORTED, "max_unorm > 0 is not implemented (pass 0)");
        if (step < 1) invalid("step must be >= 1 (the count after this update), got " + std::to_string(step));
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) invalid("betas must be in [0, 1)");
        const Scalars s = adam_scalars(beta1, beta2, eps, step, lr, weight_decay, gnorm_scale);
        parallel_for(n, 4096, 1 << 16, [&](int64_t lo, int64_t hi) {
            const float c2eps = s.eps * s.correction2;
            for (int64_t i = lo; i < hi; ++i) {
                float gv = K::round(s.gnorm * K::load(g[i])); // the kernel stores the scaled gradient in T
                if (skip_zeros && gv == 0.0f) continue;
                float m = state1[i] * s.beta1 + (s.one_m_b1 * gv);
                float v = state2[i] * s.beta2 + (s.one_m_b2 * (gv * gv));
                float pv = K::load(p[i]);
                pv = K::round(pv + (s.step_size * (m / (std::sqrt(v) + c2eps)))); // update_scale 1 * step_size
                if (s.has_decay) pv = K::round(pv * s.decay);
                p[i] = K::store(pv);
                state1[i] = m;
                state2[i] = v;
            }
        });
    });
}

} // namespace
} // namespace sftn

using namespace sftn;

extern "C" {

#define SFTN_ADAM8(suffix, K)                                                                                          \
    int32_t jbnb_adam_8bit_blockwise_cpu_##suffix(K::T *p, const K::T *g, uint8_t *state1, uint8_t *state2,            \
                                                  float beta1, float beta2, float beta3, float alpha, float eps,       \
                                                  int32_t step, float lr, const float *quantiles1,                     \
                                                  const float *quantiles2, float *absmax1, float *absmax2,             \
                                                  float weight_decay, float gnorm_scale, int32_t skip_zeros,           \
                                                  int64_t n) {                                                         \
        (void)beta3; /* AdEMAMix only */                                                                               \
        (void)alpha;                                                                                                   \
        (void)skip_zeros; /* read by no branch of the 2-state blockwise kernel */                                      \
        return adam8<K>(__func__, p, g, state1, state2, beta1, beta2, eps, step, lr, quantiles1, quantiles2, absmax1,  \
                        absmax2, weight_decay, gnorm_scale, n);                                                        \
    }

SFTN_ADAM8(fp32, F32)
SFTN_ADAM8(bf16, BF16)
SFTN_ADAM8(fp16, FP16)

#define SFTN_ADAM32(suffix, K)                                                                                         \
    int32_t jbnb_adam_32bit_cpu_##suffix(const K::T *g, K::T *p, float *state1, float *state2, float *unorm,           \
                                         float max_unorm, float param_norm, float beta1, float beta2, float beta3,     \
                                         float alpha, float eps, float weight_decay, int32_t step, float lr,           \
                                         float gnorm_scale, int32_t skip_zeros, int64_t n) {                           \
        (void)unorm;                                                                                                   \
        (void)param_norm;                                                                                              \
        (void)beta3;                                                                                                   \
        (void)alpha;                                                                                                   \
        return adam32<K>(__func__, g, p, state1, state2, max_unorm, beta1, beta2, eps, weight_decay, step, lr,        \
                         gnorm_scale, skip_zeros, n);                                                                  \
    }

SFTN_ADAM32(fp32, F32)
SFTN_ADAM32(bf16, BF16)
SFTN_ADAM32(fp16, FP16)

} // extern "C"
