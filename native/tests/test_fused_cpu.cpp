// Fused SwiGLU and RoPE kernels (fused_cpu.cpp) against fp64 references on every ISA the CPU has: strided rows,
// odd lengths (vector tails), partial rotary, in-place RoPE, the backward as the transposed forward, thread-count
// independence and argument errors. Tolerances: a few fp32 roundings of the terms each result sums.
#include <cmath>
#include <vector>

#include "check.hpp"
#include "sftnative_bnb.h"

namespace {

constexpr double EPS = 1.0 / (1 << 24); // fp32 unit roundoff

std::vector<float> normal(check::Rng &rng, size_t n, double scale) {
    std::vector<float> v(n);
    for (auto &x : v) x = float(scale * rng.normal());
    return v;
}

void swiglu_case(int64_t rows, int64_t inter, int isa) {
    check::Rng rng(11 + rows * 31 + inter);
    const int64_t ld = 2 * inter + 3; // gate and up interleaved in one buffer, like a fused projection, plus slack
    std::vector<float> y = normal(rng, rows * ld, 3.0), dout = normal(rng, rows * inter, 1.0);
    y[0] = -100.0f; // deep in the sigmoid's tails
    if (inter > 1) y[1] = 95.0f;
    const float *gate = y.data(), *up = y.data() + inter;
    std::vector<float> out(rows * inter), dg(rows * inter), du(rows * inter);
    CHECK_OK(jbnb_swiglu_fwd_cpu_fp32(gate, ld, up, ld, out.data(), inter, rows, inter));
    CHECK_OK(jbnb_swiglu_bwd_cpu_fp32(gate, ld, up, ld, dout.data(), inter, dg.data(), inter, du.data(), inter, rows,
                                      inter));
    int bad = 0;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < inter; ++i) {
            double g = gate[r * ld + i], u = up[r * ld + i], d = dout[r * inter + i];
            double s = 1.0 / (1.0 + std::exp(-g));
            double f = g * s * u, dup = d * g * s, dgate = d * u * s * (1.0 + g * (1.0 - s));
            // exp polynomial (~2 ulp), the division and 2-4 products: 16 roundings of the magnitude; the backward's
            // 1 + g (1 - s) can cancel, so its bound is on the terms, not the result
            double tf = 16 * EPS * std::fabs(f) + 1e-37;
            double tu = 16 * EPS * std::fabs(dup) + 1e-37;
            double tg = 16 * EPS * std::fabs(d * u * s) * (1.0 + std::fabs(g * (1.0 - s))) + 1e-37;
            size_t k = r * inter + i;
            if (std::fabs(out[k] - f) > tf || std::fabs(du[k] - dup) > tu || std::fabs(dg[k] - dgate) > tg) {
                if (++bad <= 3)
                    std::fprintf(stderr, "isa %d swiglu r %lld i %lld g %g: out %g vs %g, dup %g vs %g, dgate %g vs %g\n",
                                 isa, (long long)r, (long long)i, g, out[k], f, du[k], dup, dg[k], dgate);
            }
        }
    CHECK_MSG(bad == 0, "swiglu " + std::to_string(rows) + "x" + std::to_string(inter) + " isa " + std::to_string(isa));
}

