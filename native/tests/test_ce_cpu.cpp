// Fused cross-entropy chunk kernel (fp32 / bf16 / fp16, every ISA) against an fp64 reference of spec §4.1–§4.3:
// loss, logsumexp, gradient, label shift across chunk boundaries, ignored rows, fully ignored sequences, bad labels.
#include <vector>

#include "check.hpp"
#include "reference.hpp"
#include "sftnative_bnb.h"

namespace sftn {
float fp16_to_float(uint16_t h);
uint16_t float_to_fp16(float f);
} // namespace sftn

namespace {

constexpr int64_t IGN = -100;

struct Ref {
    std::vector<double> loss, lse;
    std::vector<double> grad; // (rows, V)
};

// target of global row g (spec §4.1 shift)
int64_t target(const std::vector<int64_t> &labels, int64_t g, int64_t T, bool shift) {
    if (!shift) return labels[size_t(g)];
    return g % T == T - 1 ? IGN : labels[size_t(g + 1)];
}

Ref reference(const std::vector<float> &z, int64_t rows, int64_t V, const std::vector<int64_t> &labels, int64_t T,
              bool shift, double scale) {
    Ref r{std::vector<double>(size_t(rows)), std::vector<double>(size_t(rows)), std::vector<double>(z.size(), 0.0)};
    for (int64_t i = 0; i < rows; ++i) {
        int64_t t = target(labels, i, T, shift);
        if (t == IGN) continue;
        const float *row = z.data() + i * V;
        double m = row[0];
        for (int64_t v = 1; v < V; ++v) m = std::max(m, double(row[v]));
        double s = 0;
        for (int64_t v = 0; v < V; ++v) s += std::exp(double(row[v]) - m);
        double lse = m + std::log(s);
        r.lse[size_t(i)] = lse;
        r.loss[size_t(i)] = lse - row[t];
        for (int64_t v = 0; v < V; ++v)
            r.grad[size_t(i * V + v)] = (std::exp(double(row[v]) - lse) - (v == t ? 1.0 : 0.0)) * scale;
    }
    return r;
}

bool close(double got, double want, double rtol, double atol) { return std::fabs(got - want) <= atol + rtol * std::fabs(want); }

std::vector<float> random_logits(check::Rng &rng, int64_t n, double sigma) {
    std::vector<float> z(static_cast<size_t>(n));
    for (auto &v : z) v = float(rng.normal() * sigma);
    return z;
}

// Runs the fp32 kernel in chunks of `chunk` rows and compares with the reference.
void fp32_case(int64_t B, int64_t T, int64_t V, bool shift, int64_t chunk, double ignore_frac, const char *what) {
    check::Rng rng(uint64_t(B * 1000 + T * 10 + V));
    int64_t rows = B * T;
    std::vector<float> z = random_logits(rng, rows * V, 3.0);
    std::vector<int64_t> labels(static_cast<size_t>(rows));
    for (auto &l : labels) l = rng.uniform() < ignore_frac ? IGN : int64_t(rng.next() % uint64_t(V));
    double scale = 1.0 / 7.0;
    Ref ref = reference(z, rows, V, labels, T, shift, scale);
    std::vector<float> g = z, loss(static_cast<size_t>(rows)), lse(static_cast<size_t>(rows));
    double sum = 0;
    int64_t valid = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        int64_t n = std::min(chunk, rows - r0);
        CHECK_OK(jbnb_ce_chunk_cpu_fp32(g.data() + r0 * V, n, V, labels.data(), rows, r0, T, shift ? 1 : 0, IGN,
                                        float(scale), loss.data() + r0, lse.data() + r0, &sum, &valid));
    }
    double want_sum = 0;
    int64_t want_valid = 0;
    bool ok_loss = true, ok_grad = true;
    double worst = 0;
    for (int64_t i = 0; i < rows; ++i) {
        bool ign = target(labels, i, T, shift) == IGN;
        if (!ign) {
            want_sum += ref.loss[size_t(i)];
            ++want_valid;
            ok_loss &= close(loss[size_t(i)], ref.loss[size_t(i)], 1e-5, 1e-6);
            ok_loss &= close(lse[size_t(i)], ref.lse[size_t(i)], 1e-6, 1e-6);
        } else {
            ok_loss &= loss[size_t(i)] == 0.0f;
        }
        for (int64_t v = 0; v < V; ++v) {
            double want = ref.grad[size_t(i * V + v)], got = g[size_t(i * V + v)];
            ok_grad &= close(got, want, 4e-6, 1e-12);
            if (std::fabs(want) > 1e-30) worst = std::max(worst, std::fabs(got - want) / std::fabs(want));
        }
    }
    std::printf("%-40s worst relative gradient error %.2e\n", what, worst);
    std::string ctx = std::string(what) + " V=" + std::to_string(V);
    CHECK_MSG(ok_loss, "loss " + ctx);
    CHECK_MSG(ok_grad, "grad " + ctx);
    CHECK_MSG(valid == want_valid, "valid count " + ctx);
    CHECK_MSG(close(sum, want_sum, 1e-6, 1e-6), "loss sum " + ctx);
}

