// AVX-512 (F, BW, VL, DQ + F16C/FMA) kernels. See kernels_isa.hpp for why this file includes nothing else.
// Every result must equal the scalar kernels bit for bit, except the cross-entropy exp (a Cephes-style
// polynomial, within ~2 ulp of libm's expf) — tested in native/tests.
#include <immintrin.h>

#include "kernels_isa.hpp"

namespace sftn::isa {
namespace {

// ---- helpers ---------------------------------------------------------------------------------------------
inline __m512 exp_ps(__m512 x) {
    // Clamp so that NaN passes through (max/min return the second operand when one is NaN).
    x = _mm512_min_ps(_mm512_set1_ps(88.3762626647949f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 r2 = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n); // p * 2^n, underflows gracefully to subnormals and 0
}

inline __m256i to_bf16(__m512 v) {
    __m512i b = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(r);
}
inline __m256i to_f16(__m512 v) { return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline __m512 load_bf16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
inline __m512 maskz_load_bf16(__mmask16 m, const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}
inline __m512 load_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
inline __m512 maskz_load_f16(__mmask16 m, const uint16_t *p) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
inline __mmask16 tail_mask(int64_t left) { return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u); }

// ---- 4-bit dequantize ------------------------------------------------------------------------------------
// 16 packed bytes -> 32 values in element order (high nibble first), scaled by absmax.
inline void deq32(const uint8_t *A, __m512 lut, __m512 scale, __m512 &v0, __m512 &v1) {
    const __m512i idx0 = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i idx1 = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)A));
    __m512i hi = _mm512_srli_epi32(bytes, 4);
    __m512i lo = _mm512_and_si512(bytes, _mm512_set1_epi32(0xf));
    __m512 vh = _mm512_permutexvar_ps(hi, lut), vl = _mm512_permutexvar_ps(lo, lut);
    v0 = _mm512_mul_ps(_mm512_permutex2var_ps(vh, idx0, vl), scale);
    v1 = _mm512_mul_ps(_mm512_permutex2var_ps(vh, idx1, vl), scale);
}

inline float code_at(const uint8_t *A, int64_t i, const float *lut) {
    uint8_t b = A[i >> 1];
    return lut[(i & 1) ? (b & 0xf) : (b >> 4)];
}

inline void deq4_f32_block(const uint8_t *A, float am, const float *lut, float *out, int64_t count, int stream) {
    __m512 L = _mm512_loadu_ps(lut), S = _mm512_set1_ps(am);
    int64_t i = 0;
    for (; i + 32 <= count; i += 32) {
        __m512 v0, v1;
        deq32(A + (i >> 1), L, S, v0, v1);
        if (stream) {
            _mm512_stream_ps(out + i, v0);
            _mm512_stream_ps(out + i + 16, v1);
        } else {
            _mm512_storeu_ps(out + i, v0);
            _mm512_storeu_ps(out + i + 16, v1);
        }
    }
    for (; i < count; ++i) out[i] = code_at(A, i, lut) * am;
}

// 16-bit outputs: the 16 possible outputs of a block are fp32 products lut[c] * absmax rounded once (exactly what
// the element-wise path computes), so each element is then a 16-bit table lookup (vpermw) in element order.
inline __m512i codes_u16(const uint8_t *A) {
    // byte b_i -> u16 lanes (2i, 2i+1) = (b_i >> 4, b_i & 15): little-endian dword = hi | lo << 16
    __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)A));
    return _mm512_or_si512(_mm512_srli_epi32(b, 4), _mm512_slli_epi32(_mm512_and_si512(b, _mm512_set1_epi32(0xf)), 16));
}

