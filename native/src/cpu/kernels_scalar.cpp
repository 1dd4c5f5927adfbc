// Portable scalar kernels: the fallback on any CPU and the reference the vector paths are tested against.
#include <cmath>

#include "../common.hpp"
#include "kernels_isa.hpp"

namespace sftn::isa {
namespace {

template <class Store>
void deq4(const uint8_t *A, float absmax, const float *lut, int64_t count, Store store) {
    for (int64_t i = 0; i < count; ++i) {
        uint8_t b = A[i >> 1];
        uint8_t c = (i & 1) ? (b & 0xf) : (b >> 4);
        store(i, lut[c] * absmax);
    }
}
inline void deq4_f32_block(const uint8_t *A, float am, const float *lut, float *out, int64_t count, int) {
    deq4(A, am, lut, count, [&](int64_t i, float v) { out[i] = v; });
}
inline void deq4_bf16_block(const uint8_t *A, float am, const float *lut, uint16_t *out, int64_t count, int) {
    deq4(A, am, lut, count, [&](int64_t i, float v) { out[i] = float_to_bf16(v); });
}
inline void deq4_f16_block(const uint8_t *A, float am, const float *lut, uint16_t *out, int64_t count, int) {
    deq4(A, am, lut, count, [&](int64_t i, float v) { out[i] = float_to_fp16(v); });
}

template <class Out, class Block>
inline void deq4_blocks(const uint8_t *A, const float *absmax, int64_t bs, const float *lut, Out *out, int64_t count,
                        int stream, Block block) {
    for (int64_t s = 0, b = 0; s < count; s += bs, ++b)
        block(A + s / 2, absmax[b], lut, out + s, count - s < bs ? count - s : bs, stream);
}
void deq4_f32(const uint8_t *A, const float *am, int64_t bs, const float *lut, float *out, int64_t count, int stream) {
    deq4_blocks(A, am, bs, lut, out, count, stream, deq4_f32_block);
}
void deq4_bf16(const uint8_t *A, const float *am, int64_t bs, const float *lut, uint16_t *out, int64_t count, int stream) {
    deq4_blocks(A, am, bs, lut, out, count, stream, deq4_bf16_block);
}
void deq4_f16(const uint8_t *A, const float *am, int64_t bs, const float *lut, uint16_t *out, int64_t count, int stream) {
    deq4_blocks(A, am, bs, lut, out, count, stream, deq4_f16_block);
}

uint8_t code4(float y, const Quant4Spec *s) {
    if (s->fp4_mag == nullptr) {
        uint8_t c = 0;
        for (int t = 0; t < s->count; ++t) c += (y > s->thresholds[t]) ? 1 : 0;
        return c;
    }
    float a = std::fabs(y);
    int idx = 0;
    for (int t = 0; t < s->count; ++t) idx += (a > s->thresholds[t]) ? 1 : 0;
    return uint8_t(s->fp4_mag[idx] | (y < 0.0f ? 8 : 0));
}
void quant4_f32(const float *x, float inv, uint8_t *out, int64_t count, const Quant4Spec *s) {
    for (int64_t i = 0; i + 1 < count; i += 2) {
        uint8_t hi = code4(x[i] * inv, s), lo = code4(x[i + 1] * inv, s);
        out[i >> 1] = uint8_t((hi << 4) | lo);
    }
}
float absmax_f32(const float *x, int64_t count) {
    float m = 0.0f;
    for (int64_t i = 0; i < count; ++i) m = std::fmax(m, std::fabs(x[i]));
    return m;
}

template <class Load>
float row_max(int64_t v, Load load) {
    float m = -INFINITY;
    bool nan = false;
    for (int64_t i = 0; i < v; ++i) {
        float z = load(i);
        nan |= (z != z);
        m = z > m ? z : m;
    }
    return nan ? NAN : m;
}
float row_max_f32(const float *z, int64_t v) { return row_max(v, [&](int64_t i) { return z[i]; }); }
float row_max_bf16(const uint16_t *z, int64_t v) { return row_max(v, [&](int64_t i) { return bf16_to_float(z[i]); }); }
float row_max_f16(const uint16_t *z, int64_t v) { return row_max(v, [&](int64_t i) { return fp16_to_float(z[i]); }); }

// Sums in fp64: a sequential fp32 sum over ~10^5 entries loses ~1e-5 relative (the vector paths sum in 8-16
// independent fp32 lanes, which keeps them well below that).
float row_exp_sum_inplace_f32(float *z, int64_t v, float m) {
    double s = 0.0;
    for (int64_t i = 0; i < v; ++i) {
        z[i] = std::exp(z[i] - m);
        s += z[i];
    }
    return float(s);
}
float row_sumexp_bf16(const uint16_t *z, int64_t v, float m) {
    double s = 0.0;
    for (int64_t i = 0; i < v; ++i) s += std::exp(bf16_to_float(z[i]) - m);
    return float(s);
}
float row_sumexp_f16(const uint16_t *z, int64_t v, float m) {
    double s = 0.0;
    for (int64_t i = 0; i < v; ++i) s += std::exp(fp16_to_float(z[i]) - m);
    return float(s);
}
void row_scale_f32(float *z, int64_t v, float f) {
    for (int64_t i = 0; i < v; ++i) z[i] *= f;
}
void row_grad_bf16(uint16_t *z, int64_t v, float lse, float scale) {
    for (int64_t i = 0; i < v; ++i) z[i] = float_to_bf16(std::exp(bf16_to_float(z[i]) - lse) * scale);
}
void row_grad_f16(uint16_t *z, int64_t v, float lse, float scale) {
    for (int64_t i = 0; i < v; ++i) z[i] = float_to_fp16(std::exp(fp16_to_float(z[i]) - lse) * scale);
}

// Attention tiles: plain loops (the vector tables use FMA; results agree within fp32 rounding, not bit for bit).
void attn_gemm_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t a_rs, int64_t a_cs, const float *B,
                   int64_t ldb, float *C, int64_t ldc, int accumulate) {
    for (int64_t m = 0; m < M; ++m) {
        float *c = C + m * ldc;
        if (!accumulate)
            for (int64_t n = 0; n < N; ++n) c[n] = 0.0f;
        for (int64_t k = 0; k < K; ++k) {
            float a = A[m * a_rs + k * a_cs];
            const float *b = B + k * ldb;
            for (int64_t n = 0; n < N; ++n) c[n] += a * b[n];
        }
    }
}
void row_dsoftmax_f32(float *p, const float *dp, int64_t n, float delta) {
    for (int64_t i = 0; i < n; ++i) p[i] = p[i] * (dp[i] - delta);
}

void quant8_search_f32(const float *code, const float *x, uint8_t *out, int64_t count) {
    for (int64_t i = 0; i < count; ++i) out[i] = code8_search_branchless(code, x[i]);
}

} // namespace

const Table SCALAR = {"scalar",          deq4_f32,        deq4_bf16,      deq4_f16,
                      quant4_f32,        absmax_f32,      row_max_f32,    row_max_bf16,
                      row_max_f16,       row_exp_sum_inplace_f32, row_sumexp_bf16, row_sumexp_f16,
                      row_scale_f32,     row_grad_bf16,   row_grad_f16,
                      attn_gemm_f32, row_dsoftmax_f32, quant8_search_f32};

} // namespace sftn::isa
