// bitsandbytes' 8-bit blockwise Adam/AdamW on the GPU under bitsandbytes' own C names and signatures
// (cadam_8bit_blockwise_grad_{fp32,fp16,bf16}: device pointers, legacy default stream, void, no exit()).
// The arithmetic is the one of cpu/adam8bit_cpu.cpp (bitsandbytes' kOptimizerStatic8bit2StateBlockwise, op by op),
// compiled without fast math and with -fmad=false, and the scalars come from the same host function, so a GPU step
// gives the CPU kernel's bits. One CUDA block of 256 threads per 256-element state block, one element per thread.
#include <cfloat>
#include <climits>
#include <string>

#include "../adam_scalars.hpp"
#include "../common.hpp"
#include "device.cuh"

namespace sftn::cuda {
namespace {

constexpr int kBlock = 256; // bitsandbytes' BLOCKSIZE_2STATE

template <class T> __device__ __forceinline__ float round_to(float v) { return to_f(from_f<T>(v)); }

// quantize_2D / dQuantize<0>: the branchless form of common.hpp's code8_search_branchless; code in shared memory.
__device__ __forceinline__ int code8_find(const float *code, float x) {
    int p = 0;
#pragma unroll
    for (int h = 128; h >= 2; h >>= 1) p += x > code[p + h - 1] ? h : 0;
    float val = code[p];
    if (x > val) return x > (code[p + 1] + val) * 0.5f ? p + 1 : p;
    if (p == 0) return 0;
    return x < (code[p - 1] + val) * 0.5f ? p - 1 : p;
}

template <class T>
__global__ void __launch_bounds__(kBlock) k_adam8(T *p, const T *g, uint8_t *state1, uint8_t *state2,
                                                  const float *code1, const float *code2, float *absmax1,
                                                  float *absmax2, AdamScalars s, int n) {
    __shared__ float q1[kBlock], q2[kBlock];
    q1[threadIdx.x] = code1[threadIdx.x];
    q2[threadIdx.x] = code2[threadIdx.x];
    __syncthreads();
    const int b = blockIdx.x;
    const int i = b * kBlock + int(threadIdx.x);
    const bool valid = i < n;
    // the padding of a partial last block takes part in the absmax as g = 0, codes 128 and 0 (bitsandbytes' loads)
    float gv = valid ? to_f(g[i]) : 0.0f;
    const int c1 = valid ? state1[i] : 128, c2 = valid ? state2[i] : 0;
    const bool finite = isfinite(gv);
    const float am1 = absmax1[b], am2 = absmax2[b];
    float m = 0.0f, v = 0.0f;
    if (finite) {
        v = q2[c2] * am2;
        gv = gv * s.gnorm;
        v = (v * s.beta2) + ((s.one_m_b2 * gv) * gv);
        m = q1[c1] * am1;
        m = (m * s.beta1) + (s.one_m_b1 * gv);
    }
    // fmaxf from -FLT_MAX ignores NaN, like the CPU's running max; max is exact, so the tree order does not matter
    const float max1 = block_max(fmaxf(-FLT_MAX, fabsf(m)));
    const float max2 = block_max(fmaxf(-FLT_MAX, fabsf(v))); // its barriers also order the absmax reads above
    if (threadIdx.x == 0) {
        absmax1[b] = max1;
        absmax2[b] = max2;
    }
    if (!valid) return;
    if (finite) {
        float pv = to_f(p[i]);
        pv = round_to<T>(pv + (s.step_size * (m / (sqrtf(v) + s.correction2 * s.eps))));
        if (s.has_decay) pv = round_to<T>(pv * s.decay);
        p[i] = from_f<T>(pv);
    }
    int k1 = code8_find(q1, m / max1);
    if (signbit(q1[k1]) != signbit(m)) k1 = m > 0.0f ? k1 + 1 : k1 - 1;
    state1[i] = uint8_t(k1 & 0xff);
    state2[i] = uint8_t(code8_find(q2, v / max2));
}

template <class T>
void adam8(T *p, const T *g, uint8_t *s1, uint8_t *s2, float beta1, float beta2, float eps, int step, float lr,
           const float *q1, const float *q2, float *a1, float *a2, float wd, float gnorm, int n) {
    if (n < 0) invalid("n must be >= 0, got " + std::to_string(n));
    if (step < 1) invalid("step must be >= 1 (the count after this update), got " + std::to_string(step));
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) invalid("betas must be in [0, 1)");
    if (n == 0) return;
    for (const void *ptr : {static_cast<const void *>(p), static_cast<const void *>(g), static_cast<const void *>(s1),
                            static_cast<const void *>(s2), static_cast<const void *>(q1), static_cast<const void *>(q2),
                            static_cast<const void *>(a1), static_cast<const void *>(a2)})
        require_ptr(ptr, "a device pointer");
    int blocks = (n + kBlock - 1) / kBlock;
    k_adam8<T><<<blocks, kBlock>>>(p, g, s1, s2, q1, q2, a1, a2, adam_scalars(beta1, beta2, eps, step, lr, wd, gnorm),
                                   n);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) throw Error(JBNB_ECUDA, std::string("8-bit Adam launch: ") + cudaGetErrorString(e));
}

} // namespace
} // namespace sftn::cuda

using namespace sftn;

extern "C" {

// beta3 and alpha: AdEMAMix only; skip_zeros: read by no branch of bitsandbytes' 2-state blockwise kernel.
#define SFTN_BNB_ADAM8(SUFFIX, T, DT)                                                                               \
    void cadam_8bit_blockwise_grad_##SUFFIX(T *p, T *g, unsigned char *state1, unsigned char *state2, float beta1, \
                                            float beta2, float beta3, float alpha, float eps, int step, float lr,  \
                                            float *quantiles1, float *quantiles2, float *absmax1, float *absmax2,  \
                                            float weight_decay, const float gnorm_scale, bool skip_zeros, int n) { \
        (void)beta3;                                                                                                \
        (void)alpha;                                                                                                \
        (void)skip_zeros;                                                                                           \
        report_void_failure(__func__, guarded(__func__, [&] {                                                       \
            cuda::adam8<DT>(reinterpret_cast<DT *>(p), reinterpret_cast<const DT *>(g), state1, state2, beta1,     \
                            beta2, eps, step, lr, quantiles1, quantiles2, absmax1, absmax2, weight_decay,          \
                            gnorm_scale, n);                                                                        \
        }));                                                                                                        \
    }
SFTN_BNB_ADAM8(fp32, float, float)
SFTN_BNB_ADAM8(fp16, sftn_fp16, __half)
SFTN_BNB_ADAM8(bf16, sftn_bf16, __nv_bfloat16)
#undef SFTN_BNB_ADAM8

} // extern "C"
