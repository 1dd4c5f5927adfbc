// C exports of the CUDA library: argument validation, launch-error checking and the bitsandbytes-named CUDA
// drop-ins. Nothing here calls exit(); errors become jbnb_status codes (and one stderr line for the void names).
#include <climits>
#include <string>

#include "../common.hpp"
#include "kernels.cuh"

using namespace sftn;
using sftn::cuda::DType;

namespace {

void check_launch(const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) throw Error(JBNB_ECUDA, std::string(what) + ": " + cudaGetErrorString(e));
}

void check_blocksize_gpu(int64_t bs) {
    bool pow2 = bs > 0 && (bs & (bs - 1)) == 0;
    if (!pow2 || bs < 32 || bs > 4096)
        invalid("blocksize must be a power of two in [32, 4096] on the GPU, got " + std::to_string(bs));
}

void check_n_gpu(int64_t n) {
    require_n(n);
    if (n > INT_MAX) invalid("n must be < 2^31 per GPU call (bitsandbytes' limit), got " + std::to_string(n));
}

void check4(const void *A, const float *absmax, const void *out, int64_t bs, int64_t n, int32_t qt) {
    check_n_gpu(n);
    check_blocksize_gpu(bs);
    require_quant_type(qt);
    if (n == 0) return;
    require_ptr(A, "A");
    require_ptr(absmax, "absmax");
    require_ptr(out, "out");
}

void check8(const float *code, const void *A, const float *absmax, const void *out, int64_t bs, int64_t n) {
    check_n_gpu(n);
    check_blocksize_gpu(bs);
    require_ptr(code, "code");
    if (n == 0) return;
    require_ptr(A, "A");
    require_ptr(absmax, "absmax");
    require_ptr(out, "out");
}

void check_ce(const void *logits, int64_t rows, int64_t vocab, const int64_t *labels, int64_t total_rows, int64_t row0,
              int64_t seq_len, int32_t shift, int64_t ignore_index, float scale) {
    if (rows < 0 || rows > INT_MAX) invalid("rows must be in [0, 2^31), got " + std::to_string(rows));
    if (vocab <= 0) invalid("vocab must be > 0, got " + std::to_string(vocab));
    if (shift != 0 && shift != 1) invalid("shift must be 0 or 1, got " + std::to_string(shift));
    if (row0 < 0 || row0 + rows > total_rows) invalid("rows exceed total_rows");
    if (shift == 1 && (seq_len <= 0 || total_rows % seq_len != 0)) invalid("with shift=1, seq_len must divide total_rows");
    if (ignore_index >= 0 && ignore_index < vocab) invalid("ignore_index is a valid class id");
    if (!(scale == scale) || scale == INFINITY || scale == -INFINITY) invalid("grad_scale must be finite");
    if (rows == 0) return;
    require_ptr(logits, "logits");
    require_ptr(labels, "labels");
}

cudaStream_t st(sftn_stream s) { return static_cast<cudaStream_t>(s); }

} // namespace

extern "C" {

int32_t jbnb_has_cuda(void) { return 1; }

int32_t jbnb_cuda_device_count(int32_t *count) {
    return guarded(__func__, [&] {
        require_ptr(count, "count");
        int c = 0;
        cudaError_t e = cudaGetDeviceCount(&c);
        *count = e == cudaSuccess ? c : 0;
        if (e != cudaSuccess) {
            cudaGetLastError(); // clear the sticky-free error so later calls start clean
            throw Error(JBNB_ECUDA, std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e));
        }
    });
}

int32_t jbnb_cuda_synchronize(void) {
    return guarded(__func__, [&] {
        cudaError_t e = cudaDeviceSynchronize();
        if (e != cudaSuccess) throw Error(JBNB_ECUDA, std::string("cudaDeviceSynchronize: ") + cudaGetErrorString(e));
    });
}

#define SFTN_Q4(SUFFIX, T, DT)                                                                                      \
    int32_t jbnb_quantize_4bit_cuda_##SUFFIX(const T *A, float *absmax, uint8_t *out, int64_t bs, int64_t n,        \
                                             int32_t qt, sftn_stream s) {                                           \
        return guarded(__func__, [&] {                                                                              \
            check4(A, absmax, out, bs, n, qt);                                                                      \
            cuda::quantize4(DT, A, absmax, out, bs, n, qt, st(s));                                                  \
            check_launch("quantize4 launch");                                                                       \
        });                                                                                                         \
    }                                                                                                               \
    int32_t jbnb_dequantize_4bit_cuda_##SUFFIX(const uint8_t *A, const float *absmax, T *out, int64_t bs,           \
                                               int64_t n, int32_t qt, sftn_stream s) {                              \
        return guarded(__func__, [&] {                                                                              \
            check4(A, absmax, out, bs, n, qt);                                                                      \
            cuda::dequantize4(DT, A, absmax, out, bs, n, qt, st(s));                                                \
            check_launch("dequantize4 launch");                                                                     \
        });                                                                                                         \
    }
SFTN_Q4(fp32, float, DType::F32)
SFTN_Q4(bf16, sftn_bf16, DType::BF16)
SFTN_Q4(fp16, sftn_fp16, DType::F16)
#undef SFTN_Q4

int32_t jbnb_quantize_8bit_cuda_fp32(const float *code, const float *A, float *absmax, uint8_t *out, int64_t bs,
                                     int64_t n, sftn_stream s) {
    return guarded(__func__, [&] {
        check8(code, A, absmax, out, bs, n);
        cuda::quantize8(DType::F32, code, A, absmax, out, bs, n, st(s));
        check_launch("quantize8 launch");
    });
}

