// Our CPU attention kernel alone (not a test): forward and backward of B 2, 8 heads, head_dim 64, causal, for each
// ISA the CPU has. Reports wall time and process CPU time (best of `iters`) and GFLOP/s of the useful (causal) work
// per CPU second, which stays meaningful when other jobs share the cores.
//   bench_attention [T=512] [iters=5]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "sftnative_bnb.h"

int main(int argc, char **argv) {
    const int64_t B = 2, H = 8, D = 64, T = argc > 1 ? std::atoll(argv[1]) : 512;
    const int iters = argc > 2 ? std::atoi(argv[2]) : 5;
    const size_t n = size_t(B * H * T * D);
    std::vector<float> q(n), k(n), v(n), o(n), dout(n), dq(n), dk(n), dv(n), lse(size_t(B * H * T));
    std::srand(1);
    for (size_t i = 0; i < n; ++i) {
        q[i] = float(std::rand() % 1000) / 500.0f - 1.0f;
        k[i] = float(std::rand() % 1000) / 500.0f - 1.0f;
        v[i] = float(std::rand() % 1000) / 500.0f - 1.0f;
        dout[i] = float(std::rand() % 1000) / 500.0f - 1.0f;
    }
    std::vector<int64_t> st; // contiguous (B, H, T, D) for all eight tensors
    for (int i = 0; i < 8; ++i) st.insert(st.end(), {H * T * D, T * D, D});
    // useful flops: causal half of the (T, T) products; forward 2 GEMMs, backward 5
    const double half = double(B * H) * double(T) * double(T) * double(D); // 2·T²·D / 2 per GEMM
    for (int isa = jbnb_cpu_isa(); isa >= 0; --isa) {
        if (jbnb_set_cpu_isa(isa) != 0) continue;
        double wf = 1e30, wb = 1e30, cf = 1e30, cb = 1e30;
        for (int it = 0; it < iters; ++it) {
            auto t0 = std::chrono::steady_clock::now();
            std::clock_t c0 = std::clock();
            jbnb_attention_fwd_cpu_fp32(q.data(), k.data(), v.data(), o.data(), lse.data(), B, H, H, T, D, st.data(),
                                        nullptr, nullptr, 0.125f, 0.0f);
            auto t1 = std::chrono::steady_clock::now();
            std::clock_t c1 = std::clock();
            jbnb_attention_bwd_cpu_fp32(q.data(), k.data(), v.data(), o.data(), dout.data(), lse.data(), dq.data(),
                                        dk.data(), dv.data(), B, H, H, T, D, st.data(), nullptr, nullptr, 0.125f,
                                        0.0f);
            auto t2 = std::chrono::steady_clock::now();
            std::clock_t c2 = std::clock();
            wf = std::min(wf, std::chrono::duration<double, std::milli>(t1 - t0).count());
            wb = std::min(wb, std::chrono::duration<double, std::milli>(t2 - t1).count());
            cf = std::min(cf, double(c1 - c0) * 1e3 / CLOCKS_PER_SEC);
            cb = std::min(cb, double(c2 - c1) * 1e3 / CLOCKS_PER_SEC);
        }
        std::printf("isa %d, %d threads, T %lld: wall fwd %.1f ms bwd %.1f ms; cpu fwd %.1f ms bwd %.1f ms -> "
                    "%.1f / %.1f GFLOP/s per cpu second\n",
                    isa, jbnb_num_threads(), (long long)T, wf, wb, cf, cb, 2 * half / cf / 1e6, 5 * half / cb / 1e6);
    }
    return 0;
}
