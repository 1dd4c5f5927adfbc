// Scalar fused elementwise kernels (fused_isa.hpp): the reference the vector versions are tested against.
#include <cmath>

#include "fused_isa.hpp"

namespace sftn::isa {
namespace {

// e = exp(-|g|) never overflows; 1 / (1 + e) for g >= 0, e / (1 + e) below (accurate in both tails)
inline float sigmoid(float g) {
    float e = std::exp(-std::fabs(g)), r = 1.0f / (1.0f + e);
    return g < 0.0f ? r * e : r;
}

void swiglu_fwd_f32(const float *gate, const float *up, float *out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

void swiglu_bwd_f32(const float *gate, const float *up, const float *dout, float *dgate, float *dup, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        float g = gate[i], s = sigmoid(g), d = dout[i];
        dup[i] = d * (g * s);
        dgate[i] = d * up[i] * (s * (1.0f + g * (1.0f - s)));
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