template <class Conv>
inline void deq4_16_block(const uint8_t *A, float am, const float *lut, uint16_t *out, int64_t count, int stream, Conv conv) {
    __m256i t16 = conv(_mm512_mul_ps(_mm512_loadu_ps(lut), _mm512_set1_ps(am))); // 16 rounded outputs
    __m512i table = _mm512_castsi256_si512(t16);
    int64_t i = 0;
    for (; i + 32 <= count; i += 32) {
        __m512i v = _mm512_permutexvar_epi16(codes_u16(A + (i >> 1)), table);
        if (stream) _mm512_stream_si512((__m512i *)(out + i), v);
        else _mm512_storeu_si512(out + i, v);
    }
    alignas(64) uint16_t t[32];
    _mm512_store_si512(t, table);
    for (; i < count; ++i) {
        uint8_t b = A[i >> 1];
        out[i] = t[(i & 1) ? (b & 0xf) : (b >> 4)];
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

// ---- 4-bit quantize --------------------------------------------------------------------------------------
inline __m512i codes16(__m512 y, const Quant4Spec *s) {
    const __m512i one = _mm512_set1_epi32(1);
    __m512i c = _mm512_setzero_si512();
    if (s->fp4_mag == nullptr) {
        for (int t = 0; t < s->count; ++t)
            c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(y, _mm512_set1_ps(s->thresholds[t]), _CMP_GT_OQ), c, one);
        return c;
    }
    __m512 a = _mm512_abs_ps(y);
    for (int t = 0; t < s->count; ++t)
        c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_set1_ps(s->thresholds[t]), _CMP_GT_OQ), c, one);
    const uint8_t *m = s->fp4_mag;
    __m512i mag = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, m[7], m[6], m[5], m[4], m[3], m[2], m[1], m[0]);
    c = _mm512_permutexvar_epi32(c, mag);
    __mmask16 neg = _mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_or_epi32(c, neg, c, _mm512_set1_epi32(8));
}
// 16 codes (elements e0..e15) -> 8 bytes (e0<<4 | e1, ...)
inline __m128i pack16(__m512i c) {
    __m512i t = _mm512_or_si512(_mm512_slli_epi32(c, 4), _mm512_srli_epi64(c, 32));
    return _mm512_cvtepi64_epi8(t);
}

void quant4_f32(const float *x, float inv, uint8_t *out, int64_t count, const Quant4Spec *s) {
    __m512 I = _mm512_set1_ps(inv);
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512 y = _mm512_mul_ps(_mm512_loadu_ps(x + i), I);
        _mm_storel_epi64((__m128i *)(out + (i >> 1)), pack16(codes16(y, s)));
    }
    if (i < count) { // even remainder < 16
        int64_t left = count - i;
        __m512 y = _mm512_mul_ps(_mm512_maskz_loadu_ps(tail_mask(left), x + i), I);
        alignas(16) uint8_t tmp[16];
        _mm_store_si128((__m128i *)tmp, pack16(codes16(y, s)));
        for (int64_t k = 0; k < left / 2; ++k) out[(i >> 1) + k] = tmp[k];
    }
}

float absmax_f32(const float *x, int64_t count) {
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) acc = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), acc);
    if (i < count) acc = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(tail_mask(count - i), x + i)), acc);
    return _mm512_reduce_max_ps(acc);
}

// ---- cross-entropy rows ----------------------------------------------------------------------------------
template <class Load, class LoadTail>
inline float row_max(int64_t v, Load load, LoadTail load_tail) {
    __m512 m = _mm512_set1_ps(-__builtin_inff());
    __mmask16 nan = 0;
    int64_t i = 0;
    for (; i + 16 <= v; i += 16) {
        __m512 z = load(i);
        nan |= _mm512_cmp_ps_mask(z, z, _CMP_UNORD_Q);
        m = _mm512_max_ps(m, z);
    }
    if (i < v) {
        __mmask16 k = tail_mask(v - i);
        __m512 z = _mm512_mask_mov_ps(_mm512_set1_ps(-__builtin_inff()), k, load_tail(k, i));
        nan |= _mm512_cmp_ps_mask(z, z, _CMP_UNORD_Q);
        m = _mm512_max_ps(m, z);
    }
    return nan ? __builtin_nanf("") : _mm512_reduce_max_ps(m);
}
float row_max_f32(const float *z, int64_t v) {
    return row_max(v, [&](int64_t i) { return _mm512_loadu_ps(z + i); },
                   [&](__mmask16 k, int64_t i) { return _mm512_maskz_loadu_ps(k, z + i); });
}
float row_max_bf16(const uint16_t *z, int64_t v) {
    return row_max(v, [&](int64_t i) { return load_bf16(z + i); },
                   [&](__mmask16 k, int64_t i) { return maskz_load_bf16(k, z + i); });
}
float row_max_f16(const uint16_t *z, int64_t v) {
    return row_max(v, [&](int64_t i) { return load_f16(z + i); },
                   [&](__mmask16 k, int64_t i) { return maskz_load_f16(k, z + i); });
}

float row_exp_sum_inplace_f32(float *z, int64_t v, float m) {
    __m512 M = _mm512_set1_ps(m), s = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= v; i += 16) {
        __m512 e = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(z + i), M));
        _mm512_storeu_ps(z + i, e);
        s = _mm512_add_ps(s, e);
    }
    if (i < v) {
        __mmask16 k = tail_mask(v - i);
        __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, z + i), M));
        _mm512_mask_storeu_ps(z + i, k, e);
        s = _mm512_mask_add_ps(s, k, s, e);
    }
    return _mm512_reduce_add_ps(s);
}

