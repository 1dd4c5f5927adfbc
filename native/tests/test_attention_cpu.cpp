// Flash attention (forward + backward, fp32 and bf16, every ISA) against an fp64 reference that materialises the full
// (T, T) score matrix: causal, right padding, packed segments, sliding window, GQA, soft-capping, head sizes that are
// not a multiple of the vector width, strided (B, T, H, D) inputs, and the key-range builder.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "check.hpp"
#include "sftnative_bnb.h"

namespace {

struct Case {
    const char *name;
    int64_t B, H, KVH, T, D;
    float softcap;
    bool causal_null; // pass NULL ranges (plain causal)
    std::vector<int64_t> segments; // (B, T) or empty
    std::vector<int64_t> lengths;  // (B) or empty
    int64_t window;
};

struct Ref {
    std::vector<double> out, lse, dq, dk, dv;
};

// Layout: q, out, dout, dq as (B, T, H, D) in memory (the model's transposed views); k, v, dk, dv as (B, KVH, T, D).
int64_t qi(const Case &c, int64_t b, int64_t h, int64_t t) { return ((b * c.T + t) * c.H + h) * c.D; }
int64_t ki(const Case &c, int64_t b, int64_t g, int64_t t) { return ((b * c.KVH + g) * c.T + t) * c.D; }

Ref reference(const Case &c, const std::vector<float> &q, const std::vector<float> &k, const std::vector<float> &v,
              const std::vector<float> &dout, const std::vector<int32_t> &lo, const std::vector<int32_t> &hi,
              double scale, const std::vector<float> *out_for_delta = nullptr) {
    Ref r{std::vector<double>(q.size()), std::vector<double>(size_t(c.B * c.H * c.T)), std::vector<double>(q.size()),
          std::vector<double>(k.size()), std::vector<double>(v.size())};
    const int64_t G = c.H / c.KVH, T = c.T, D = c.D;
    std::vector<double> p(static_cast<size_t>(T)), dcap(static_cast<size_t>(T)), dp(static_cast<size_t>(T));
    for (int64_t b = 0; b < c.B; ++b)
        for (int64_t h = 0; h < c.H; ++h) {
            const int64_t g = h / G;
            for (int64_t t = 0; t < T; ++t) {
                auto visible = [&](int64_t s) { return (s >= lo[size_t(b * T + t)] && s < hi[size_t(b * T + t)]) || s == t; };
                double m = -INFINITY;
                for (int64_t s = 0; s < T; ++s) {
                    if (!visible(s)) continue;
                    double x = 0;
                    for (int64_t d = 0; d < D; ++d) x += double(q[size_t(qi(c, b, h, t) + d)]) * k[size_t(ki(c, b, g, s) + d)];
                    x *= scale;
                    dcap[size_t(s)] = 1.0;
                    if (c.softcap > 0) {
                        double th = std::tanh(x / c.softcap);
                        x = c.softcap * th;
                        dcap[size_t(s)] = 1.0 - th * th;
                    }
                    p[size_t(s)] = x;
                    m = std::max(m, x);
                }
                double sum = 0;
                for (int64_t s = 0; s < T; ++s) sum += visible(s) ? std::exp(p[size_t(s)] - m) : 0.0;
                r.lse[size_t((b * c.H + h) * T + t)] = m + std::log(sum);
                for (int64_t s = 0; s < T; ++s) p[size_t(s)] = visible(s) ? std::exp(p[size_t(s)] - m) / sum : 0.0;
                double delta = 0;
                for (int64_t s = 0; s < T; ++s) {
                    double x = 0;
                    for (int64_t d = 0; d < D; ++d) {
                        r.out[size_t(qi(c, b, h, t) + d)] += p[size_t(s)] * v[size_t(ki(c, b, g, s) + d)];
                        x += double(dout[size_t(qi(c, b, h, t) + d)]) * v[size_t(ki(c, b, g, s) + d)];
                    }
                    dp[size_t(s)] = x;
                    delta += p[size_t(s)] * x;
                }
                if (out_for_delta) { // the backward's delta from a stored (rounded) output, as a flash kernel does
                    delta = 0;
                    for (int64_t d = 0; d < D; ++d)
                        delta += double((*out_for_delta)[size_t(qi(c, b, h, t) + d)]) * dout[size_t(qi(c, b, h, t) + d)];
                }
                for (int64_t s = 0; s < T; ++s) {
                    if (p[size_t(s)] == 0.0) continue;
                    double ds = p[size_t(s)] * (dp[size_t(s)] - delta) * dcap[size_t(s)] * scale;
                    for (int64_t d = 0; d < D; ++d) {
                        r.dq[size_t(qi(c, b, h, t) + d)] += ds * k[size_t(ki(c, b, g, s) + d)];
                        r.dk[size_t(ki(c, b, g, s) + d)] += ds * q[size_t(qi(c, b, h, t) + d)];
                        r.dv[size_t(ki(c, b, g, s) + d)] += p[size_t(s)] * dout[size_t(qi(c, b, h, t) + d)];
                    }
                }
            }
        }
    return r;
}

// fp32 error bound: each result is a sum of at most K = T + D rounded fp32 terms (dot products of length D, sums
// over T keys, plus the polynomial exp, ~2 ulp), so |err| <= ~K·u·Σ|terms|; Σ|terms| stays within a few times the
// largest |result| for these random inputs, and never below 1 (the inputs are N(0, 1): a gradient that cancels
// to 0, e.g. dq with a single visible key, still sums terms of that size). We allow 8·K·u·max(max|ref|, 1).
double tolerance(const Case &c, const std::vector<double> &ref) {
    double mx = 1.0;
    for (double x : ref) mx = std::max(mx, std::fabs(x));
    return 8.0 * double(c.T + c.D) * 5.96e-8 * mx;
}

template <class A>
double worst(const A &got, const std::vector<double> &want) {
    double w = 0;
    for (size_t i = 0; i < want.size(); ++i) w = std::max(w, std::fabs(double(got[i]) - want[i]));
    return w;
}

void run_case(const Case &c, int isa) {
    check::Rng rng(uint64_t(c.T * 131 + c.D * 7 + c.H));
    const int64_t nq = c.B * c.T * c.H * c.D, nk = c.B * c.KVH * c.T * c.D;
    std::vector<float> q(static_cast<size_t>(nq)), k(static_cast<size_t>(nk)), v(static_cast<size_t>(nk)), dout(static_cast<size_t>(nq));
    for (auto &x : q) x = float(rng.normal());
    for (auto &x : k) x = float(rng.normal());
    for (auto &x : v) x = float(rng.normal());
    for (auto &x : dout) x = float(rng.normal());
    std::vector<int32_t> lo(static_cast<size_t>(c.B * c.T)), hi(static_cast<size_t>(c.B * c.T));
    CHECK_OK(jbnb_attention_ranges_cpu(c.B, c.T, c.segments.empty() ? nullptr : c.segments.data(),
                                       c.lengths.empty() ? nullptr : c.lengths.data(), c.window, lo.data(), hi.data()));
    const double scale = 1.0 / std::sqrt(double(c.D));
    Ref ref = reference(c, q, k, v, dout, lo, hi, scale);
    const int64_t qs[3] = {c.T * c.H * c.D, c.D, c.H * c.D}, ks[3] = {c.KVH * c.T * c.D, c.T * c.D, c.D};
    std::vector<int64_t> strides;
    for (int i = 0; i < 8; ++i) {
        const int64_t *s = (i == 1 || i == 2 || i == 6 || i == 7) ? ks : qs; // q k v out dout dq dk dv
        strides.insert(strides.end(), s, s + 3);
    }
    const int32_t *plo = c.causal_null ? nullptr : lo.data(), *phi = c.causal_null ? nullptr : hi.data();
    std::vector<float> out(static_cast<size_t>(nq)), lse(size_t(c.B * c.H * c.T)), dq(size_t(nq), 7.0f), dk(size_t(nk), 7.0f),
        dv(size_t(nk), 7.0f);
    CHECK_OK(jbnb_attention_fwd_cpu_fp32(q.data(), k.data(), v.data(), out.data(), lse.data(), c.B, c.H, c.KVH, c.T,
                                         c.D, strides.data(), plo, phi, float(scale), c.softcap));
    CHECK_OK(jbnb_attention_bwd_cpu_fp32(q.data(), k.data(), v.data(), out.data(), dout.data(), lse.data(), dq.data(),
                                         dk.data(), dv.data(), c.B, c.H, c.KVH, c.T, c.D, strides.data(), plo, phi,
                                         float(scale), c.softcap));
    const char *names[5] = {"out", "lse", "dq", "dk", "dv"};
    const std::vector<float> *got[5] = {&out, &lse, &dq, &dk, &dv};
    const std::vector<double> *want[5] = {&ref.out, &ref.lse, &ref.dq, &ref.dk, &ref.dv};
    for (int i = 0; i < 5; ++i) {
        double w = worst(*got[i], *want[i]), tol = tolerance(c, *want[i]);
        CHECK_MSG(w <= tol, std::string(c.name) + " isa " + std::to_string(isa) + " " + names[i] + ": max error " +
                                std::to_string(w) + " > tolerance " + std::to_string(tol));
        if (isa == jbnb_cpu_isa() && i != 1)
            std::printf("  %-28s %-3s max err %.3g (tol %.3g)\n", c.name, names[i], w, tol);
    }
}

inline uint16_t to_bf16(float f) { // round to nearest even (inputs here are finite)
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return uint16_t((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}
inline float from_bf16(uint16_t h) {
    uint32_t b = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}

// The bf16 entry points: inputs are bf16 values (the fp64 reference sees exactly them), the kernel computes in fp32
// and rounds each output to bf16 once (unit roundoff u = 2^-8: 8 significant bits). So every output may differ from
// the reference by the fp32 bound above plus one bf16 rounding: |got - ref| <= tol_fp32 + 2^-8 * (|ref| + tol_fp32).
// The backward, like every flash kernel, takes delta = sum(out * dout) from the stored bf16 output, so the reference
// for the gradients is computed with that output (its own forward output is checked separately). lse stays fp32.
void run_case_bf16(const Case &c, int isa) {
    check::Rng rng(uint64_t(c.T * 131 + c.D * 7 + c.H + 1));
    const int64_t nq = c.B * c.T * c.H * c.D, nk = c.B * c.KVH * c.T * c.D;
    const size_t sq = static_cast<size_t>(nq), sk = static_cast<size_t>(nk);
    std::vector<uint16_t> q(sq), k(sk), v(sk), dout(sq);
    std::vector<float> qf(sq), kf(sk), vf(sk), df(sq);
    auto fill = [&](std::vector<uint16_t> &x, std::vector<float> &xf) {
        for (size_t i = 0; i < x.size(); ++i) x[i] = to_bf16(float(rng.normal())), xf[i] = from_bf16(x[i]);
    };
    fill(q, qf), fill(k, kf), fill(v, vf), fill(dout, df);
    std::vector<int32_t> lo(size_t(c.B * c.T)), hi(size_t(c.B * c.T));
    CHECK_OK(jbnb_attention_ranges_cpu(c.B, c.T, c.segments.empty() ? nullptr : c.segments.data(),
                                       c.lengths.empty() ? nullptr : c.lengths.data(), c.window, lo.data(), hi.data()));
    const double scale = 1.0 / std::sqrt(double(c.D));
    Ref ref = reference(c, qf, kf, vf, df, lo, hi, scale);
    const int64_t qs[3] = {c.T * c.H * c.D, c.D, c.H * c.D}, ks[3] = {c.KVH * c.T * c.D, c.T * c.D, c.D};
    std::vector<int64_t> strides;
    for (int i = 0; i < 8; ++i) {
        const int64_t *s = (i == 1 || i == 2 || i == 6 || i == 7) ? ks : qs; // q k v out dout dq dk dv
        strides.insert(strides.end(), s, s + 3);
    }
    const int32_t *plo = c.causal_null ? nullptr : lo.data(), *phi = c.causal_null ? nullptr : hi.data();
    std::vector<uint16_t> out(sq), dq(sq, 0x7f80), dk(sk, 0x7f80), dv(sk, 0x7f80);
    std::vector<float> lse(size_t(c.B * c.H * c.T));
    CHECK_OK(jbnb_attention_fwd_cpu_bf16(q.data(), k.data(), v.data(), out.data(), lse.data(), c.B, c.H, c.KVH, c.T,
                                         c.D, strides.data(), plo, phi, float(scale), c.softcap));
    CHECK_OK(jbnb_attention_bwd_cpu_bf16(q.data(), k.data(), v.data(), out.data(), dout.data(), lse.data(), dq.data(),
                                         dk.data(), dv.data(), c.B, c.H, c.KVH, c.T, c.D, strides.data(), plo, phi,
                                         float(scale), c.softcap));
    std::vector<float> of(sq);
    for (size_t i = 0; i < sq; ++i) of[i] = from_bf16(out[i]);
    Ref grads = reference(c, qf, kf, vf, df, lo, hi, scale, &of);
    const char *names[4] = {"out", "dq", "dk", "dv"};
    const std::vector<uint16_t> *got[4] = {&out, &dq, &dk, &dv};
    const std::vector<double> *want[4] = {&ref.out, &grads.dq, &grads.dk, &grads.dv};
    for (int i = 0; i < 4; ++i) {
        const double tol = tolerance(c, *want[i]);
        double ratio = 0, raw = 0; // largest error / its allowance; the plain max error for the log
        for (size_t j = 0; j < want[i]->size(); ++j) {
            const double want_j = (*want[i])[j], e = std::fabs(double(from_bf16((*got[i])[j])) - want_j);
            ratio = std::max(ratio, e / (tol + 0x1p-8 * (std::fabs(want_j) + tol)));
            raw = std::max(raw, e);
        }
        CHECK_MSG(ratio <= 1.0, std::string("bf16 ") + c.name + " isa " + std::to_string(isa) + " " + names[i] +
                                    ": error " + std::to_string(ratio) + " x its allowance (fp32 bound + bf16 rounding)");
        if (isa == jbnb_cpu_isa())
            std::printf("  bf16 %-23s %-3s max err %.3g, at most %.2f of the allowance\n", c.name, names[i], raw, ratio);
    }
    double wl = worst(lse, ref.lse), tl = tolerance(c, ref.lse);
    CHECK_MSG(wl <= tl, std::string("bf16 ") + c.name + " lse: max error " + std::to_string(wl));
}

std::vector<int64_t> packed_segments(int64_t B, int64_t T) {
    std::vector<int64_t> s(size_t(B * T), 0);
    for (int64_t b = 0; b < B; ++b) {
        int64_t id = 1, t = 0, len = 17 + 23 * b;
        while (t < T - 5) { // the last few positions stay padding (id 0)
            for (int64_t u = 0; u < len && t < T - 5; ++u, ++t) s[size_t(b * T + t)] = id;
            ++id;
            len = len * 3 % 61 + 5;
        }
    }
    return s;
}

void range_errors() {
    int32_t lo[8], hi[8];
    int64_t seg[8] = {1, 1, 2, 2, 1, 1, 0, 0}; // id 1 in two runs
    CHECK(jbnb_attention_ranges_cpu(1, 8, seg, nullptr, 0, lo, hi) == JBNB_EINVAL);
    CHECK(std::string(jbnb_last_error()).find("two separate runs") != std::string::npos);
    int64_t len[1] = {9};
    CHECK(jbnb_attention_ranges_cpu(1, 8, nullptr, len, 0, lo, hi) == JBNB_EINVAL);
    int64_t seg2[8] = {1, 1, 1, 2, 2, 0, 0, 0};
    int64_t len2[1] = {6};
    CHECK_OK(jbnb_attention_ranges_cpu(1, 8, seg2, len2, 2, lo, hi));
    const int32_t want_lo[8] = {0, 0, 1, 3, 3, 5, 6, 7}, want_hi[8] = {1, 2, 3, 4, 5, 5, 6, 7};
    for (int t = 0; t < 8; ++t) CHECK_MSG(lo[t] == want_lo[t] && hi[t] == want_hi[t], "range of position " + std::to_string(t));
    // bad arguments are reported, not crashed on
    float x = 0;
    int64_t st[12] = {0};
    CHECK(jbnb_attention_fwd_cpu_fp32(&x, &x, &x, &x, &x, 1, 3, 2, 1, 1, st, nullptr, nullptr, 1.0f, 0.0f) ==
          JBNB_EINVAL);
    uint16_t xb = 0;
    CHECK(jbnb_attention_fwd_cpu_bf16(&xb, &xb, &xb, &xb, &x, 1, 3, 2, 1, 1, st, nullptr, nullptr, 1.0f, 0.0f) ==
          JBNB_EINVAL);
    int32_t badlo[1] = {1}, badhi[1] = {0};
    CHECK(jbnb_attention_fwd_cpu_fp32(&x, &x, &x, &x, &x, 1, 1, 1, 1, 1, st, badlo, badhi, 1.0f, 0.0f) == JBNB_EINVAL);
}

} // namespace

int main() {
    const int best = jbnb_cpu_isa();
    std::vector<Case> cases = {
        {"causal (NULL ranges)", 2, 4, 4, 150, 64, 0.0f, true, {}, {}, 0},
        {"causal GQA D=80", 1, 6, 2, 131, 80, 0.0f, false, {}, {}, 0},
        {"right padding", 3, 2, 1, 97, 64, 0.0f, false, {}, {97, 40, 1}, 0},
        {"packed segments", 2, 4, 2, 200, 32, 0.0f, false, packed_segments(2, 200), {}, 0},
        {"sliding window 37", 1, 2, 2, 170, 64, 0.0f, false, {}, {}, 37},
        {"softcap 5 + window + GQA", 2, 4, 1, 90, 48, 5.0f, false, {}, {}, 20},
        {"head dim 8, T 1", 2, 2, 2, 1, 8, 0.0f, true, {}, {}, 0},
    };
    for (int isa = JBNB_ISA_SCALAR; isa <= best; ++isa) {
        CHECK_OK(jbnb_set_cpu_isa(isa));
        for (const Case &c : cases) run_case(c, isa), run_case_bf16(c, isa);
    }
    CHECK_OK(jbnb_set_cpu_isa(best));
    range_errors();
    return check::finish("test_attention_cpu");
}
