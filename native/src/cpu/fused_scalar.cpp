// Scalar fused elementwise kernels (fused_isa.hpp): the reference the vector versions are tested against.
#include <cmath>

#include "fused_isa.hpp"

namespace sftn::isa {
namespace {

// s = sigmoid(g) and c = 1 - s without cancellation: with e = exp(-|g|) (never overflows) and r = 1 / (1 + e),
// s = r, c = e r for g >= 0 and s = e r, c = r below (accurate in both tails).
inline void sigmoid2(float g, float &s, float &c) {
    float e = std::exp(-std::fabs(g)), r = 1.0f / (1.0f + e), er = e * r;
    s = g < 0.0f ? er : r;
    c = g < 0.0f ? r : er;
}

void swiglu_fwd_f32(const float *gate, const float *up, float *out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        float s, c;
        sigmoid2(gate[i], s, c);
        out[i] = gate[i] * s * up[i];
    }
}

void swiglu_bwd_f32(const float *gate, const float *up, const float *dout, float *dgate, float *dup, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        float g = gate[i], d = dout[i], s, c;
        sigmoid2(g, s, c);
        dup[i] = d * (g * s);
        dgate[i] = d * up[i] * (s * (1.0f + g * c));
    }
}

void rope_f32(const float *x, float *out, const float *c, const float *s, int64_t h, float sign) {
    for (int64_t i = 0; i < h; ++i) {
        float a = x[i], b = x[i + h], si = sign * s[i];
        out[i] = a * c[i] - b * si;
        out[i + h] = b * c[i] + a * si;
    }
}

} // namespace

const FusedTable FUSED_SCALAR = {"scalar", swiglu_fwd_f32, swiglu_bwd_f32, rope_f32};

} // namespace sftn::isa
