// AVX2 + FMA + F16C kernels. See kernels_isa.hpp for why this file includes nothing else. Same contract as the
// AVX-512 file: bit-identical to the scalar kernels except the cross-entropy exp polynomial.
#include <immintrin.h>

#include "kernels_isa.hpp"

namespace sftn::isa {
namespace {

inline __m256 exp_ps(__m256 x) {
    // Results below e^-87.3 (subnormal) flush to 0; NaN passes through (max/min return the second operand).
    __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_NLT_UQ); // x >= min or NaN
    x = _mm256_min_ps(_mm256_set1_ps(88.02f), _mm256_max_ps(_mm256_set1_ps(-87.33654f), x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // 2^n for n in [-126, 127] via the exponent field
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}

inline __m128i to_bf16(__m256 v) {
    __m256i b = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(b, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    __m256i q = _mm256_or_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(0x40));
    __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, q, nan);
    __m256i packed = _mm256_packus_epi32(r, r); // lanes: [r0..3 r0..3 | r4..7 r4..7]
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(packed, 0x08)); // [r0..3 r4..7]
}
inline __m128i to_f16(__m256 v) { return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline __m256 load_bf16(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
inline __m256 load_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
inline float bf16f(uint16_t h) {
    union { unsigned u; float f; } c;
    c.u = unsigned(h) << 16;
    return c.f;
}
inline float f16f(uint16_t h) { return _cvtsh_ss(h); }
inline uint16_t bf16_1(float x) { return uint16_t(_mm_extract_epi16(to_bf16(_mm256_set1_ps(x)), 0)); }
inline uint16_t f16_1(float x) { return _cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

// 16-entry LUT lookup: codes (0..15) -> values
inline __m256 lookup(__m256i c, __m256 lut_lo, __m256 lut_hi) {
    __m256 lo = _mm256_permutevar8x32_ps(lut_lo, c), hi = _mm256_permutevar8x32_ps(lut_hi, c);
    return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(c, 28)));
}
// 8 packed bytes -> 16 values in element order
inline void deq16(const uint8_t *A, __m256 llo, __m256 lhi, __m256 scale, __m256 &v0, __m256 &v1) {
    __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)A));
    __m256i hi = _mm256_srli_epi32(bytes, 4), lo = _mm256_and_si256(bytes, _mm256_set1_epi32(0xf));
    __m256i a = _mm256_unpacklo_epi32(hi, lo), b = _mm256_unpackhi_epi32(hi, lo);
    __m256i c0 = _mm256_permute2x128_si256(a, b, 0x20), c1 = _mm256_permute2x128_si256(a, b, 0x31);
    v0 = _mm256_mul_ps(lookup(c0, llo, lhi), scale);
    v1 = _mm256_mul_ps(lookup(c1, llo, lhi), scale);
}
inline float code_at(const uint8_t *A, int64_t i, const float *lut) {
    uint8_t b = A[i >> 1];
    return lut[(i & 1) ? (b & 0xf) : (b >> 4)];
}

