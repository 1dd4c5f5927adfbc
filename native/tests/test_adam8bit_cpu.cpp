// bitsandbytes' 8-bit blockwise Adam (jbnb_adam_8bit_blockwise_cpu_*) and its 32-bit small-tensor update against
// an independent transcription: nearest code by a linear scan with the midpoint rule (not the binary search), the
// update written out per element, several steps with a partial last block, NaN/inf gradients, an all-zero block,
// weight decay after the update; the same bits on 1 and 4 threads; the maps' defining facts; argument errors.
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "../src/common.hpp"
#include "../src/cpu/dispatch.hpp"
#include "check.hpp"
#include "sftnative_bnb.h"

namespace {

std::vector<float> codebook(int which) {
    std::vector<float> c(256);
    CHECK_OK(jbnb_codebook(which, c.data()));
    return c;
}

// Nearest code of x by a linear scan: the largest index whose value is below x decides between it and the next by
// the fp32 midpoint; a tie goes to the even index (bitsandbytes' binary search always ends on an even pivot,
// 127 + (±64 ±32 ... ±1), and returns it on a tie). NaN -> 0.
uint8_t nearest(const std::vector<float> &code, float x) {
    if (!(x == x)) return 0;
    int below = -1; // last index with code[i] < x
    for (int i = 0; i < 256; ++i)
        if (code[size_t(i)] < x) below = i;
    if (below < 0) return 0;
    if (below == 255) return 255;
    float lo = code[size_t(below)], hi = code[size_t(below + 1)];
    float mid = (lo + hi) * 0.5f;
    if (x == mid) return uint8_t(below % 2 == 0 ? below : below + 1);
    return uint8_t(x > mid ? below + 1 : below);
}

struct Ref {
    std::vector<float> p;
    std::vector<uint8_t> c1, c2;
    std::vector<float> a1, a2;
};

void ref_step(Ref &r, const std::vector<float> &g, const std::vector<float> &q1, const std::vector<float> &q2, float b1,
              float b2, float eps, int step, float lr, float wd) {
    const int64_t n = int64_t(r.p.size()), nb = (n + 255) / 256;
    float c1f = 1.0f - float(std::pow(double(b1), step));
    float c2f = std::sqrt(1.0f - float(std::pow(double(b2), step)));
    float step_size = (-lr * c2f) / c1f;
    for (int64_t b = 0; b < nb; ++b) {
        std::vector<float> m(256), v(256);
        float mx1 = -FLT_MAX, mx2 = -FLT_MAX;
        for (int64_t j = 0; j < 256; ++j) {
            int64_t i = b * 256 + j;
            float gi = i < n ? g[size_t(i)] : 0.0f;
            float mi = q1[i < n ? r.c1[size_t(i)] : 128] * r.a1[size_t(b)];
            float vi = q2[i < n ? r.c2[size_t(i)] : 0] * r.a2[size_t(b)];
            if (std::isfinite(gi)) {
                float t = (1.0f - b2) * gi;
                vi = vi * b2 + t * gi;
                mi = mi * b1 + (1.0f - b1) * gi;
            } else {
                mi = vi = 0.0f;
            }
            m[size_t(j)] = mi;
            v[size_t(j)] = vi;
            mx1 = std::fmax(mx1, std::fabs(mi));
            mx2 = std::fmax(mx2, std::fabs(vi));
        }
        r.a1[size_t(b)] = mx1;
        r.a2[size_t(b)] = mx2;
        for (int64_t j = 0; j < 256 && b * 256 + j < n; ++j) {
            size_t i = size_t(b * 256 + j);
            if (std::isfinite(g[i])) {
                float denom = std::sqrt(v[size_t(j)]) + c2f * eps;
                r.p[i] = r.p[i] + step_size * (m[size_t(j)] / denom);
                if (wd > 0) r.p[i] = r.p[i] * (1.0f - lr * wd);
            }
            uint8_t k1 = nearest(q1, m[size_t(j)] / mx1);
            if (std::signbit(q1[k1]) != std::signbit(m[size_t(j)])) k1 = uint8_t(m[size_t(j)] > 0 ? k1 + 1 : k1 - 1);
            r.c1[i] = k1;
            r.c2[i] = nearest(q2, v[size_t(j)] / mx2);
        }
    }
}

void steps_match_reference(float wd, int threads) {
    const int64_t n = 5000; // 19 full blocks + a partial one
    const auto q1 = codebook(8), q2 = codebook(9);
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> p(static_cast<size_t>(n));
    for (auto &x : p) x = 0.05f * nd(rng);
    std::vector<uint8_t> c1(static_cast<size_t>(n), 0), c2(static_cast<size_t>(n), 0);
    std::vector<float> a1(20, 0.0f), a2(20, 0.0f);
    Ref r{p, c1, c2, a1, a2};
    CHECK_OK(jbnb_set_num_threads(threads));
    for (int step = 1; step <= 6; ++step) {
        std::vector<float> g(static_cast<size_t>(n));
        for (auto &x : g) x = 0.01f * nd(rng);
        for (int64_t i = 256; i < 512; ++i) g[size_t(i)] = 0.0f; // an all-zero block: absmax 0, 0/0 codes
        g[3] = NAN;
        g[700] = INFINITY;
        CHECK_OK(jbnb_adam_8bit_blockwise_cpu_fp32(p.data(), g.data(), c1.data(), c2.data(), 0.9f, 0.999f, 0.0f, 0.0f,
                                                   1e-8f, step, 1e-3f, q1.data(), q2.data(), a1.data(), a2.data(), wd,
                                                   1.0f, 0, n));
        ref_step(r, g, q1, q2, 0.9f, 0.999f, 1e-8f, step, 1e-3f, wd);
    }
    bool same = true;
    for (int64_t i = 0; i < n; ++i)
        same = same && check::bits(p[size_t(i)]) == check::bits(r.p[size_t(i)]) && c1[size_t(i)] == r.c1[size_t(i)] &&
               c2[size_t(i)] == r.c2[size_t(i)];
    for (size_t b = 0; b < 20; ++b) same = same && check::bits(a1[b]) == check::bits(r.a1[b]) && a2[b] == r.a2[b];
    for (int64_t i = 0; i < n && !same; ++i)
        if (p[size_t(i)] != r.p[size_t(i)] || c1[size_t(i)] != r.c1[size_t(i)] || c2[size_t(i)] != r.c2[size_t(i)]) {
            std::printf("first difference at %lld: p %.9g / %.9g, c1 %d / %d, c2 %d / %d\n", (long long)i,
                        double(p[size_t(i)]), double(r.p[size_t(i)]), c1[size_t(i)], r.c1[size_t(i)], c2[size_t(i)],
                        r.c2[size_t(i)]);
            break;
        }
    CHECK_MSG(same, "8-bit Adam differs from the transcription (wd " + std::to_string(wd) + ")");
    CHECK_MSG(a1[1] == 0.0f && a2[1] == 0.0f, "an all-zero block keeps absmax 0");
}

void bf16_rounds_twice() {
    // bf16 parameter: the update and the decay are each rounded to bf16, as the kernel's (T)(...) conversions do.
    const auto q1 = codebook(8), q2 = codebook(9);
    const int64_t n = 300;
    std::vector<uint16_t> p(static_cast<size_t>(n)), g(static_cast<size_t>(n));
    std::vector<float> pf(static_cast<size_t>(n)), gf(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        pf[size_t(i)] = 0.5f + 0.001f * float(i);
        gf[size_t(i)] = std::sin(float(i));
        uint32_t pb, gb;
        std::memcpy(&pb, &pf[size_t(i)], 4);
        std::memcpy(&gb, &gf[size_t(i)], 4);
        p[size_t(i)] = uint16_t(pb >> 16); // truncation: these are the exact bf16 inputs
        g[size_t(i)] = uint16_t(gb >> 16);
    }
    std::vector<uint8_t> c1(static_cast<size_t>(n), 0), c2(static_cast<size_t>(n), 0);
    std::vector<float> a1(2, 0.0f), a2(2, 0.0f);
    CHECK_OK(jbnb_adam_8bit_blockwise_cpu_bf16(p.data(), g.data(), c1.data(), c2.data(), 0.9f, 0.999f, 0, 0, 1e-8f, 1,
                                               0.01f, q1.data(), q2.data(), a1.data(), a2.data(), 0.1f, 1.0f, 0, n));
    bool ok = true;
    for (int64_t i = 0; i < n; ++i) {
        auto bf = [](uint16_t h) {
            uint32_t b = uint32_t(h) << 16;
            float f;
            std::memcpy(&f, &b, 4);
            return f;
        };
        auto rn = [&](float f) { // RNE to bf16 and back
            uint32_t b;
            std::memcpy(&b, &f, 4);
            return bf(uint16_t((b + 0x7fffu + ((b >> 16) & 1u)) >> 16));
        };
        float gi = bf(g[size_t(i)]), pi = bf(p[size_t(i)] /* updated */);
        (void)pi;
        // step 1 from zero state: m = 0.1 g, v = 0.001 g^2, update = -lr * sign(g) * |g| / (|g| + eps') ~ -lr*sign(g)
        float m = (1.0f - 0.9f) * gi, v = ((1.0f - 0.999f) * gi) * gi;
        float c2 = std::sqrt(1.0f - float(std::pow(double(0.999f), 1.0)));
        float ss = (-0.01f * c2) / (1.0f - float(std::pow(double(0.9f), 1.0)));
        float p0 = 0.0f;
        {
            uint32_t pb;
            std::memcpy(&pb, &pf[size_t(i)], 4);
            p0 = bf(uint16_t(pb >> 16));
        }
        float want = rn(rn(p0 + ss * (m / (std::sqrt(v) + c2 * 1e-8f))) * (1.0f - 0.01f * 0.1f));
        ok = ok && bf(p[size_t(i)]) == want;
    }
    CHECK_MSG(ok, "bf16 parameters: update then decay, each rounded to bf16");
}

void adam32_matches() {
    const int64_t n = 1000;
    std::vector<float> p(static_cast<size_t>(n)), g(static_cast<size_t>(n)), m(static_cast<size_t>(n), 0), v(static_cast<size_t>(n), 0);
    for (int64_t i = 0; i < n; ++i) {
        p[size_t(i)] = std::cos(0.01f * float(i));
        g[size_t(i)] = i % 7 == 0 ? 0.0f : std::sin(0.3f * float(i));
    }
    std::vector<float> rp = p, rm = m, rv = v;
    for (int step = 1; step <= 3; ++step) {
        CHECK_OK(jbnb_adam_32bit_cpu_fp32(g.data(), p.data(), m.data(), v.data(), nullptr, 0.0f, 0.0f, 0.9f, 0.999f, 0,
                                          0, 1e-8f, 0.01f, step, 1e-3f, 1.0f, 1, n));
        float c1 = 1.0f - float(std::pow(double(0.9f), step)), c2 = std::sqrt(1.0f - float(std::pow(double(0.999f), step)));
        float ss = (-1e-3f * c2) / c1;
        for (size_t i = 0; i < size_t(n); ++i) {
            if (g[i] == 0.0f) continue; // skip_zeros
            rm[i] = rm[i] * 0.9f + (1.0f - 0.9f) * g[i];
            float gg = g[i] * g[i];
            rv[i] = rv[i] * 0.999f + (1.0f - 0.999f) * gg;
            rp[i] = rp[i] + ss * (rm[i] / (std::sqrt(rv[i]) + 1e-8f * c2));
            rp[i] = rp[i] * (1.0f - 1e-3f * 0.01f);
        }
    }
    bool same = true;
    for (size_t i = 0; i < size_t(n); ++i)
        same = same && check::bits(p[i]) == check::bits(rp[i]) && check::bits(m[i]) == check::bits(rm[i]) &&
               check::bits(v[i]) == check::bits(rv[i]);
    CHECK_MSG(same, "32-bit Adam differs from the transcription");
}

// The branchless search equals bitsandbytes' search (code8_search) on every code, every midpoint and its float
// neighbours, values beyond both ends, NaN, and a dense sweep, for both maps.
void search_matches() {
    for (int which : {8, 9}) {
        const auto q = codebook(which);
        std::vector<float> xs = {NAN, -INFINITY, INFINITY, -2.0f, 2.0f, -0.0f, 0.0f};
        for (int i = 0; i < 256; ++i) {
            float c = q[size_t(i)];
            xs.insert(xs.end(), {c, std::nextafter(c, -2.0f), std::nextafter(c, 2.0f)});
            if (i < 255) {
                float mid = (c + q[size_t(i + 1)]) * 0.5f;
                xs.insert(xs.end(), {mid, std::nextafter(mid, -2.0f), std::nextafter(mid, 2.0f)});
            }
        }
        for (int k = 0; k <= 200000; ++k) xs.push_back(-1.05f + 2.1f * float(k) / 200000.0f);
        bool same = true;
        for (float x : xs) same = same && sftn::code8_search(q.data(), x) == sftn::code8_search_branchless(q.data(), x);
        CHECK_MSG(same, "branchless search differs from bitsandbytes' search (map " + std::to_string(which) + ")");
        for (float x : xs) // and from the linear-scan reference with even-index ties (finite x)
            same = same && (std::isnan(x) || nearest(q, x) == sftn::code8_search(q.data(), x));
        CHECK_MSG(same, "binary search differs from the nearest-code reference (map " + std::to_string(which) + ")");
        for (int isa = JBNB_ISA_SCALAR; isa <= JBNB_ISA_AVX512; ++isa) { // the vector searches, tails included
            if (jbnb_set_cpu_isa(isa) != JBNB_OK) continue;
            std::vector<uint8_t> got(xs.size());
            for (size_t off = 0; off < 37; ++off) { // every tail length of both vector widths
                sftn::kernels().quant8_search_f32(q.data(), xs.data() + off, got.data() + off, int64_t(xs.size() - off));
                bool eq = true;
                for (size_t i = off; i < xs.size(); ++i) eq = eq && got[i] == sftn::code8_search(q.data(), xs[i]);
                CHECK_MSG(eq, std::string("quant8_search_f32 of ") + sftn::kernels().name + " differs at offset " +
                                  std::to_string(off));
            }
        }
        CHECK_OK(jbnb_set_cpu_isa(sftn::best_isa()));
    }
}

void maps() {
    const auto q1 = codebook(8), q2 = codebook(9);
    CHECK(q1[127] == 0.0f && q1[255] == 1.0f && q1[0] < -0.99f);
    CHECK(q2[0] == 0.0f && q2[255] == 1.0f);
    bool sorted = true;
    for (int i = 1; i < 256; ++i) sorted = sorted && q2[size_t(i)] > q2[size_t(i - 1)];
    CHECK_MSG(sorted, "unsigned dynamic map strictly ascending");
    // create_dynamic_map(signed=False): 128 midpoints of level 6 (scale 1) and 2 of level 0 (scale 1e-6)
    CHECK(std::fabs(q2[1] - 0.325e-6f) < 1e-12f); // (0.1 + 0.55) / 2 * 1e-6
    CHECK(std::fabs(q2[254] - 0.996484375f) < 1e-6f); // (1 - 0.9/128 + 1) / 2
}

} // namespace

