// The CUDA extension symbols in the CPU-only library: they exist (so one set of bindings fits both libraries) and
// answer JBNB_EUNSUPPORTED with a message saying which library has them.
#include "../common.hpp"

using namespace sftn;

namespace {
int32_t unsupported(const char *fn) {
    return guarded(fn, [] {
        throw Error(JBNB_EUNSUPPORTED, "CUDA kernels are not in this library (libsftnative, CPU build); "
                                       "use libsftnative_cuda, built when nvcc is present");
    });
}
} // namespace

extern "C" {
int32_t jbnb_has_cuda(void) { return 0; }
int32_t jbnb_cuda_device_count(int32_t *count) {
    if (count) *count = 0;
    return unsupported(__func__);
}
int32_t jbnb_cuda_synchronize(void) { return unsupported(__func__); }
int32_t jbnb_quantize_4bit_cuda_fp32(const float *, float *, uint8_t *, int64_t, int64_t, int32_t, sftn_stream) { return unsupported(__func__); }
int32_t jbnb_quantize_4bit_cuda_bf16(const sftn_bf16 *, float *, uint8_t *, int64_t, int64_t, int32_t, sftn_stream) { return unsupported(__func__); }
int32_t jbnb_quantize_4bit_cuda_fp16(const sftn_fp16 *, float *, uint8_t *, int64_t, int64_t, int32_t, sftn_stream) { return unsupported(__func__); }
int32_t jbnb_dequantize_4bit_cuda_fp32(const uint8_t *, const float *, float *, int64_t, int64_t, int32_t, sftn_stream) { return unsupported(__func__); }
int32_t jbnb_dequantize_4bit_cuda_bf16(const uint8_t *, const float *, sftn_bf16 *, int64_t, int64_t, int32_t, sftn_stream) { return unsupported(__func__); }
int32_t jbnb_dequantize_4bit_cuda_fp16(const uint8_t *, const float *, sftn_fp16 *, int64_t, int64_t, int32_t, sftn_stream) { return unsupported(__func__); }
int32_t jbnb_quantize_8bit_cuda_fp32(const float *, const float *, float *, uint8_t *, int64_t, int64_t, sftn_stream) { return unsupported(__func__); }
int32_t jbnb_dequantize_8bit_cuda_fp32(const float *, const uint8_t *, const float *, float *, int64_t, int64_t, sftn_stream) { return unsupported(__func__); }
int32_t jbnb_ce_chunk_cuda_fp32(float *, int64_t, int64_t, const int64_t *, int64_t, int64_t, int64_t, int32_t, int64_t, float, float *, float *, sftn_stream) { return unsupported(__func__); }
int32_t jbnb_ce_chunk_cuda_bf16(sftn_bf16 *, int64_t, int64_t, const int64_t *, int64_t, int64_t, int64_t, int32_t, int64_t, float, float *, float *, sftn_stream) { return unsupported(__func__); }
}