template <class Enc, class Dec>
void half_case(int64_t rows, int64_t V, Enc enc, Dec dec,
               int32_t (*fn)(uint16_t *, int64_t, int64_t, const int64_t *, int64_t, int64_t, int64_t, int32_t,
                             int64_t, float, float *, float *, double *, int64_t *),
               const char *what) {
    check::Rng rng(99);
    std::vector<float> zf = random_logits(rng, rows * V, 2.0);
    std::vector<uint16_t> z(zf.size());
    for (size_t i = 0; i < zf.size(); ++i) {
        z[i] = enc(zf[i]);
        zf[i] = dec(z[i]); // the reference sees exactly the 16-bit values
    }
    std::vector<int64_t> labels(static_cast<size_t>(rows));
    for (auto &l : labels) l = rng.uniform() < 0.2 ? IGN : int64_t(rng.next() % uint64_t(V));
    double scale = 0.25;
    Ref ref = reference(zf, rows, V, labels, 1, false, scale);
    std::vector<float> loss(static_cast<size_t>(rows));
    double sum = 0;
    int64_t valid = 0;
    CHECK_OK(fn(z.data(), rows, V, labels.data(), rows, 0, 1, 0, IGN, float(scale), loss.data(), nullptr, &sum, &valid));
    bool ok_loss = true, ok_grad = true;
    for (int64_t i = 0; i < rows; ++i) {
        ok_loss &= close(loss[size_t(i)], ref.loss[size_t(i)], 1e-5, 1e-5);
        for (int64_t v = 0; v < V; ++v) // 16-bit output: one rounding of the exact gradient
            ok_grad &= close(dec(z[size_t(i * V + v)]), ref.grad[size_t(i * V + v)], 1.0 / 128, 1e-7);
    }
    CHECK_MSG(ok_loss, std::string("loss ") + what);
    CHECK_MSG(ok_grad, std::string("grad ") + what);
}

void special_cases() {
    const int64_t V = 50;
    check::Rng rng(1);
    // a fully ignored sequence: zero gradient, zero loss, nothing counted
    std::vector<float> z = random_logits(rng, 4 * V, 1.0);
    std::vector<int64_t> labels(4, IGN);
    double sum = 0;
    int64_t valid = 0;
    CHECK_OK(jbnb_ce_chunk_cpu_fp32(z.data(), 4, V, labels.data(), 4, 0, 4, 1, IGN, 1.0f, nullptr, nullptr, &sum, &valid));
    bool zeros = true;
    for (float v : z) zeros &= v == 0.0f;
    CHECK(zeros && sum == 0.0 && valid == 0);
    // shift: a sequence whose only label is at position 0 has no loss term (nothing predicts it)
    z = random_logits(rng, 3 * V, 1.0);
    labels = {5, IGN, IGN};
    CHECK_OK(jbnb_ce_chunk_cpu_fp32(z.data(), 3, V, labels.data(), 3, 0, 3, 1, IGN, 1.0f, nullptr, nullptr, &sum, &valid));
    CHECK(valid == 0);
    // bad label: rejected before anything is written
    z = random_logits(rng, 2 * V, 1.0);
    std::vector<float> before = z;
    labels = {3, V};
    CHECK(jbnb_ce_chunk_cpu_fp32(z.data(), 2, V, labels.data(), 2, 0, 1, 0, IGN, 1.0f, nullptr, nullptr, &sum, &valid) == JBNB_EINVAL);
    CHECK(std::string(jbnb_last_error()).find("label 50 at position 1") != std::string::npos);
    CHECK(z == before);
    labels = {3, -7};
    CHECK(jbnb_ce_chunk_cpu_fp32(z.data(), 2, V, labels.data(), 2, 0, 1, 0, IGN, 1.0f, nullptr, nullptr, &sum, &valid) == JBNB_EINVAL);
    // ignore_index that is a real class, bad shift arguments, rows beyond the labels
    labels = {3, 4};
    CHECK(jbnb_ce_chunk_cpu_fp32(z.data(), 2, V, labels.data(), 2, 0, 1, 0, 3, 1.0f, nullptr, nullptr, &sum, &valid) == JBNB_EINVAL);
    CHECK(jbnb_ce_chunk_cpu_fp32(z.data(), 2, V, labels.data(), 2, 0, 0, 1, IGN, 1.0f, nullptr, nullptr, &sum, &valid) == JBNB_EINVAL);
    CHECK(jbnb_ce_chunk_cpu_fp32(z.data(), 2, V, labels.data(), 1, 0, 1, 0, IGN, 1.0f, nullptr, nullptr, &sum, &valid) == JBNB_EINVAL);
    CHECK(jbnb_ce_chunk_cpu_fp32(z.data(), 2, V, labels.data(), 2, 0, 1, 0, IGN, NAN, nullptr, nullptr, &sum, &valid) == JBNB_EINVAL);
    // NaN in one row's logits: that row's loss and gradient are NaN, the other row is untouched by it
    z = random_logits(rng, 2 * V, 1.0);
    z[7] = NAN;
    std::vector<float> loss(2);
    CHECK_OK(jbnb_ce_chunk_cpu_fp32(z.data(), 2, V, labels.data(), 2, 0, 1, 0, IGN, 1.0f, loss.data(), nullptr, nullptr, nullptr));
    CHECK(std::isnan(loss[0]) && std::isfinite(loss[1]) && std::isnan(z[0]) && std::isfinite(z[V]));
    // huge logits stay finite (max subtraction)
    z = random_logits(rng, 1 * V, 1.0);
    for (auto &v : z) v *= 1e4f;
    labels = {2};
    CHECK_OK(jbnb_ce_chunk_cpu_fp32(z.data(), 1, V, labels.data(), 1, 0, 1, 0, IGN, 1.0f, loss.data(), nullptr, nullptr, nullptr));
    double gsum = 0;
    for (float v : z) gsum += v;
    CHECK(std::isfinite(loss[0]) && std::fabs(gsum) < 1e-5); // a softmax gradient row sums to 0
}

