// Optimizer step cost per parameter on the host: bitsandbytes' 8-bit blockwise AdamW (every ISA this CPU has) against
// the fused fp32 AdamW, one thread, random gradients, CPU time (the machine may be shared).
//   cmake -S native -B build -DSFTNATIVE_BUILD_BENCHMARKS=ON && cmake --build build --target bench_adam8bit
//   build/benchmarks/bench_adam8bit [parameters, default 8388608]
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <vector>

#include "sftnative_bnb.h"

int main(int argc, char **argv) {
    const int64_t n = argc > 1 ? std::atoll(argv[1]) : int64_t(8) << 20;
    std::vector<float> p(static_cast<size_t>(n)), g(static_cast<size_t>(n)), m(static_cast<size_t>(n), 0.0f), v(static_cast<size_t>(n), 0.0f);
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int64_t i = 0; i < n; ++i) {
        p[size_t(i)] = 0.02f * nd(rng);
        g[size_t(i)] = 1e-3f * nd(rng);
    }
    const int64_t nb = (n + 255) / 256;
    std::vector<uint8_t> s1(static_cast<size_t>(n), 0), s2(static_cast<size_t>(n), 0);
    std::vector<float> a1(static_cast<size_t>(nb), 0.0f), a2(static_cast<size_t>(nb), 0.0f), q1(256), q2(256);
    if (jbnb_codebook(8, q1.data()) || jbnb_codebook(9, q2.data()) || jbnb_set_num_threads(1)) return 1;
    const char *names[] = {"scalar", "avx2", "avx512"};
    for (int isa = JBNB_ISA_SCALAR; isa <= JBNB_ISA_AVX512; ++isa) {
        if (jbnb_set_cpu_isa(isa) != JBNB_OK) continue;
        for (int step = 1; step <= 3; ++step) {
            std::clock_t t0 = std::clock();
            int st = jbnb_adam_8bit_blockwise_cpu_fp32(p.data(), g.data(), s1.data(), s2.data(), 0.9f, 0.999f, 0.0f,
                                                       0.0f, 1e-8f, step, 1e-3f, q1.data(), q2.data(), a1.data(),
                                                       a2.data(), 0.01f, 1.0f, 0, n);
            std::clock_t t1 = std::clock();
            st |= jbnb_adamw_cpu_fp32(p.data(), g.data(), m.data(), v.data(), n, 1e-3, 0.9, 0.999, 1e-8, 0.01, step);
            std::clock_t t2 = std::clock();
            if (st != JBNB_OK) return 1;
            double per = 1e9 / CLOCKS_PER_SEC / double(n);
            std::printf("%-7s step %d: adam_8bit_blockwise %.2f ns/param, fused fp32 adamw %.2f ns/param\n", names[isa],
                        step, double(t1 - t0) * per, double(t2 - t1) * per);
        }
    }
    return 0;
}
