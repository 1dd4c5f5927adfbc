// AVX2 + FMA fused elementwise kernels (fused_isa.hpp). Includes nothing but intrinsics (see kernels_isa.hpp).
// Same rounding notes as fused_avx512.cpp.
#include <immintrin.h>

#include "fused_isa.hpp"

namespace sftn::isa {
namespace {

// The same polynomial as kernels_avx2.cpp's (that one is local to its translation unit).
inline __m256 exp_ps(__m256 x) {
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
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}

// s = sigmoid(g) and c = 1 - s without cancellation: with e = exp(-|g|) (never overflows) and r = 1 / (1 + e),
// s = r, c = e r for g >= 0 and s = e r, c = r below (accurate in both tails).
inline void sigmoid2(__m256 g, __m256 &s, __m256 &c) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 absg = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), g);
    __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), absg));
    __m256 r = _mm256_div_ps(one, _mm256_add_ps(one, e));
    __m256 er = _mm256_mul_ps(e, r);
    __m256 neg = _mm256_cmp_ps(g, _mm256_setzero_ps(), _CMP_LT_OQ);
    s = _mm256_blendv_ps(r, er, neg);
    c = _mm256_blendv_ps(er, r, neg);
}

// Lanes [0, left) set (all when left >= 8), for maskload/maskstore.
inline __m256i tail_mask(int64_t left) {
    int l = left >= 8 ? 8 : int(left);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(l), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

void swiglu_fwd_f32(const float *gate, const float *up, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i += 8) {
        __m256i k = tail_mask(n - i);
        __m256 g = _mm256_maskload_ps(gate + i, k);
        __m256 u = _mm256_maskload_ps(up + i, k);
        __m256 sg, c;
        sigmoid2(g, sg, c);
        _mm256_maskstore_ps(out + i, k, _mm256_mul_ps(_mm256_mul_ps(g, sg), u));
    }
}

void swiglu_bwd_f32(const float *gate, const float *up, const float *dout, float *dgate, float *dup, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 8) {
        __m256i k = tail_mask(n - i);
        __m256 g = _mm256_maskload_ps(gate + i, k);
        __m256 u = _mm256_maskload_ps(up + i, k);
        __m256 d = _mm256_maskload_ps(dout + i, k);
        __m256 s, c;
        sigmoid2(g, s, c);
        _mm256_maskstore_ps(dup + i, k, _mm256_mul_ps(d, _mm256_mul_ps(g, s)));
        __m256 ds = _mm256_mul_ps(s, _mm256_add_ps(one, _mm256_mul_ps(g, c)));
        _mm256_maskstore_ps(dgate + i, k, _mm256_mul_ps(_mm256_mul_ps(d, u), ds));
    }
}

void rope_f32(const float *x, float *out, const float *c, const float *s, int64_t h, float sign) {
    const __m256 sg = _mm256_set1_ps(sign);
    for (int64_t i = 0; i < h; i += 8) {
        __m256i k = tail_mask(h - i);
        __m256 a = _mm256_maskload_ps(x + i, k), b = _mm256_maskload_ps(x + i + h, k);
        __m256 cv = _mm256_maskload_ps(c + i, k);
        __m256 sv = _mm256_mul_ps(sg, _mm256_maskload_ps(s + i, k));
        _mm256_maskstore_ps(out + i, k, _mm256_sub_ps(_mm256_mul_ps(a, cv), _mm256_mul_ps(b, sv)));
        _mm256_maskstore_ps(out + i + h, k, _mm256_add_ps(_mm256_mul_ps(b, cv), _mm256_mul_ps(a, sv)));
    }
}

} // namespace

const FusedTable FUSED_AVX2 = {"avx2", swiglu_fwd_f32, swiglu_bwd_f32, rope_f32};

} // namespace sftn::isa
