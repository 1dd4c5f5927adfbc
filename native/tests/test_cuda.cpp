// CUDA kernels against the CPU kernels of the same library (themselves checked against the reference): 4-bit and
// 8-bit codes/absmax bit-exact, dequantized values bit-exact, cross-entropy within fp32 tolerance. Exits 77
// (CTest "skipped") when no GPU is visible.
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "check.hpp"
#include "sftnative_bnb.h"

namespace {

template <class T>
T *dev(const std::vector<T> &h) {
    T *d = nullptr;
    cudaMalloc(&d, h.size() * sizeof(T) + 16);
    cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice);
    return d;
}
template <class T>
std::vector<T> host(const T *d, size_t n) {
    std::vector<T> h(n);
    cudaDeviceSynchronize();
    cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost);
    return h;
}

void quant4(int64_t n, int64_t bs, int32_t qt) {
    check::Rng rng(uint64_t(n + bs));
    std::vector<float> x(static_cast<size_t>(n));
    for (auto &v : x) v = float(rng.normal());
    if (n > 200) {
        for (int i = 0; i < 64 && i < n; ++i) x[size_t(i)] = 0.0f; // an all-zero block when bs <= 64
        x[100] = NAN;
    }
    int64_t nb = (n + bs - 1) / bs, bytes = (n + 1) / 2;
    std::vector<uint8_t> pc(static_cast<size_t>(bytes));
    std::vector<float> ac(static_cast<size_t>(nb));
    CHECK_OK(jbnb_quantize_4bit_cpu_fp32(x.data(), ac.data(), pc.data(), bs, n, qt));
    float *dx = dev(x), *da = dev(std::vector<float>(static_cast<size_t>(nb)));
    uint8_t *dp = dev(std::vector<uint8_t>(static_cast<size_t>(bytes)));
    CHECK_OK(jbnb_quantize_4bit_cuda_fp32(dx, da, dp, bs, n, qt, nullptr));
    std::string ctx = "n=" + std::to_string(n) + " bs=" + std::to_string(bs) + " qt=" + std::to_string(qt);
    CHECK_MSG(host(dp, size_t(bytes)) == pc, "codes " + ctx);
    CHECK_MSG(host(da, size_t(nb)) == ac, "absmax " + ctx);
    std::vector<float> dc(static_cast<size_t>(n));
    CHECK_OK(jbnb_dequantize_4bit_cpu_fp32(pc.data(), ac.data(), dc.data(), bs, n, qt));
    float *dd = dev(std::vector<float>(static_cast<size_t>(n)));
    CHECK_OK(jbnb_dequantize_4bit_cuda_fp32(dp, da, dd, bs, n, qt, nullptr));
    std::vector<float> dg = host(dd, size_t(n));
    bool eq = true;
    for (int64_t i = 0; i < n; ++i) eq &= check::bits(dg[size_t(i)]) == check::bits(dc[size_t(i)]);
    CHECK_MSG(eq, "dequant fp32 " + ctx);
    std::vector<uint16_t> bc(static_cast<size_t>(n));
    CHECK_OK(jbnb_dequantize_4bit_cpu_bf16(pc.data(), ac.data(), bc.data(), bs, n, qt));
    uint16_t *db = dev(std::vector<uint16_t>(static_cast<size_t>(n)));
    CHECK_OK(jbnb_dequantize_4bit_cuda_bf16(dp, da, db, bs, n, qt, nullptr));
    std::vector<uint16_t> bg = host(db, size_t(n));
    eq = true;
    for (int64_t i = 0; i < n; ++i) eq &= bg[size_t(i)] == bc[size_t(i)] || (std::isnan(dc[size_t(i)]) && (bg[size_t(i)] & 0x7f80) == 0x7f80);
    CHECK_MSG(eq, "dequant bf16 " + ctx);
    // bitsandbytes-named drop-in gives the same bytes
    cquantize_blockwise_fp32_nf4(nullptr, dx, da, dp, int(bs), int(n));
    if (qt == JBNB_NF4) CHECK_MSG(host(dp, size_t(bytes)) == pc, "bnb-named quantize " + ctx);
    cudaFree(dx);
    cudaFree(da);
    cudaFree(dp);
    cudaFree(dd);
    cudaFree(db);
}