inline void deq4_f32_block(const uint8_t *A, float am, const float *lut, float *out, int64_t count, int stream) {
    __m256 llo = _mm256_loadu_ps(lut), lhi = _mm256_loadu_ps(lut + 8), S = _mm256_set1_ps(am);
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m256 v0, v1;
        deq16(A + (i >> 1), llo, lhi, S, v0, v1);
        if (stream) {
            _mm256_stream_ps(out + i, v0);
            _mm256_stream_ps(out + i + 8, v1);
        } else {
            _mm256_storeu_ps(out + i, v0);
            _mm256_storeu_ps(out + i + 8, v1);
        }
    }
    for (; i < count; ++i) out[i] = code_at(A, i, lut) * am;
}
// 16-bit outputs: the block's 16 possible outputs (fp32 product lut[c] * absmax, rounded once, exactly what the
// element-wise path computes) become byte tables, and each element is two pshufb lookups in element order.
template <class Conv>
inline void deq4_16_block(const uint8_t *A, float am, const float *lut, uint16_t *out, int64_t count, int stream, Conv conv) {
    __m256 S = _mm256_set1_ps(am);
    alignas(16) uint16_t t[16];
    _mm_store_si128((__m128i *)t, conv(_mm256_mul_ps(_mm256_loadu_ps(lut), S)));
    _mm_store_si128((__m128i *)(t + 8), conv(_mm256_mul_ps(_mm256_loadu_ps(lut + 8), S)));
    __m128i v0 = _mm_load_si128((const __m128i *)t), v1 = _mm_load_si128((const __m128i *)(t + 8));
    // split the 16 u16 entries into a low-byte table and a high-byte table
    const __m128i even = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m128i odd = _mm_setr_epi8(1, 3, 5, 7, 9, 11, 13, 15, -1, -1, -1, -1, -1, -1, -1, -1);
    __m128i tlo = _mm_unpacklo_epi64(_mm_shuffle_epi8(v0, even), _mm_shuffle_epi8(v1, even));
    __m128i thi = _mm_unpacklo_epi64(_mm_shuffle_epi8(v0, odd), _mm_shuffle_epi8(v1, odd));
    const __m128i nib = _mm_set1_epi8(0xf);
    int64_t i = 0;
    for (; i + 32 <= count; i += 32) {
        __m128i b = _mm_loadu_si128((const __m128i *)(A + (i >> 1)));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), nib), lo = _mm_and_si128(b, nib);
        __m128i c0 = _mm_unpacklo_epi8(hi, lo), c1 = _mm_unpackhi_epi8(hi, lo); // codes of elements 0-15, 16-31
        __m128i l0 = _mm_shuffle_epi8(tlo, c0), h0 = _mm_shuffle_epi8(thi, c0);
        __m128i l1 = _mm_shuffle_epi8(tlo, c1), h1 = _mm_shuffle_epi8(thi, c1);
        __m128i o[4] = {_mm_unpacklo_epi8(l0, h0), _mm_unpackhi_epi8(l0, h0), _mm_unpacklo_epi8(l1, h1),
                        _mm_unpackhi_epi8(l1, h1)};
        for (int k = 0; k < 4; ++k) {
            if (stream) _mm_stream_si128((__m128i *)(out + i + 8 * k), o[k]);
            else _mm_storeu_si128((__m128i *)(out + i + 8 * k), o[k]);
        }
    }
    for (; i < count; ++i) {
        uint8_t byte = A[i >> 1];
        out[i] = t[(i & 1) ? (byte & 0xf) : (byte >> 4)];
    }
}
inline void deq4_bf16_block(const uint8_t *A, float am, const float *lut, uint16_t *out, int64_t count, int stream) {
    deq4_16_block(A, am, lut, out, count, stream, to_bf16);
}
inline void deq4_f16_block(const uint8_t *A, float am, const float *lut, uint16_t *out, int64_t count, int stream) {
    deq4_16_block(A, am, lut, out, count, stream, to_f16);
}

template <class Out, class Block>
inline void deq4_blocks(const uint8_t *A, const float *absmax, int64_t bs, const float *lut, Out *out, int64_t count,
                        int stream, Block block) {
    for (int64_t s = 0, b = 0; s < count; s += bs, ++b)
        block(A + s / 2, absmax[b], lut, out + s, count - s < bs ? count - s : bs, stream);
    if (stream) _mm_sfence(); // order the non-temporal stores before the caller's next access
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

// 8 values -> 8 codes (int32)
inline __m256i codes8(__m256 y, const Quant4Spec *s) {
    __m256i c = _mm256_setzero_si256();
    if (s->fp4_mag == nullptr) {
        for (int t = 0; t < s->count; ++t) // a true compare is all ones = -1: subtract to count
            c = _mm256_sub_epi32(c, _mm256_castps_si256(_mm256_cmp_ps(y, _mm256_set1_ps(s->thresholds[t]), _CMP_GT_OQ)));
        return c;
    }
    __m256 a = _mm256_and_ps(y, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
    for (int t = 0; t < s->count; ++t)
        c = _mm256_sub_epi32(c, _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(s->thresholds[t]), _CMP_GT_OQ)));
    const uint8_t *m = s->fp4_mag;
    c = _mm256_permutevar8x32_epi32(_mm256_set_epi32(m[7], m[6], m[5], m[4], m[3], m[2], m[1], m[0]), c);
    __m256i neg = _mm256_castps_si256(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_LT_OQ));
    return _mm256_or_si256(c, _mm256_and_si256(neg, _mm256_set1_epi32(8)));
}

