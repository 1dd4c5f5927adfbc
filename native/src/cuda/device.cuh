// Device helpers shared by the CUDA kernels: 16-bit load/store, block reductions, codebooks.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace sftn::cuda {

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// Max over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
__device__ __forceinline__ float block_max(float v) {
    __shared__ float warp_vals[32];
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads(); // warp_vals may still be read by a previous reduction
    if (lane == 0) warp_vals[warp] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = lane < nw ? warp_vals[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// NF4 / FP4 codebooks and thresholds: the same literals as src/common.cpp (spec §2.1, §2.2, §2.5).
__device__ __forceinline__ float nf4_value(int c) {
    const float lut[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                           -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                           0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
                           0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};
    return lut[c];
}
__device__ __forceinline__ float fp4_value(int c) {
    const float mag[8] = {0.0f, 0.005208333333f, 0.66666667f, 1.0f, 0.33333333f, 0.5f, 0.16666667f, 0.25f};
    return (c & 8) ? -mag[c & 7] : mag[c & 7];
}
__device__ __forceinline__ int nf4_code(float y) {
    const float t[15] = {-0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f,
                         -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
                         0.1202552504837513f, 0.2035212516784668f, 0.2920137718319893f, 0.3893125355243683f,
                         0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f};
    int c = 0;
#pragma unroll
    for (int i = 0; i < 15; ++i) c += y > t[i] ? 1 : 0;
    return c;
}
__device__ __forceinline__ int fp4_code(float y) {
    const float t[7] = {0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f, 0.4166667f, 0.583333f, 0.8333333f};
    float a = fabsf(y);
    int i = 0;
#pragma unroll
    for (int k = 0; k < 7; ++k) i += a > t[k] ? 1 : 0;
    // magnitude codes {0, 1, 6, 7, 4, 5, 2, 3}[i] packed in nibbles: no local-memory array indexed at run time
    return (int)((0x32547610u >> (4 * i)) & 0xfu) | (y < 0.0f ? 8 : 0);
}

// The 16 code values of a 4-bit type, loaded into shared memory by the first 16 threads (a run-time indexed local
// array would live in local memory). Call from every thread of the block; includes the barrier.
__device__ __forceinline__ void load_lut4(float *lut, int nf4) {
    if (threadIdx.x < 16) lut[threadIdx.x] = nf4 ? nf4_value(threadIdx.x) : fp4_value(threadIdx.x);
    __syncthreads();
}

// bitsandbytes' dQuantize<0> binary search (spec §2.5.3); code in shared memory.
__device__ __forceinline__ int code8_search(const float *code, float x) {
    int pivot = 127, upper_pivot = 255, lower_pivot = 0;
    float lower = -1.0f, upper = 1.0f, val = code[pivot];
    for (int i = 64; i > 0; i >>= 1) {
        if (x > val) {
            lower_pivot = pivot;
            lower = val;
            pivot += i;
        } else {
            upper_pivot = pivot;
            upper = val;
            pivot -= i;
        }
        val = code[pivot];
    }
    if (upper_pivot == 255) upper = code[upper_pivot];
    if (lower_pivot == 0) lower = code[lower_pivot];
    if (x > val) return x > (upper + val) * 0.5f ? upper_pivot : pivot;
    return x < (lower + val) * 0.5f ? lower_pivot : pivot;
}

} // namespace sftn::cuda