void quant8() {
    float code[256];
    CHECK_OK(jbnb_codebook(8, code));
    check::Rng rng(8);
    int64_t n = 100000, bs = 256;
    std::vector<float> x(static_cast<size_t>(n));
    for (auto &v : x) v = float(rng.normal());
    std::vector<uint8_t> qc(static_cast<size_t>(n));
    std::vector<float> ac(static_cast<size_t>((n + bs - 1) / bs));
    CHECK_OK(jbnb_quantize_8bit_cpu_fp32(code, x.data(), ac.data(), qc.data(), bs, n));
    float *dcode = dev(std::vector<float>(code, code + 256)), *dx = dev(x), *da = dev(ac);
    uint8_t *dq = dev(qc);
    CHECK_OK(jbnb_quantize_8bit_cuda_fp32(dcode, dx, da, dq, bs, n, nullptr));
    CHECK(host(dq, size_t(n)) == qc);
    CHECK(host(da, ac.size()) == ac);
    cudaFree(dcode);
    cudaFree(dx);
    cudaFree(da);
    cudaFree(dq);
}

void ce(int64_t B, int64_t T, int64_t V) {
    check::Rng rng{uint64_t(V)};
    int64_t rows = B * T;
    std::vector<float> z(static_cast<size_t>(rows * V));
    for (auto &v : z) v = float(rng.normal() * 3);
    std::vector<int64_t> labels(static_cast<size_t>(rows));
    for (auto &l : labels) l = rng.uniform() < 0.2 ? -100 : int64_t(rng.next() % uint64_t(V));
    std::vector<float> gc = z, lc(static_cast<size_t>(rows));
    CHECK_OK(jbnb_ce_chunk_cpu_fp32(gc.data(), rows, V, labels.data(), rows, 0, T, 1, -100, 0.5f, lc.data(), nullptr, nullptr, nullptr));
    float *dz = dev(z), *dl = dev(std::vector<float>(static_cast<size_t>(rows)));
    int64_t *dlab = dev(labels);
    CHECK_OK(jbnb_ce_chunk_cuda_fp32(dz, rows, V, dlab, rows, 0, T, 1, -100, 0.5f, dl, nullptr, nullptr));
    std::vector<float> gg = host(dz, z.size()), lg = host(dl, size_t(rows));
    bool ok = true;
    for (size_t i = 0; i < gg.size(); ++i) ok &= std::fabs(gg[i] - gc[i]) <= 1e-6f + 1e-5f * std::fabs(gc[i]);
    CHECK_MSG(ok, "ce gradient V=" + std::to_string(V));
    ok = true;
    for (size_t i = 0; i < lg.size(); ++i) ok &= std::fabs(lg[i] - lc[i]) <= 1e-5f * (1 + std::fabs(lc[i]));
    CHECK_MSG(ok, "ce loss V=" + std::to_string(V));
    cudaFree(dz);
    cudaFree(dl);
    cudaFree(dlab);
}

