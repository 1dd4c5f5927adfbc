// CUDA fused cross-entropy for one chunk of logits rows: one CUDA block per row, online max/sum (fp32), then the
// gradient (softmax - onehot) * grad_scale written in place, the target term in fp32 before rounding (spec §4.6).
#include "device.cuh"
#include "kernels.cuh"

namespace sftn::cuda {
namespace {

constexpr int CE_THREADS = 512;

// Combines two (max, sum of exp(x - max)) pairs.
__device__ __forceinline__ void merge(float &m, float &s, float m2, float s2) {
    if (m2 == -INFINITY) return;
    if (m == -INFINITY) {
        m = m2;
        s = s2;
        return;
    }
    float M = fmaxf(m, m2);
    s = s * expf(m - M) + s2 * expf(m2 - M);
    m = M;
}

template <class T>
__global__ void k_ce(T *__restrict__ logits, long long vocab, const long long *__restrict__ labels, long long row0,
                     long long seq_len, int shift, long long ignore_index, float scale, float *__restrict__ row_loss,
                     float *__restrict__ row_lse) {
    __shared__ float sh_m[CE_THREADS / 32], sh_s[CE_THREADS / 32];
    __shared__ int sh_nan;
    long long r = blockIdx.x, g = row0 + r;
    long long t = shift == 0 ? labels[g] : (g % seq_len == seq_len - 1 ? ignore_index : labels[g + 1]);
    T *z = logits + r * vocab;
    if (t == ignore_index) {
        for (long long v = threadIdx.x; v < vocab; v += blockDim.x) z[v] = from_f<T>(0.0f);
        if (threadIdx.x == 0) {
            if (row_loss) row_loss[r] = 0.0f;
            if (row_lse) row_lse[r] = 0.0f;
        }
        return;
    }
    if (t < 0 || t >= vocab) { // not validated on the device: the caller checks labels; mark the row loudly
        if (threadIdx.x == 0 && row_loss) row_loss[r] = __int_as_float(0x7fc00000);
        return;
    }
    if (threadIdx.x == 0) sh_nan = 0;
    float m = -INFINITY, s = 0.0f;
    bool nan = false;
    for (long long v = threadIdx.x; v < vocab; v += blockDim.x) {
        float x = to_f(z[v]);
        nan |= x != x;
        if (x > m) {
            s = s * expf(m - x) + 1.0f; // m = -inf the first time: expf(-inf) = 0
            m = x;
        } else {
            s += expf(x - m);
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
        merge(m, s, m2, s2);
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (nan) atomicOr(&sh_nan, 1);
    if (lane == 0) {
        sh_m[warp] = m;
        sh_s[warp] = s;
    }
    __syncthreads();
    m = -INFINITY;
    s = 0.0f;
    for (int w = 0; w < (int)(blockDim.x >> 5); ++w) merge(m, s, sh_m[w], sh_s[w]);
    float lse = sh_nan ? __int_as_float(0x7fc00000) : m + logf(s);
    float zt = to_f(z[t]);
    __syncthreads(); // everyone has read z[t] before it is overwritten
    for (long long v = threadIdx.x; v < vocab; v += blockDim.x) {
        float p = expf(to_f(z[v]) - lse) * scale;
        z[v] = from_f<T>(v == t ? p - scale : p);
    }
    if (threadIdx.x == 0) {
        if (row_loss) row_loss[r] = lse - zt;
        if (row_lse) row_lse[r] = lse;
    }
}

} // namespace

void ce_chunk(DType t, void *logits, int64_t rows, int64_t vocab, const int64_t *labels, int64_t row0, int64_t seq_len,
              int32_t shift, int64_t ignore_index, float grad_scale, float *row_loss, float *row_lse, cudaStream_t s) {
    if (rows == 0) return;
    const long long *l = reinterpret_cast<const long long *>(labels);
    if (t == DType::F32)
        k_ce<float><<<(unsigned)rows, CE_THREADS, 0, s>>>(static_cast<float *>(logits), vocab, l, row0, seq_len, shift,
                                                          ignore_index, grad_scale, row_loss, row_lse);
    else
        k_ce<__nv_bfloat16><<<(unsigned)rows, CE_THREADS, 0, s>>>(static_cast<__nv_bfloat16 *>(logits), vocab, l, row0,
                                                                  seq_len, shift, ignore_index, grad_scale, row_loss,
                                                                  row_lse);
}

} // namespace sftn::cuda
