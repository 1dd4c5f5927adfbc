// Fused AdamW step against an fp64 transcription of torch.optim.AdamW (single-tensor path): several steps with and
// without weight decay, results independent of the thread count, argument errors.
#include <cmath>
#include <random>
#include <vector>

#include "check.hpp"
#include "sftnative_bnb.h"

namespace {

struct State {
    std::vector<float> p, m, v;
};

// torch.optim.AdamW in fp64 (the kernel computes in fp32: compared with a relative tolerance)
void reference(std::vector<double> &p, const std::vector<float> &g, std::vector<double> &m, std::vector<double> &v,
               double lr, double b1, double b2, double eps, double wd, int64_t step) {
    double bc1 = 1 - std::pow(b1, double(step)), bc2 = 1 - std::pow(b2, double(step));
    for (size_t i = 0; i < p.size(); ++i) {
        p[i] *= 1 - lr * wd;
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * double(g[i]) * g[i];
        p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
    }
}

void steps_match_reference(double wd, int threads) {
    const int64_t n = 100003; // odd, above the parallel threshold
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    State s{std::vector<float>(n), std::vector<float>(n, 0.0f), std::vector<float>(n, 0.0f)};
    for (auto &x : s.p) x = 0.02f * nd(rng);
    std::vector<double> rp(s.p.begin(), s.p.end()), rm(n, 0.0), rv(n, 0.0);
    CHECK_OK(jbnb_set_num_threads(threads));
    const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (int64_t step = 1; step <= 5; ++step) {
        std::vector<float> g(n);
        for (auto &x : g) x = 0.1f * nd(rng);
        g[0] = 0.0f; // a zero gradient: the update is decay only... plus the moments' history
        CHECK_OK(jbnb_adamw_cpu_fp32(s.p.data(), g.data(), s.m.data(), s.v.data(), n, lr, b1, b2, eps, wd, step));
        reference(rp, g, rm, rv, lr, b1, b2, eps, wd, step);
    }
    double worst = 0;
    for (int64_t i = 0; i < n; ++i) {
        double err = std::fabs(double(s.p[i]) - rp[i]) / std::max(1e-3, std::fabs(rp[i]));
        worst = std::max(worst, err);
    }
    CHECK_MSG(worst < 1e-5, "AdamW params vs fp64 reference: worst relative error " + std::to_string(worst));
}

} // namespace

int main() {
    steps_match_reference(0.0, 1);
    steps_match_reference(0.01, 2);
    // the same result on 1 and 4 threads, bit for bit (elementwise: no reduction order to depend on)
    {
        const int64_t n = 300001;
        std::vector<float> g(n), p1(n), p4(n), m1(n, 0), m4(n, 0), v1(n, 0), v4(n, 0);
        for (int64_t i = 0; i < n; ++i) {
            g[size_t(i)] = std::sin(0.001f * float(i));
            p1[size_t(i)] = p4[size_t(i)] = std::cos(0.002f * float(i));
        }
        CHECK_OK(jbnb_set_num_threads(1));
        CHECK_OK(jbnb_adamw_cpu_fp32(p1.data(), g.data(), m1.data(), v1.data(), n, 1e-3, 0.9, 0.999, 1e-8, 0.1, 1));
        CHECK_OK(jbnb_set_num_threads(4));
        CHECK_OK(jbnb_adamw_cpu_fp32(p4.data(), g.data(), m4.data(), v4.data(), n, 1e-3, 0.9, 0.999, 1e-8, 0.1, 1));
        bool same = true;
        for (int64_t i = 0; i < n; ++i) same = same && check::bits(p1[size_t(i)]) == check::bits(p4[size_t(i)]);
        CHECK_MSG(same, "thread count changed the result");
    }
    float x = 1, gx = 1, mx = 0, vx = 0;
    CHECK(jbnb_adamw_cpu_fp32(&x, &gx, &mx, &vx, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, 0) == JBNB_EINVAL);
    CHECK(jbnb_adamw_cpu_fp32(&x, &gx, &mx, &vx, 1, 1e-3, 1.0, 0.999, 1e-8, 0.0, 1) == JBNB_EINVAL);
    CHECK(jbnb_adamw_cpu_fp32(nullptr, &gx, &mx, &vx, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1) == JBNB_EINVAL);
    CHECK_OK(jbnb_adamw_cpu_fp32(nullptr, nullptr, nullptr, nullptr, 0, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1));
    CHECK_MSG(x == 1.0f, "failed calls must not write");
    CHECK_OK(jbnb_set_num_threads(0));
    return check::finish("test_adamw_cpu");
}