// 8-bit blockwise Adam: the bitsandbytes-named CUDA entry point gives the CPU kernel's bits (parameters, codes,
// absmax) over several steps, with a partial last block, NaN/inf gradients and a zero block; fp32 and bf16.
void adam8(int64_t n) {
    std::vector<float> q1(256), q2(256);
    CHECK_OK(jbnb_codebook(8, q1.data()));
    CHECK_OK(jbnb_codebook(9, q2.data()));
    check::Rng rng(static_cast<uint64_t>(n));
    int64_t nb = (n + 255) / 256;
    std::vector<float> p(static_cast<size_t>(n));
    for (auto &v : p) v = 0.05f * float(rng.normal());
    std::vector<uint16_t> pb(static_cast<size_t>(n));
    for (size_t i = 0; i < pb.size(); ++i) {
        uint32_t b;
        std::memcpy(&b, &p[i], 4);
        pb[i] = uint16_t(b >> 16);
    }
    std::vector<uint8_t> c1(static_cast<size_t>(n), 0), c2(static_cast<size_t>(n), 0), e1 = c1, e2 = c2;
    std::vector<float> a1(static_cast<size_t>(nb), 0.0f), a2 = a1, b1 = a1, b2 = a1;
    float *dp = dev(p), *dq1 = dev(q1), *dq2 = dev(q2), *da1 = dev(a1), *da2 = dev(a2), *db1 = dev(b1), *db2 = dev(b2);
    uint16_t *dpb = dev(pb);
    uint8_t *dc1 = dev(c1), *dc2 = dev(c2), *de1 = dev(e1), *de2 = dev(e2);
    for (int step = 1; step <= 4; ++step) {
        std::vector<float> g(static_cast<size_t>(n));
        for (auto &v : g) v = 0.01f * float(rng.normal());
        if (n > 600) {
            g[7] = NAN;
            g[300] = INFINITY;
            for (int i = 256; i < 512; ++i) g[size_t(i)] = 0.0f;
        }
        std::vector<uint16_t> gb(g.size());
        for (size_t i = 0; i < gb.size(); ++i) {
            uint32_t b;
            std::memcpy(&b, &g[i], 4);
            gb[i] = uint16_t(b >> 16);
        }
        float *dg = dev(g);
        uint16_t *dgb = dev(gb);
        CHECK_OK(jbnb_adam_8bit_blockwise_cpu_fp32(p.data(), g.data(), c1.data(), c2.data(), 0.9f, 0.999f, 0, 0, 1e-8f,
                                                   step, 1e-3f, q1.data(), q2.data(), a1.data(), a2.data(), 0.01f,
                                                   1.0f, 0, n));
        CHECK_OK(jbnb_adam_8bit_blockwise_cpu_bf16(pb.data(), gb.data(), e1.data(), e2.data(), 0.9f, 0.999f, 0, 0,
                                                   1e-8f, step, 1e-3f, q1.data(), q2.data(), b1.data(), b2.data(),
                                                   0.01f, 1.0f, 0, n));
        cadam_8bit_blockwise_grad_fp32(dp, dg, dc1, dc2, 0.9f, 0.999f, 0, 0, 1e-8f, step, 1e-3f, dq1, dq2, da1, da2,
                                       0.01f, 1.0f, false, int(n));
        cadam_8bit_blockwise_grad_bf16(dpb, dgb, de1, de2, 0.9f, 0.999f, 0, 0, 1e-8f, step, 1e-3f, dq1, dq2, db1, db2,
                                       0.01f, 1.0f, false, int(n));
        cudaDeviceSynchronize();
        cudaFree(dg);
        cudaFree(dgb);
    }
    bool same = host(dp, p.size()) == p && host(dpb, pb.size()) == pb && host(dc1, c1.size()) == c1 &&
                host(dc2, c2.size()) == c2 && host(de1, e1.size()) == e1 && host(de2, e2.size()) == e2 &&
                host(da1, a1.size()) == a1 && host(da2, a2.size()) == a2 && host(db1, b1.size()) == b1 &&
                host(db2, b2.size()) == b2;
    CHECK_MSG(same, "8-bit Adam on the GPU differs from the CPU kernel, n=" + std::to_string(n));
    for (void *d : {static_cast<void *>(dp), static_cast<void *>(dq1), static_cast<void *>(dq2),
                    static_cast<void *>(da1), static_cast<void *>(da2), static_cast<void *>(db1),
                    static_cast<void *>(db2), static_cast<void *>(dpb), static_cast<void *>(dc1),
                    static_cast<void *>(dc2), static_cast<void *>(de1), static_cast<void *>(de2)})
        cudaFree(d);
}

} // namespace

int main() {
    int32_t count = 0;
    if (jbnb_cuda_device_count(&count) != JBNB_OK || count == 0) {
        std::printf("test_cuda: no CUDA device (%s): skipped\n", jbnb_last_error());
        return 77;
    }
    for (int32_t qt : {JBNB_NF4, JBNB_FP4})
        for (int64_t bs : {32, 64, 128, 1024, 4096})
            for (int64_t n : {1, 17, 64, 1000, 4096 * 3 + 5, 1 << 20}) quant4(n, bs, qt);
    quant8();
    ce(2, 16, 1000);
    ce(1, 8, 151936);
    for (int64_t n : {1, 255, 5000, 1 << 20}) adam8(n);
    CHECK(jbnb_quantize_4bit_cuda_fp32(nullptr, nullptr, nullptr, 48, 10, JBNB_NF4, nullptr) == JBNB_EINVAL);
    return check::finish("test_cuda");
}
