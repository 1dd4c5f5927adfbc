// Fused AdamW step on host memory: one pass over param, grad and the two moments instead of libtorch's eight
// elementwise kernels (each a full read/write of 58M floats for the benchmark model: ~0.23 s of a ~1.3 s step).
// The arithmetic is torch.optim.AdamW's single-tensor path, op by op in fp32 without FMA contraction, so it matches
// libtorch's unfused ops to rounding (libtorch's vectorised lerp may use an FMA; this one does not).
#include <cmath>

#include "../common.hpp"
#include "sftnative_bnb.h"

namespace sftn {
namespace {

struct AdamWScalars {
    float decay;      // 1 - lr * weight_decay (1 when weight_decay == 0: the multiply is skipped, as in torch)
    float w1;         // lerp weight 1 - beta1
    float beta2;      // v *= beta2
    float one_m_b2;   // addcmul value 1 - beta2
    float bc2_sqrt;   // sqrt(1 - beta2^step)
    float eps;
    float neg_step;   // -lr / (1 - beta1^step)
    bool has_decay;
};

void adamw_range(float *p, const float *g, float *m, float *v, int64_t lo, int64_t hi, const AdamWScalars &s) {
    for (int64_t i = lo; i < hi; ++i) {
        float pi = p[i], gi = g[i], mi = m[i], vi = v[i];
        if (s.has_decay) pi = pi * s.decay;
        // torch lerp: weight < 0.5 ? self + weight * (end - self) : end - (end - self) * (1 - weight)
        mi = s.w1 < 0.5f ? mi + s.w1 * (gi - mi) : gi - (gi - mi) * (1.0f - s.w1);
        vi = vi * s.beta2;
        vi = vi + s.one_m_b2 * gi * gi; // addcmul: self + value * t1 * t2
        float denom = std::sqrt(vi) / s.bc2_sqrt + s.eps;
        pi = pi + s.neg_step * (mi / denom); // addcdiv: self + value * (t1 / t2)
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
    }
}

} // namespace
} // namespace sftn

using namespace sftn;

extern "C" {

int32_t jbnb_adamw_cpu_fp32(float *param, const float *grad, float *exp_avg, float *exp_avg_sq, int64_t n, double lr,
                            double beta1, double beta2, double eps, double weight_decay, int64_t step) {
    return guarded(__func__, [&] {
        if (n < 0) invalid("n must be >= 0, got " + std::to_string(n));
        if (n > 0 && (!param || !grad || !exp_avg || !exp_avg_sq)) invalid("null tensor pointer");
        if (step < 1) invalid("step must be >= 1 (the count after this update), got " + std::to_string(step));
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) invalid("betas must be in [0, 1)");
        // Scalars as torch computes them: in double on the host, then rounded to the tensor's fp32.
        AdamWScalars s;
        s.has_decay = weight_decay != 0;
        s.decay = float(1 - lr * weight_decay);
        s.w1 = float(1 - beta1);
        s.beta2 = float(beta2);
        s.one_m_b2 = float(1 - beta2);
        s.bc2_sqrt = float(std::sqrt(1 - std::pow(beta2, double(step))));
        s.eps = float(eps);
        s.neg_step = float(-(lr / (1 - std::pow(beta1, double(step)))));
        parallel_for(n, 4096, 1 << 16,
                     [&](int64_t lo, int64_t hi) { adamw_range(param, grad, exp_avg, exp_avg_sq, lo, hi, s); });
    });
}

} // extern "C"