template <class Load, class LoadTail>
inline float sumexp(int64_t v, float m, Load load, LoadTail load_tail) {
    __m512 M = _mm512_set1_ps(m), s = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= v; i += 16) s = _mm512_add_ps(s, exp_ps(_mm512_sub_ps(load(i), M)));
    if (i < v) {
        __mmask16 k = tail_mask(v - i);
        s = _mm512_mask_add_ps(s, k, s, exp_ps(_mm512_sub_ps(load_tail(k, i), M)));
    }
    return _mm512_reduce_add_ps(s);
}
float row_sumexp_bf16(const uint16_t *z, int64_t v, float m) {
    return sumexp(v, m, [&](int64_t i) { return load_bf16(z + i); },
                  [&](__mmask16 k, int64_t i) { return maskz_load_bf16(k, z + i); });
}
float row_sumexp_f16(const uint16_t *z, int64_t v, float m) {
    return sumexp(v, m, [&](int64_t i) { return load_f16(z + i); },
                  [&](__mmask16 k, int64_t i) { return maskz_load_f16(k, z + i); });
}

void row_scale_f32(float *z, int64_t v, float f) {
    __m512 F = _mm512_set1_ps(f);
    int64_t i = 0;
    for (; i + 16 <= v; i += 16) _mm512_storeu_ps(z + i, _mm512_mul_ps(_mm512_loadu_ps(z + i), F));
    if (i < v) {
        __mmask16 k = tail_mask(v - i);
        _mm512_mask_storeu_ps(z + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, z + i), F));
    }
}

template <class Load, class LoadTail, class Conv>
inline void grad16(uint16_t *z, int64_t v, float lse, float scale, Load load, LoadTail load_tail, Conv conv) {
    __m512 L = _mm512_set1_ps(lse), S = _mm512_set1_ps(scale);
    int64_t i = 0;
    for (; i + 16 <= v; i += 16)
        _mm256_storeu_si256((__m256i *)(z + i), conv(_mm512_mul_ps(exp_ps(_mm512_sub_ps(load(i), L)), S)));
    if (i < v) {
        __mmask16 k = tail_mask(v - i);
        __m256i r = conv(_mm512_mul_ps(exp_ps(_mm512_sub_ps(load_tail(k, i), L)), S));
        _mm256_mask_storeu_epi16(z + i, k, r);
    }
}
void row_grad_bf16(uint16_t *z, int64_t v, float lse, float scale) {
    grad16(z, v, lse, scale, [&](int64_t i) { return load_bf16(z + i); },
           [&](__mmask16 k, int64_t i) { return maskz_load_bf16(k, z + i); }, to_bf16);
}
void row_grad_f16(uint16_t *z, int64_t v, float lse, float scale) {
    grad16(z, v, lse, scale, [&](int64_t i) { return load_f16(z + i); },
           [&](__mmask16 k, int64_t i) { return maskz_load_f16(k, z + i); }, to_f16);
}

