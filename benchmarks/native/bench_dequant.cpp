// NF4 dequantize throughput on the CPU against the memory bandwidth measured in the same run.
// Usage: bench_dequant [elements (default 2^28)] [threads (default all)]
// Bytes moved by a dequantize = packed codes (n/2) + absmax (4n/64) + output (4n fp32 or 2n bf16).
// Bandwidth reference = the best of: multi-threaded memcpy, a plain copy loop and a non-temporal copy (each counted
// as bytes read + bytes written), and a non-temporal write-only fill. Buffers are far larger than the last-level cache.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <immintrin.h>

#include "sftnative_bnb.h"

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

template <class F>
double best_of(int reps, F f) {
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        double t0 = now();
        f();
        best = std::min(best, now() - t0);
    }
    return best;
}

void parallel(int threads, size_t n, void (*body)(void *, size_t, size_t), void *ctx) {
    std::vector<std::thread> ts;
    size_t per = (n + threads - 1) / threads;
    for (int t = 0; t < threads; ++t) {
        size_t lo = std::min(n, t * per), hi = std::min(n, lo + per);
        ts.emplace_back([=] { body(ctx, lo, hi); });
    }
    for (auto &t : ts) t.join();
}

struct CopyCtx {
    const char *src;
    char *dst;
};

// STREAM-style copy with non-temporal stores (no read-for-ownership): the best read+write rate of the machine.
__attribute__((target("avx2"))) void nt_copy(void *p, size_t lo, size_t hi) {
    auto *c = static_cast<CopyCtx *>(p);
    for (size_t i = lo; i < hi; i += 128)
        for (size_t k = 0; k < 128; k += 32)
            _mm256_stream_si256((__m256i *)(c->dst + i + k), _mm256_load_si256((const __m256i *)(c->src + i + k)));
    _mm_sfence();
}
// Write-only non-temporal fill: dequantize is write-dominated (it writes 8x (fp32) / 4x (bf16) what it reads).
__attribute__((target("avx2"))) void nt_fill(void *p, size_t lo, size_t hi) {
    auto *c = static_cast<CopyCtx *>(p);
    __m256i v = _mm256_set1_epi32(7);
    for (size_t i = lo; i < hi; i += 32) _mm256_stream_si256((__m256i *)(c->dst + i), v);
    _mm_sfence();
}

} // namespace

int main(int argc, char **argv) {
    size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : (size_t(1) << 28);
    int threads = argc > 2 ? std::atoi(argv[2]) : int(std::thread::hardware_concurrency());
    jbnb_set_num_threads(threads);
    const int64_t bs = 64;
    size_t nb = (n + bs - 1) / bs;
    std::vector<float> absmax(nb, 0.02f);
    std::vector<uint8_t> packed(n / 2);
    for (size_t i = 0; i < packed.size(); ++i) packed[i] = uint8_t(i * 2654435761u >> 13);
    // 64-byte aligned like libtorch's allocations (a large std::vector is only 16-byte aligned)
    auto *out32 = static_cast<float *>(std::aligned_alloc(64, n * 4));
    auto *out16 = static_cast<uint16_t *>(std::aligned_alloc(64, n * 2));
    // touch all pages first
    std::memset(out32, 1, n * 4);
    std::memset(out16, 1, n * 2);

    // memory bandwidth: copy the fp32 output buffer's size between two buffers
    size_t bytes = n * 4 / 2;
    CopyCtx c{reinterpret_cast<const char *>(out32), reinterpret_cast<char *>(out32) + bytes};
    double t_memcpy = best_of(5, [&] {
        parallel(threads, bytes, [](void *p, size_t lo, size_t hi) {
            auto *cc = static_cast<CopyCtx *>(p);
            std::memcpy(cc->dst + lo, cc->src + lo, hi - lo);
        }, &c);
    });
    double t_loop = best_of(5, [&] {
        parallel(threads, bytes / 8, [](void *p, size_t lo, size_t hi) {
            auto *cc = static_cast<CopyCtx *>(p);
            auto *s = reinterpret_cast<const uint64_t *>(cc->src);
            auto *d = reinterpret_cast<uint64_t *>(cc->dst);
            for (size_t i = lo; i < hi; ++i) d[i] = s[i] + 1;
        }, &c);
    });
    double t_nt = best_of(5, [&] { parallel(threads, bytes / 128, [](void *p, size_t lo, size_t hi) { nt_copy(p, lo * 128, hi * 128); }, &c); });
    double t_fill = best_of(5, [&] { parallel(threads, bytes / 32, [](void *p, size_t lo, size_t hi) { nt_fill(p, lo * 32, hi * 32); }, &c); });
    double bw = std::max(2.0 * double(bytes) / std::min({t_memcpy, t_loop, t_nt}), double(bytes) / t_fill) / 1e9;

    double t32 = best_of(5, [&] { jbnb_dequantize_4bit_cpu_fp32(packed.data(), absmax.data(), out32, bs, int64_t(n), JBNB_NF4); });
    double t16 = best_of(5, [&] { jbnb_dequantize_4bit_cpu_bf16(packed.data(), absmax.data(), out16, bs, int64_t(n), JBNB_NF4); });
    double in_bytes = double(n) / 2 + double(nb) * 4;
    double gb32 = (in_bytes + 4.0 * double(n)) / t32 / 1e9, gb16 = (in_bytes + 2.0 * double(n)) / t16 / 1e9;
    const char *isa = jbnb_cpu_isa() == 2 ? "avx512" : jbnb_cpu_isa() == 1 ? "avx2" : "scalar";
    std::printf("elements %zu, blocksize %lld, threads %d, isa %s\n", n, (long long)bs, threads, isa);
    std::printf("memory bandwidth (copy of %.0f MiB, read+write): memcpy %.1f GB/s, loop %.1f GB/s, non-temporal %.1f GB/s"
                ", non-temporal write-only %.1f GB/s -> reference (best) %.1f GB/s\n", bytes / 1048576.0,
                2.0 * bytes / t_memcpy / 1e9, 2.0 * bytes / t_loop / 1e9, 2.0 * bytes / t_nt / 1e9, bytes / t_fill / 1e9, bw);
    std::printf("NF4 dequantize -> fp32: %.2f ms, %.1f GB/s = %.0f%% of bandwidth (%.2f Gelem/s)\n", t32 * 1e3, gb32,
                100 * gb32 / bw, n / t32 / 1e9);
    std::printf("NF4 dequantize -> bf16: %.2f ms, %.1f GB/s = %.0f%% of bandwidth (%.2f Gelem/s)\n", t16 * 1e3, gb16,
                100 * gb16 / bw, n / t16 / 1e9);
    std::free(out32);
    std::free(out16);
    return 0;
}
