// The per-step scalars of bitsandbytes' Adam kernels, computed once on the host in fp32 exactly as the CPU and CUDA
// paths both use them (so the two produce the same bits). powf(beta, step) is the fp32 rounding of the double power:
// the correctly rounded powf in all but astronomically rare cases (bitsandbytes' CUDA build uses the approximate
// __powf; docs/training.md).
#pragma once

#include <cmath>
#include <cstdint>

namespace sftn {

struct AdamScalars {
    float beta1, beta2, one_m_b1, one_m_b2, eps, lr, correction1, correction2, step_size, decay, gnorm;
    int has_decay;
};

inline AdamScalars adam_scalars(float beta1, float beta2, float eps, int32_t step, float lr, float weight_decay,
                                float gnorm) {
    AdamScalars s;
    s.beta1 = beta1;
    s.beta2 = beta2;
    s.one_m_b1 = 1.0f - beta1;
    s.one_m_b2 = 1.0f - beta2;
    s.eps = eps;
    s.lr = lr;
    s.correction1 = 1.0f - float(std::pow(double(beta1), double(step)));
    s.correction2 = std::sqrt(1.0f - float(std::pow(double(beta2), double(step))));
    s.step_size = (-lr * s.correction2) / s.correction1;
    s.has_decay = weight_decay > 0.0f ? 1 : 0;
    s.decay = 1.0f - lr * weight_decay;
    s.gnorm = gnorm;
    return s;
}

} // namespace sftn
