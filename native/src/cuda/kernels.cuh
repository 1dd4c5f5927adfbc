// Host-side launchers of the CUDA kernels (quant.cu, ce.cu). They validate nothing: api_cuda.cu checks the
// arguments and turns launch errors into jbnb_status codes.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace sftn::cuda {

enum class DType { F32, F16, BF16 };

// 4-bit blockwise (blocksize a power of two in [32, 4096]); out: ceil(n/2) bytes.
void quantize4(DType t, const void *A, float *absmax, uint8_t *out, int64_t bs, int64_t n, int32_t qt, cudaStream_t s);
void dequantize4(DType t, const uint8_t *A, const float *absmax, void *out, int64_t bs, int64_t n, int32_t qt, cudaStream_t s);
// 8-bit blockwise with a 256-entry device code (blocksize a power of two in [32, 4096]).
void quantize8(DType t, const float *code, const void *A, float *absmax, uint8_t *out, int64_t bs, int64_t n, cudaStream_t s);
void dequantize8(DType t, const float *code, const uint8_t *A, const float *absmax, void *out, int64_t bs, int64_t n, cudaStream_t s);
// Cross-entropy chunk (see jbnb_ce_chunk_cuda_* in the header).
void ce_chunk(DType t, void *logits, int64_t rows, int64_t vocab, const int64_t *labels, int64_t row0, int64_t seq_len,
              int32_t shift, int64_t ignore_index, float grad_scale, float *row_loss, float *row_lse, cudaStream_t s);

} // namespace sftn::cuda