// x (B, T, H, D) with a padded head stride; cos/sin (B, T, R/2) or broadcast over the batch (cb = 0).
void rope_case(int64_t B, int64_t T, int64_t H, int64_t D, int64_t R, bool broadcast, int isa) {
    check::Rng rng(5 + B * 7 + T * 13 + D + R);
    const int64_t xh = D + 5, xt = H * xh, xb = T * xt; // strided like a view of a fused q/k/v output
    const int64_t h = R / 2, ct = h, cb = broadcast ? 0 : T * h;
    std::vector<float> x = normal(rng, B * xb, 1.0);
    std::vector<float> cs(broadcast ? T * h : B * T * h), sn(cs.size());
    for (size_t i = 0; i < cs.size(); ++i) {
        double a = 10.0 * rng.uniform();
        cs[i] = float(std::cos(a));
        sn[i] = float(std::sin(a));
    }
    std::vector<float> out(B * T * H * D, 7.0f), back(B * T * H * D, 7.0f);
    const int64_t st[8] = {xb, xt, xh, T * H * D, H * D, D, cb, ct};
    CHECK_OK(jbnb_rope_cpu_fp32(x.data(), out.data(), cs.data(), sn.data(), st, B, T, H, D, R, 0));
    const int64_t st2[8] = {T * H * D, H * D, D, T * H * D, H * D, D, cb, ct};
    CHECK_OK(jbnb_rope_cpu_fp32(out.data(), back.data(), cs.data(), sn.data(), st2, B, T, H, D, R, 1));
    std::vector<float> inplace = out; // backward in place must equal the out-of-place backward exactly
    CHECK_OK(jbnb_rope_cpu_fp32(inplace.data(), inplace.data(), cs.data(), sn.data(), st2, B, T, H, D, R, 1));
    int bad = 0;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
            for (int64_t hh = 0; hh < H; ++hh) {
                const float *xi = &x[b * xb + t * xt + hh * xh];
                const float *c = &cs[b * cb + t * ct], *s = &sn[b * cb + t * ct];
                size_t o = ((b * T + t) * H + hh) * D;
                for (int64_t i = 0; i < D; ++i) {
                    double ref, mag;
                    if (i >= R) {
                        ref = xi[i];
                        mag = 0;
                    } else {
                        int64_t j = i % h;
                        double a = xi[j], bb = xi[j + h];
                        ref = i < h ? a * c[j] - bb * s[j] : bb * c[j] + a * s[j];
                        mag = i < h ? std::fabs(a * c[j]) + std::fabs(bb * s[j])
                                    : std::fabs(bb * c[j]) + std::fabs(a * s[j]);
                    }
                    if (std::fabs(out[o + i] - ref) > 4 * EPS * mag && ++bad <= 3)
                        std::fprintf(stderr, "rope out %d,%d,%d,%d: %.9g vs %.9g mag %g\n", int(b), int(t), int(hh), int(i),
                                     out[o + i], ref, mag);
                    // the transposed rotation undoes the rotation: back = x up to the roundings of two passes
                    if (std::fabs(back[o + i] - xi[i]) > 8 * EPS * (std::fabs(xi[i]) + mag + 1e-30) + 1e-6 * (i < R))
                        if (++bad <= 3)
                            std::fprintf(stderr, "rope back %d: %g vs %g\n", int(i), back[o + i], xi[i]);
                    if (check::bits(inplace[o + i]) != check::bits(back[o + i])) ++bad;
                }
            }
    CHECK_MSG(bad == 0, "rope B" + std::to_string(B) + " T" + std::to_string(T) + " D" + std::to_string(D) + " R" +
                            std::to_string(R) + " isa " + std::to_string(isa) + ": " + std::to_string(bad) + " bad");
}

void threads_agree() {
    check::Rng rng(3);
    const int64_t rows = 300, inter = 517;
    std::vector<float> g = normal(rng, rows * inter, 2.0), u = normal(rng, rows * inter, 1.0);
    std::vector<float> a(rows * inter), b(rows * inter);
    CHECK_OK(jbnb_set_num_threads(1));
    CHECK_OK(jbnb_swiglu_fwd_cpu_fp32(g.data(), inter, u.data(), inter, a.data(), inter, rows, inter));
    CHECK_OK(jbnb_set_num_threads(2));
    CHECK_OK(jbnb_swiglu_fwd_cpu_fp32(g.data(), inter, u.data(), inter, b.data(), inter, rows, inter));
    CHECK(std::memcmp(a.data(), b.data(), a.size() * 4) == 0); // rows are independent: bit-identical
    CHECK_OK(jbnb_set_num_threads(0));
}

void argument_errors() {
    float v[8] = {0};
    int64_t st[8] = {0};
    CHECK(jbnb_swiglu_fwd_cpu_fp32(v, 2, v, 4, v, 4, 1, 4) == JBNB_EINVAL); // ld_gate < inter
    CHECK(jbnb_swiglu_fwd_cpu_fp32(nullptr, 4, v, 4, v, 4, 1, 4) == JBNB_EINVAL);
    CHECK(jbnb_swiglu_bwd_cpu_fp32(v, 4, v, 4, v, 4, v, 4, nullptr, 4, 1, 4) == JBNB_EINVAL);
    CHECK(jbnb_swiglu_fwd_cpu_fp32(nullptr, 0, nullptr, 0, nullptr, 0, 0, 0) == JBNB_OK); // empty: nothing to do
    CHECK(jbnb_rope_cpu_fp32(v, v, v, v, st, 1, 1, 1, 8, 3, 0) == JBNB_EINVAL);  // odd rot_dims
    CHECK(jbnb_rope_cpu_fp32(v, v, v, v, st, 1, 1, 1, 4, 6, 0) == JBNB_EINVAL);  // rot_dims > head_dim
    CHECK(jbnb_rope_cpu_fp32(v, v, v, v, nullptr, 1, 1, 1, 8, 8, 0) == JBNB_EINVAL);
}

} // namespace

int main() {
    const int best = jbnb_cpu_isa();
    for (int isa = JBNB_ISA_SCALAR; isa <= best; ++isa) {
        CHECK_OK(jbnb_set_cpu_isa(isa));
        swiglu_case(7, 1408, isa);
        swiglu_case(5, 37, isa); // vector tails
        swiglu_case(1, 3, isa);
        rope_case(2, 9, 3, 64, 64, false, isa);
        rope_case(1, 5, 2, 80, 40, true, isa); // partial rotary, tables broadcast over the batch
        rope_case(2, 3, 4, 12, 6, false, isa);  // half = 3: tails only
    }
    CHECK_OK(jbnb_set_cpu_isa(best));
    threads_agree();
    argument_errors();
    return check::finish("test_fused_cpu");
}
