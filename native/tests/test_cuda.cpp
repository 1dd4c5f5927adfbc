// CUDA kernels against the CPU kernels of the same library (themselves checked against the reference): 4-bit and
// 8-bit codes/absmax bit-exact, dequantized values bit-exact, cross-entropy within fp32 tolerance. Exits 77
// (CTest "skipped") when no GPU is visible.
#include <cuda_runtime.h>

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
    CHECK(jbnb_quantize_4bit_cuda_fp32(nullptr, nullptr, nullptr, 48, 10, JBNB_NF4, nullptr) == JBNB_EINVAL);
    return check::finish("test_cuda");
}