// Attention tiles. gemm: register block of MR rows x 64 columns (4 zmm) — 24 accumulators, the B row loaded once
// per k and every A element broadcast; column tails by masks.
inline __mmask16 part_mask(int64_t rem) { return rem <= 0 ? __mmask16(0) : tail_mask(rem); }
template <int MR>
inline void gemm_rows(int64_t N, int64_t K, const float *A, int64_t a_rs, int64_t a_cs, const float *B, int64_t ldb,
                      float *C, int64_t ldc, int accumulate) {
    for (int64_t n0 = 0; n0 < N; n0 += 64) {
        int64_t nn = N - n0;
        const __mmask16 k0 = part_mask(nn), k1 = part_mask(nn - 16), k2 = part_mask(nn - 32), k3 = part_mask(nn - 48);
        __m512 c[MR][4];
        for (int r = 0; r < MR; ++r)
            for (int x = 0; x < 4; ++x) c[r][x] = _mm512_setzero_ps();
        if (nn >= 64) {
            for (int64_t k = 0; k < K; ++k) {
                const float *b = B + k * ldb + n0;
                __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), b2 = _mm512_loadu_ps(b + 32),
                       b3 = _mm512_loadu_ps(b + 48);
                for (int r = 0; r < MR; ++r) {
                    __m512 a = _mm512_set1_ps(A[r * a_rs + k * a_cs]);
                    c[r][0] = _mm512_fmadd_ps(a, b0, c[r][0]);
                    c[r][1] = _mm512_fmadd_ps(a, b1, c[r][1]);
                    c[r][2] = _mm512_fmadd_ps(a, b2, c[r][2]);
                    c[r][3] = _mm512_fmadd_ps(a, b3, c[r][3]);
                }
            }
        } else {
            for (int64_t k = 0; k < K; ++k) {
                const float *b = B + k * ldb + n0;
                __m512 b0 = _mm512_maskz_loadu_ps(k0, b), b1 = _mm512_maskz_loadu_ps(k1, b + 16),
                       b2 = _mm512_maskz_loadu_ps(k2, b + 32), b3 = _mm512_maskz_loadu_ps(k3, b + 48);
                for (int r = 0; r < MR; ++r) {
                    __m512 a = _mm512_set1_ps(A[r * a_rs + k * a_cs]);
                    c[r][0] = _mm512_fmadd_ps(a, b0, c[r][0]);
                    c[r][1] = _mm512_fmadd_ps(a, b1, c[r][1]);
                    c[r][2] = _mm512_fmadd_ps(a, b2, c[r][2]);
                    c[r][3] = _mm512_fmadd_ps(a, b3, c[r][3]);
                }
            }
        }
        const __mmask16 ks[4] = {k0, k1, k2, k3};
        for (int r = 0; r < MR; ++r)
            for (int x = 0; x < 4; ++x) {
                if (!ks[x]) continue;
                float *p = C + r * ldc + n0 + 16 * x;
                __m512 v = accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(ks[x], p), c[r][x]) : c[r][x];
                _mm512_mask_storeu_ps(p, ks[x], v);
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
    __m512 d = _mm512_set1_ps(delta);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(p + i, _mm512_mul_ps(_mm512_loadu_ps(p + i), _mm512_sub_ps(_mm512_loadu_ps(dp + i), d)));
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(p + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + i),
                                                       _mm512_sub_ps(_mm512_maskz_loadu_ps(k, dp + i), d)));
    }
}

// 16 searches at once: the pivot p = b of code8_search_branchless grows by h where x > code[p + h - 1] (gathers from
// the 1 KiB map, which stays in L1), then the final midpoint test; adds and multiplies are separate instructions, so
// the rounding is the scalar one. Masked loads/stores cover the tail.
void quant8_search_f32(const float *code, const float *x, uint8_t *out, int64_t count) {
    const __m512i one = _mm512_set1_epi32(1);
    const __m512 half = _mm512_set1_ps(0.5f);
    for (int64_t i = 0; i < count; i += 16) {
        __mmask16 live = count - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (count - i)) - 1u);
        __m512 xv = _mm512_maskz_loadu_ps(live, x + i);
        __m512i p = _mm512_setzero_si512();
        for (int h = 128; h >= 2; h >>= 1) {
            __m512 c = _mm512_i32gather_ps(_mm512_add_epi32(p, _mm512_set1_epi32(h - 1)), code, 4);
            p = _mm512_mask_add_epi32(p, _mm512_cmp_ps_mask(xv, c, _CMP_GT_OQ), p, _mm512_set1_epi32(h));
        }
        __m512 val = _mm512_i32gather_ps(p, code, 4);
        __m512 hi = _mm512_i32gather_ps(_mm512_add_epi32(p, one), code, 4);                       // p <= 254
        __m512 lo = _mm512_i32gather_ps(_mm512_max_epi32(_mm512_sub_epi32(p, one), _mm512_setzero_si512()), code, 4);
        __mmask16 up = _mm512_cmp_ps_mask(xv, val, _CMP_GT_OQ);
        __mmask16 to_hi = up & _mm512_cmp_ps_mask(xv, _mm512_mul_ps(_mm512_add_ps(hi, val), half), _CMP_GT_OQ);
        __mmask16 to_lo = __mmask16(~up) & _mm512_cmp_ps_mask(xv, _mm512_mul_ps(_mm512_add_ps(lo, val), half), _CMP_LT_OQ) &
                          _mm512_cmpgt_epi32_mask(p, _mm512_setzero_si512());
        p = _mm512_mask_add_epi32(p, to_hi, p, one);
        p = _mm512_mask_sub_epi32(p, to_lo, p, one);
        _mm512_mask_cvtepi32_storeu_epi8(out + i, live, p);
    }
}

} // namespace

const Table AVX512 = {"avx512",          deq4_f32,        deq4_bf16,      deq4_f16,
                      quant4_f32,        absmax_f32,      row_max_f32,    row_max_bf16,
                      row_max_f16,       row_exp_sum_inplace_f32, row_sumexp_bf16, row_sumexp_f16,
                      row_scale_f32,     row_grad_bf16,   row_grad_f16,
                      attn_gemm_f32, row_dsoftmax_f32, quant8_search_f32};

} // namespace sftn::isa
