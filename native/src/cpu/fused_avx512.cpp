// AVX-512 fused elementwise kernels (fused_isa.hpp). Includes nothing but intrinsics (see kernels_isa.hpp).
// RoPE rounds like the scalar kernel (separate multiplies and one add: -ffp-contract=off keeps the compiler from
// fusing); SwiGLU uses a Cephes-style exp polynomial (within ~2 ulp of expf), so it differs from the scalar kernel
// by a few ulp — tested in native/tests/test_fused_cpu.cpp.
#include <immintrin.h>

#include "fused_isa.hpp"

namespace sftn::isa {
namespace {

// The same polynomial as kernels_avx512.cpp's (that one is local to its translation unit).
inline __m512 exp_ps(__m512 x) {
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
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

// s = sigmoid(g) and c = 1 - s without cancellation: with e = exp(-|g|) (never overflows) and r = 1 / (1 + e),
// s = r, c = e r for g >= 0 and s = e r, c = r below (accurate in both tails).
inline void sigmoid2(__m512 g, __m512 &s, __m512 &c) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(g)));
    __m512 r = _mm512_div_ps(one, _mm512_add_ps(one, e)); // (rcp14 + a Newton step measured no faster)
    __m512 er = _mm512_mul_ps(e, r);
    __mmask16 neg = _mm512_cmp_ps_mask(g, _mm512_setzero_ps(), _CMP_LT_OQ);
    s = _mm512_mask_blend_ps(neg, r, er);
    c = _mm512_mask_blend_ps(neg, er, r);
}

inline __mmask16 tail_mask(int64_t left) { return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u); }

void swiglu_fwd_f32(const float *gate, const float *up, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 g = _mm512_maskz_loadu_ps(k, gate + i);
        __m512 u = _mm512_maskz_loadu_ps(k, up + i);
        __m512 sg, c;
        sigmoid2(g, sg, c);
        _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(_mm512_mul_ps(g, sg), u));
    }
}

void swiglu_bwd_f32(const float *gate, const float *up, const float *dout, float *dgate, float *dup, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 g = _mm512_maskz_loadu_ps(k, gate + i);
        __m512 u = _mm512_maskz_loadu_ps(k, up + i);
        __m512 d = _mm512_maskz_loadu_ps(k, dout + i);
        __m512 s, c;
        sigmoid2(g, s, c);
        _mm512_mask_storeu_ps(dup + i, k, _mm512_mul_ps(d, _mm512_mul_ps(g, s)));
        __m512 ds = _mm512_mul_ps(s, _mm512_add_ps(one, _mm512_mul_ps(g, c)));
        _mm512_mask_storeu_ps(dgate + i, k, _mm512_mul_ps(_mm512_mul_ps(d, u), ds));
    }
}

void rope_f32(const float *x, float *out, const float *c, const float *s, int64_t h, float sign) {
    const __m512 sg = _mm512_set1_ps(sign);
    for (int64_t i = 0; i < h; i += 16) {
        __mmask16 k = tail_mask(h - i);
        __m512 a = _mm512_maskz_loadu_ps(k, x + i), b = _mm512_maskz_loadu_ps(k, x + i + h);
        __m512 cv = _mm512_maskz_loadu_ps(k, c + i);
        __m512 sv = _mm512_mul_ps(sg, _mm512_maskz_loadu_ps(k, s + i));
        _mm512_mask_storeu_ps(out + i, k, _mm512_sub_ps(_mm512_mul_ps(a, cv), _mm512_mul_ps(b, sv)));
        _mm512_mask_storeu_ps(out + i + h, k, _mm512_add_ps(_mm512_mul_ps(b, cv), _mm512_mul_ps(a, sv)));
    }
}

} // namespace

const FusedTable FUSED_AVX512 = {"avx512", swiglu_fwd_f32, swiglu_bwd_f32, rope_f32};

} // namespace sftn::isa