void quant4_f32(const float *x, float inv, uint8_t *out, int64_t count, const Quant4Spec *s) {
    __m256 I = _mm256_set1_ps(inv);
    int64_t i = 0;
    alignas(32) int32_t c[8];
    for (; i + 8 <= count; i += 8) {
        __m256i v = codes8(_mm256_mul_ps(_mm256_loadu_ps(x + i), I), s);
        // (c0<<4 | c1) in the low byte of each 64-bit lane
        __m256i t = _mm256_or_si256(_mm256_slli_epi32(v, 4), _mm256_srli_epi64(v, 32));
        _mm256_store_si256((__m256i *)c, t);
        uint8_t *o = out + (i >> 1);
        o[0] = uint8_t(c[0]);
        o[1] = uint8_t(c[2]);
        o[2] = uint8_t(c[4]);
        o[3] = uint8_t(c[6]);
    }
    if (i < count) {
        alignas(32) float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t k = 0; k < count - i; ++k) tmp[k] = x[i + k];
        __m256i v = codes8(_mm256_mul_ps(_mm256_load_ps(tmp), I), s);
        __m256i t = _mm256_or_si256(_mm256_slli_epi32(v, 4), _mm256_srli_epi64(v, 32));
        _mm256_store_si256((__m256i *)c, t);
        for (int64_t k = 0; k < (count - i) / 2; ++k) out[(i >> 1) + k] = uint8_t(c[2 * k]);
    }
}

float absmax_f32(const float *x, int64_t count) {
    __m256 acc = _mm256_setzero_ps();
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) acc = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absmask), acc);
    alignas(32) float t[8];
    _mm256_store_ps(t, acc);
    float m = 0.0f;
    for (int k = 0; k < 8; ++k) m = t[k] > m ? t[k] : m;
    for (; i < count; ++i) {
        float a = x[i] < 0 ? -x[i] : x[i];
        m = a > m ? a : m; // NaN compares false: ignored like fmaxf
    }
    return m;
}

inline float hmax(__m256 v) {
    alignas(32) float t[8];
    _mm256_store_ps(t, v);
    float m = t[0];
    for (int k = 1; k < 8; ++k) m = t[k] > m ? t[k] : m;
    return m;
}
inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <class Load, class Scalar>
inline float row_max(int64_t v, Load load, Scalar at) {
    __m256 m = _mm256_set1_ps(-__builtin_inff());
    __m256 nan = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= v; i += 8) {
        __m256 z = load(i);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(z, z, _CMP_UNORD_Q));
        m = _mm256_max_ps(m, z);
    }
    float r = hmax(m);
    bool has_nan = _mm256_movemask_ps(nan) != 0;
    for (; i < v; ++i) {
        float z = at(i);
        has_nan |= (z != z);
        r = z > r ? z : r;
    }
    return has_nan ? __builtin_nanf("") : r;
}
float row_max_f32(const float *z, int64_t v) {
    return row_max(v, [&](int64_t i) { return _mm256_loadu_ps(z + i); }, [&](int64_t i) { return z[i]; });
}
float row_max_bf16(const uint16_t *z, int64_t v) {
    return row_max(v, [&](int64_t i) { return load_bf16(z + i); }, [&](int64_t i) { return bf16f(z[i]); });
}
float row_max_f16(const uint16_t *z, int64_t v) {
    return row_max(v, [&](int64_t i) { return load_f16(z + i); }, [&](int64_t i) { return f16f(z[i]); });
}

inline float exp1(float x) {
    alignas(32) float t[8];
    _mm256_store_ps(t, exp_ps(_mm256_set1_ps(x)));
    return t[0];
}