// The exp used by the active ISA, isolated through the public kernel: with z_0 = 0 the maximum, every gradient
// entry is fl(exp(z_v) * f) and entry 0 is exactly f, so g_v / g_0 = exp(z_v) within one rounding.
void exp_accuracy(const std::string &name) {
    const int64_t V = 20000;
    std::vector<float> z(static_cast<size_t>(V));
    for (int64_t v = 0; v < V; ++v) z[size_t(v)] = -75.0f * float(v) / float(V);
    int64_t label = V - 1; // the target entry is not used below
    CHECK_OK(jbnb_ce_chunk_cpu_fp32(z.data(), 1, V, &label, 1, 0, 1, 0, IGN, 1.0f, nullptr, nullptr, nullptr, nullptr));
    double worst = 0;
    for (int64_t v = 1; v < V - 1; ++v) {
        double x = -75.0f * float(v) / float(V);
        double want = std::exp(double(float(x)));
        double got = double(z[size_t(v)]) / double(z[0]);
        worst = std::max(worst, std::fabs(got - want) / want);
    }
    std::printf("%-40s worst relative exp error %.2e\n", (name + " exp").c_str(), worst);
    CHECK_MSG(worst < 2.5e-7, name + " exp error " + std::to_string(worst));
}

} // namespace

int main() {
    int best = jbnb_cpu_isa();
    for (int isa = JBNB_ISA_SCALAR; isa <= best; ++isa) {
        CHECK_OK(jbnb_set_cpu_isa(isa));
        std::string name = isa == 0 ? "scalar" : isa == 1 ? "avx2" : "avx512";
        fp32_case(1, 37, 1000, false, 37, 0.2, (name + " plain").c_str());
        fp32_case(3, 13, 517, true, 10, 0.1, (name + " shifted, chunks of 10").c_str());
        fp32_case(2, 64, 4099, true, 7, 0.3, (name + " shifted, chunks of 7").c_str());
        fp32_case(1, 5, 1, false, 5, 0.0, (name + " V=1").c_str());
        half_case(9, 333, [](float f) { return ref::to_bf16(f); }, [](uint16_t h) { return ref::bf16_to_f(h); },
                  jbnb_ce_chunk_cpu_bf16, (name + " bf16").c_str());
        half_case(9, 333, sftn::float_to_fp16, sftn::fp16_to_float, jbnb_ce_chunk_cpu_fp16, (name + " fp16").c_str());
        special_cases();
        exp_accuracy(name);
    }
    CHECK_OK(jbnb_set_cpu_isa(best));
    return check::finish("test_ce_cpu");
}