int32_t jbnb_dequantize_8bit_cuda_fp32(const float *code, const uint8_t *A, const float *absmax, float *out,
                                       int64_t bs, int64_t n, sftn_stream s) {
    return guarded(__func__, [&] {
        check8(code, A, absmax, out, bs, n);
        cuda::dequantize8(DType::F32, code, A, absmax, out, bs, n, st(s));
        check_launch("dequantize8 launch");
    });
}

int32_t jbnb_ce_chunk_cuda_fp32(float *logits, int64_t rows, int64_t vocab, const int64_t *labels, int64_t total_rows,
                                int64_t row0, int64_t seq_len, int32_t shift, int64_t ignore_index, float grad_scale,
                                float *row_loss, float *row_lse, sftn_stream s) {
    return guarded(__func__, [&] {
        check_ce(logits, rows, vocab, labels, total_rows, row0, seq_len, shift, ignore_index, grad_scale);
        cuda::ce_chunk(DType::F32, logits, rows, vocab, labels, row0, seq_len, shift, ignore_index, grad_scale,
                       row_loss, row_lse, st(s));
        check_launch("ce_chunk launch");
    });
}

int32_t jbnb_ce_chunk_cuda_bf16(sftn_bf16 *logits, int64_t rows, int64_t vocab, const int64_t *labels,
                                int64_t total_rows, int64_t row0, int64_t seq_len, int32_t shift, int64_t ignore_index,
                                float grad_scale, float *row_loss, float *row_lse, sftn_stream s) {
    return guarded(__func__, [&] {
        check_ce(logits, rows, vocab, labels, total_rows, row0, seq_len, shift, ignore_index, grad_scale);
        cuda::ce_chunk(DType::BF16, logits, rows, vocab, labels, row0, seq_len, shift, ignore_index, grad_scale,
                       row_loss, row_lse, st(s));
        check_launch("ce_chunk launch");
    });
}

// ---- bitsandbytes-named CUDA drop-ins (void, no exit) ---------------------------------------------------------
// 8-bit quantize on the legacy default stream, blocksize 64..4096 as in bitsandbytes (32 is rejected there too).
#define SFTN_BNB_Q8(SUFFIX, T, DT)                                                                                  \
    void cquantize_blockwise_##SUFFIX(float *code, T *A, float *absmax, unsigned char *out, int bs, int n) {        \
        report_void_failure(__func__, guarded(__func__, [&] {                                                       \
            if (bs < 64) invalid("blocksize must be >= 64 for 8-bit on the GPU, got " + std::to_string(bs));        \
            check8(code, A, absmax, out, bs, n);                                                                    \
            cuda::quantize8(DT, code, A, absmax, out, bs, n, nullptr);                                              \
            check_launch("quantize8 launch");                                                                       \
        }));                                                                                                        \
    }                                                                                                               \
    void cdequantize_blockwise_##SUFFIX(float *code, unsigned char *A, float *absmax, T *out, int bs, int n,        \
                                        sftn_stream s) {                                                            \
        report_void_failure(__func__, guarded(__func__, [&] {                                                       \
            check8(code, A, absmax, out, bs, n);                                                                    \
            cuda::dequantize8(DT, code, A, absmax, out, bs, n, st(s));                                              \
            check_launch("dequantize8 launch");                                                                     \
        }));                                                                                                        \
    }
SFTN_BNB_Q8(fp32, float, DType::F32)
SFTN_BNB_Q8(fp16, sftn_fp16, DType::F16)
SFTN_BNB_Q8(bf16, sftn_bf16, DType::BF16)
#undef SFTN_BNB_Q8

#define SFTN_BNB_Q4(SUFFIX, QT, QTNAME, T, DT)                                                                      \
    void cquantize_blockwise_##SUFFIX##_##QTNAME(float *, T *A, float *absmax, unsigned char *out, int bs, int n) { \
        report_void_failure(__func__, guarded(__func__, [&] {                                                       \
            check4(A, absmax, out, bs, n, QT);                                                                      \
            cuda::quantize4(DT, A, absmax, out, bs, n, QT, nullptr);                                                \
            check_launch("quantize4 launch");                                                                       \
        }));                                                                                                        \
    }                                                                                                               \
    void cdequantize_blockwise_##SUFFIX##_##QTNAME(float *, unsigned char *A, float *absmax, T *out, int bs, int n, \
                                                   sftn_stream s) {                                                 \
        report_void_failure(__func__, guarded(__func__, [&] {                                                       \
            check4(A, absmax, out, bs, n, QT);                                                                      \
            cuda::dequantize4(DT, A, absmax, out, bs, n, QT, st(s));                                                \
            check_launch("dequantize4 launch");                                                                     \
        }));                                                                                                        \
    }
SFTN_BNB_Q4(fp32, JBNB_NF4, nf4, float, DType::F32)
SFTN_BNB_Q4(fp16, JBNB_NF4, nf4, sftn_fp16, DType::F16)
SFTN_BNB_Q4(bf16, JBNB_NF4, nf4, sftn_bf16, DType::BF16)
SFTN_BNB_Q4(fp32, JBNB_FP4, fp4, float, DType::F32)
SFTN_BNB_Q4(fp16, JBNB_FP4, fp4, sftn_fp16, DType::F16)
SFTN_BNB_Q4(bf16, JBNB_FP4, fp4, sftn_bf16, DType::BF16)
#undef SFTN_BNB_Q4

} // extern "C"