float row_exp_sum_inplace_f32(float *z, int64_t v, float m) {
    __m256 M = _mm256_set1_ps(m), s = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= v; i += 8) {
        __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(z + i), M));
        _mm256_storeu_ps(z + i, e);
        s = _mm256_add_ps(s, e);
    }
    float r = hsum(s);
    for (; i < v; ++i) {
        z[i] = exp1(z[i] - m);
        r += z[i];
    }
    return r;
}
template <class Load, class Scalar>
inline float sumexp(int64_t v, float m, Load load, Scalar at) {
    __m256 M = _mm256_set1_ps(m), s = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= v; i += 8) s = _mm256_add_ps(s, exp_ps(_mm256_sub_ps(load(i), M)));
    float r = hsum(s);
    for (; i < v; ++i) r += exp1(at(i) - m);
    return r;
}
float row_sumexp_bf16(const uint16_t *z, int64_t v, float m) {
    return sumexp(v, m, [&](int64_t i) { return load_bf16(z + i); }, [&](int64_t i) { return bf16f(z[i]); });
}
float row_sumexp_f16(const uint16_t *z, int64_t v, float m) {
    return sumexp(v, m, [&](int64_t i) { return load_f16(z + i); }, [&](int64_t i) { return f16f(z[i]); });
}
void row_scale_f32(float *z, int64_t v, float f) {
    __m256 F = _mm256_set1_ps(f);
    int64_t i = 0;
    for (; i + 8 <= v; i += 8) _mm256_storeu_ps(z + i, _mm256_mul_ps(_mm256_loadu_ps(z + i), F));
    for (; i < v; ++i) z[i] *= f;
}
void row_grad_bf16(uint16_t *z, int64_t v, float lse, float scale) {
    __m256 L = _mm256_set1_ps(lse), S = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= v; i += 8)
        _mm_storeu_si128((__m128i *)(z + i), to_bf16(_mm256_mul_ps(exp_ps(_mm256_sub_ps(load_bf16(z + i), L)), S)));
    for (; i < v; ++i) z[i] = bf16_1(exp1(bf16f(z[i]) - lse) * scale);
}
void row_grad_f16(uint16_t *z, int64_t v, float lse, float scale) {
    __m256 L = _mm256_set1_ps(lse), S = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= v; i += 8)
        _mm_storeu_si128((__m128i *)(z + i), to_f16(_mm256_mul_ps(exp_ps(_mm256_sub_ps(load_f16(z + i), L)), S)));
    for (; i < v; ++i) z[i] = f16_1(exp1(f16f(z[i]) - lse) * scale);
}

// Attention tiles. gemm: register block of MR rows x 16 columns (2 ymm) — 12 accumulators; column tails by
// maskload/maskstore.
inline __m256i tail_mask8(int64_t rem) {
    int32_t r = int32_t(rem < 0 ? 0 : rem > 8 ? 8 : rem);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
template <int MR>
inline void gemm_rows(int64_t N, int64_t K, const float *A, int64_t a_rs, int64_t a_cs, const float *B, int64_t ldb,
                      float *C, int64_t ldc, int accumulate) {
    for (int64_t n0 = 0; n0 < N; n0 += 16) {
        int64_t nn = N - n0;
        const __m256i m0 = tail_mask8(nn), m1 = tail_mask8(nn - 8);
        __m256 c[MR][2];
        for (int r = 0; r < MR; ++r) c[r][0] = c[r][1] = _mm256_setzero_ps();
        if (nn >= 16) {
            for (int64_t k = 0; k < K; ++k) {
                const float *b = B + k * ldb + n0;
                __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
                for (int r = 0; r < MR; ++r) {
                    __m256 a = _mm256_broadcast_ss(A + r * a_rs + k * a_cs);
                    c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
                    c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
                }
            }
        } else {
            for (int64_t k = 0; k < K; ++k) {
                const float *b = B + k * ldb + n0;
                __m256 b0 = _mm256_maskload_ps(b, m0), b1 = _mm256_maskload_ps(b + 8, m1);
                for (int r = 0; r < MR; ++r) {
                    __m256 a = _mm256_broadcast_ss(A + r * a_rs + k * a_cs);
                    c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
                    c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
                }
            }
        }
        for (int r = 0; r < MR; ++r) {
            float *p = C + r * ldc + n0;
            __m256 v0 = c[r][0], v1 = c[r][1];
            if (accumulate) {
                v0 = _mm256_add_ps(_mm256_maskload_ps(p, m0), v0);
                v1 = _mm256_add_ps(_mm256_maskload_ps(p + 8, m1), v1);
            }
            _mm256_maskstore_ps(p, m0, v0);
            _mm256_maskstore_ps(p + 8, m1, v1);
        }
    }
}
void attn_gemm_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t a_rs, int64_t a_cs, const float *B,
                   int64_t ldb, float *C, int64_t ldc, int accumulate) {
    int64_t m = 0;
    for (; m + 6 <= M; m += 6) gemm_rows<6>(N, K, A + m * a_rs, a_rs, a_cs, B, ldb, C + m * ldc, ldc, accumulate);
    const float *a = A + m * a_rs;
    float *c = C + m * ldc;
    switch (M - m) {
    case 5: gemm_rows<5>(N, K, a, a_rs, a_cs, B, ldb, c, ldc, accumulate); break;
    case 4: gemm_rows<4>(N, K, a, a_rs, a_cs, B, ldb, c, ldc, accumulate); break;
    case 3: gemm_rows<3>(N, K, a, a_rs, a_cs, B, ldb, c, ldc, accumulate); break;
    case 2: gemm_rows<2>(N, K, a, a_rs, a_cs, B, ldb, c, ldc, accumulate); break;
    case 1: gemm_rows<1>(N, K, a, a_rs, a_cs, B, ldb, c, ldc, accumulate); break;
    default: break;
    }
}
void row_dsoftmax_f32(float *p, const float *dp, int64_t n, float delta) {
    __m256 d = _mm256_set1_ps(delta);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(p + i, _mm256_mul_ps(_mm256_loadu_ps(p + i), _mm256_sub_ps(_mm256_loadu_ps(dp + i), d)));
    for (; i < n; ++i) p[i] = p[i] * (dp[i] - delta);
}