int main() {
    maps();
    search_matches();
    for (int isa = JBNB_ISA_SCALAR; isa <= JBNB_ISA_AVX512; ++isa) {
        if (jbnb_set_cpu_isa(isa) != JBNB_OK) continue;
        steps_match_reference(0.0f, 1);
        steps_match_reference(0.01f, 4);
    }
    CHECK_OK(jbnb_set_cpu_isa(sftn::best_isa()));
    bf16_rounds_twice();
    adam32_matches();
    // 1 and 4 threads: identical bits (blocks are independent)
    {
        const int64_t n = 70000;
        const auto q1 = codebook(8), q2 = codebook(9);
        std::vector<float> g(static_cast<size_t>(n)), p1(static_cast<size_t>(n)), p4(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
            g[size_t(i)] = std::sin(0.001f * float(i));
            p1[size_t(i)] = p4[size_t(i)] = std::cos(0.002f * float(i));
        }
        int64_t nb = (n + 255) / 256;
        std::vector<uint8_t> s11(static_cast<size_t>(n), 0), s12(static_cast<size_t>(n), 0), s41(static_cast<size_t>(n), 0), s42(static_cast<size_t>(n), 0);
        std::vector<float> a11(static_cast<size_t>(nb), 0), a12(static_cast<size_t>(nb), 0), a41(static_cast<size_t>(nb), 0), a42(static_cast<size_t>(nb), 0);
        CHECK_OK(jbnb_set_num_threads(1));
        CHECK_OK(jbnb_adam_8bit_blockwise_cpu_fp32(p1.data(), g.data(), s11.data(), s12.data(), 0.9f, 0.999f, 0, 0,
                                                   1e-8f, 1, 1e-3f, q1.data(), q2.data(), a11.data(), a12.data(), 0.1f,
                                                   1.0f, 0, n));
        CHECK_OK(jbnb_set_num_threads(4));
        CHECK_OK(jbnb_adam_8bit_blockwise_cpu_fp32(p4.data(), g.data(), s41.data(), s42.data(), 0.9f, 0.999f, 0, 0,
                                                   1e-8f, 1, 1e-3f, q1.data(), q2.data(), a41.data(), a42.data(), 0.1f,
                                                   1.0f, 0, n));
        CHECK_MSG(p1 == p4 && s11 == s41 && s12 == s42 && a11 == a41 && a12 == a42, "thread count changed the result");
    }
    // argument errors write nothing
    float x = 1, gx = 1, a = 0, b = 0;
    uint8_t s1 = 0, s2 = 0;
    const auto q = codebook(8);
    CHECK(jbnb_adam_8bit_blockwise_cpu_fp32(&x, &gx, &s1, &s2, 0.9f, 0.999f, 0, 0, 1e-8f, 0, 1e-3f, q.data(), q.data(),
                                            &a, &b, 0, 1, 0, 1) == JBNB_EINVAL);
    CHECK(jbnb_adam_8bit_blockwise_cpu_fp32(&x, &gx, &s1, &s2, 1.0f, 0.999f, 0, 0, 1e-8f, 1, 1e-3f, q.data(), q.data(),
                                            &a, &b, 0, 1, 0, 1) == JBNB_EINVAL);
    CHECK(jbnb_adam_8bit_blockwise_cpu_fp32(&x, &gx, &s1, &s2, 0.9f, 0.999f, 0, 0, 1e-8f, 1, 1e-3f, nullptr, q.data(),
                                            &a, &b, 0, 1, 0, 1) == JBNB_EINVAL);
    CHECK(jbnb_adam_32bit_cpu_fp32(&gx, &x, &a, &b, nullptr, 1.0f, 0, 0.9f, 0.999f, 0, 0, 1e-8f, 0, 1, 1e-3f, 1, 0, 1) ==
          JBNB_EUNSUPPORTED);
    CHECK_MSG(x == 1.0f && s1 == 0 && a == 0.0f, "failed calls must not write");
    CHECK_OK(jbnb_set_num_threads(0));
    return check::finish("test_adam8bit_cpu");
}