// 8 searches at once, as the AVX-512 version (gathers, separate add and multiply); the tail goes through a padded copy.
void quant8_search_f32(const float *code, const float *x, uint8_t *out, int64_t count) {
    const __m256i one = _mm256_set1_epi32(1), zero = _mm256_setzero_si256();
    const __m256 half = _mm256_set1_ps(0.5f);
    for (int64_t i = 0; i < count; i += 8) {
        int64_t n = count - i < 8 ? count - i : 8;
        alignas(32) float xs[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t k = 0; k < n; ++k) xs[k] = x[i + k];
        __m256 xv = _mm256_load_ps(xs);
        __m256i p = zero;
        for (int h = 128; h >= 2; h >>= 1) {
            __m256 c = _mm256_i32gather_ps(code, _mm256_add_epi32(p, _mm256_set1_epi32(h - 1)), 4);
            __m256i gt = _mm256_castps_si256(_mm256_cmp_ps(xv, c, _CMP_GT_OQ));
            p = _mm256_add_epi32(p, _mm256_and_si256(gt, _mm256_set1_epi32(h)));
        }
        __m256 val = _mm256_i32gather_ps(code, p, 4);
        __m256 hi = _mm256_i32gather_ps(code, _mm256_add_epi32(p, one), 4); // p <= 254
        __m256 lo = _mm256_i32gather_ps(code, _mm256_max_epi32(_mm256_sub_epi32(p, one), zero), 4);
        __m256i up = _mm256_castps_si256(_mm256_cmp_ps(xv, val, _CMP_GT_OQ));
        __m256i to_hi = _mm256_and_si256(up, _mm256_castps_si256(_mm256_cmp_ps(
                                                 xv, _mm256_mul_ps(_mm256_add_ps(hi, val), half), _CMP_GT_OQ)));
        __m256i to_lo = _mm256_andnot_si256(
            up, _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(xv, _mm256_mul_ps(_mm256_add_ps(lo, val), half),
                                                                   _CMP_LT_OQ)),
                                 _mm256_cmpgt_epi32(p, zero)));
        p = _mm256_sub_epi32(p, to_hi); // masks are -1: subtracting adds one
        p = _mm256_add_epi32(p, to_lo);
        alignas(32) int32_t ps[8];
        _mm256_store_si256(reinterpret_cast<__m256i *>(ps), p);
        for (int64_t k = 0; k < n; ++k) out[i + k] = uint8_t(ps[k]);
    }
}

} // namespace

const Table AVX2 = {"avx2",            deq4_f32,        deq4_bf16,      deq4_f16,
                    quant4_f32,        absmax_f32,      row_max_f32,    row_max_bf16,
                    row_max_f16,       row_exp_sum_inplace_f32, row_sumexp_bf16, row_sumexp_f16,
                    row_scale_f32,     row_grad_bf16,   row_grad_f16,
                      attn_gemm_f32, row_dsoftmax_f32, quant8_search_f32};

} // namespace sftn::isa
