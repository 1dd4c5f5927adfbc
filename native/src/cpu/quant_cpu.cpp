// CPU blockwise quantization drivers (threading, block splitting, dtype conversion) and their C exports:
// our jbnb_* functions plus the bitsandbytes-named CPU drop-ins.
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "../common.hpp"
#include "dispatch.hpp"

namespace sftn {
namespace {

// Elements per thread below which threads are not worth starting.
constexpr int64_t MIN_PER_THREAD = 1 << 16;

struct F32In {
    const float *p;
    float operator[](int64_t i) const { return p[i]; }
    const float *direct() const { return p; }
};
struct Bf16In {
    const uint16_t *p;
    float operator[](int64_t i) const { return bf16_to_float(p[i]); }
    const float *direct() const { return nullptr; }
};
struct F16In {
    const uint16_t *p;
    float operator[](int64_t i) const { return fp16_to_float(p[i]); }
    const float *direct() const { return nullptr; }
};

isa::Quant4Spec spec_for(int32_t qt) {
    if (qt == JBNB_NF4) return {NF4_THRESHOLDS, 15, nullptr};
    return {FP4_THRESHOLDS, 7, FP4_MAG_CODE};
}
inline uint8_t code4(float y, int32_t qt) { return qt == JBNB_NF4 ? nf4_code(y) : fp4_code(y); }
inline uint8_t pad_code(int32_t qt) { return qt == JBNB_NF4 ? 7 : 0; } // code of 0.0

template <class In>
void quantize4(In A, float *absmax, uint8_t *out, int64_t bs, int64_t n, int32_t qt) {
    const isa::Table &k = kernels();
    const isa::Quant4Spec spec = spec_for(qt);
    int64_t nblocks = ceil_div(n, bs);
    if (bs % 2 == 0) {
        // Blocks start on byte boundaries: each block is independent.
        parallel_for(nblocks, 1, std::max<int64_t>(1, MIN_PER_THREAD / bs), [&](int64_t lo, int64_t hi) {
            std::vector<float> tmp;
            if (A.direct() == nullptr) tmp.resize(size_t(bs));
            for (int64_t b = lo; b < hi; ++b) {
                int64_t s = b * bs, len = std::min(bs, n - s);
                const float *x = A.direct() ? A.direct() + s : tmp.data();
                if (!A.direct())
                    for (int64_t i = 0; i < len; ++i) tmp[size_t(i)] = A[s + i];
                float am = k.absmax_f32(x, len);
                absmax[b] = am;
                float inv = 1.0f / am; // reciprocal multiply as bitsandbytes (§2.4); 0 -> inf -> NaN -> code 0
                int64_t even = len & ~int64_t(1);
                k.quant4_f32(x, inv, out + s / 2, even, &spec);
                if (len & 1) out[(s + even) / 2] = uint8_t((code4(x[even] * inv, qt) << 4) | pad_code(qt));
            }
        });
        return;
    }
    // Odd block sizes: a byte can straddle two blocks. Absmax first, then one pass per byte.
    parallel_for(nblocks, 1, std::max<int64_t>(1, MIN_PER_THREAD / bs), [&](int64_t lo, int64_t hi) {
        for (int64_t b = lo; b < hi; ++b) {
            float am = 0.0f;
            for (int64_t i = b * bs, e = std::min(n, (b + 1) * bs); i < e; ++i) am = std::fmax(am, std::fabs(A[i]));
            absmax[b] = am;
        }
    });
    int64_t nbytes = ceil_div(n, 2);
    parallel_for(nbytes, 1, MIN_PER_THREAD / 2, [&](int64_t lo, int64_t hi) {
        for (int64_t j = lo; j < hi; ++j) {
            int64_t i = 2 * j;
            uint8_t h = code4(A[i] * (1.0f / absmax[i / bs]), qt);
            uint8_t l = i + 1 < n ? code4(A[i + 1] * (1.0f / absmax[(i + 1) / bs]), qt) : pad_code(qt);
            out[j] = uint8_t((h << 4) | l);
        }
    });
}

// Outputs at least this large are written with non-temporal stores: they cannot stay in a typical last-level cache
// anyway, and skipping the read-for-ownership nearly doubles the write bandwidth (benchmarks/native/RESULTS).
// SFTNATIVE_STREAM_MIN_BYTES overrides the threshold (tests use 0 to exercise the streaming path).
int64_t stream_min_bytes() {
    static const int64_t v = [] {
        const char *e = std::getenv("SFTNATIVE_STREAM_MIN_BYTES");
        return e != nullptr ? std::strtoll(e, nullptr, 10) : int64_t(64) << 20;
    }();
    return v;
}

template <class Out, class Fn, class Scalar>
void dequantize4(const uint8_t *A, const float *absmax, Out *out, int64_t bs, int64_t n, int32_t qt, Fn fn,
                 Scalar store) {
    const float *lut = qt == JBNB_NF4 ? NF4_CODE : FP4_CODE;
    int64_t nblocks = ceil_div(n, bs);
    int stream = n * int64_t(sizeof(Out)) >= stream_min_bytes() && reinterpret_cast<uintptr_t>(out) % 64 == 0 &&
                 (bs * int64_t(sizeof(Out))) % 64 == 0;
    if (bs % 2 == 0) {
        parallel_for(nblocks, 1, std::max<int64_t>(1, MIN_PER_THREAD / bs), [&](int64_t lo, int64_t hi) {
            int64_t s = lo * bs;
            fn(A + s / 2, absmax + lo, bs, lut, out + s, std::min(hi * bs, n) - s, stream);
        });
        return;
    }
    parallel_for(n, 2, MIN_PER_THREAD, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
            uint8_t byte = A[i >> 1];
            store(out + i, lut[(i & 1) ? (byte & 0xf) : (byte >> 4)] * absmax[i / bs]);
        }
    });
}

template <class In>
void quantize8(const float *code, In A, float *absmax, uint8_t *out, int64_t bs, int64_t n) {
    int64_t nblocks = ceil_div(n, bs);
    parallel_for(nblocks, 1, std::max<int64_t>(1, MIN_PER_THREAD / 8 / bs), [&](int64_t lo, int64_t hi) {
        for (int64_t b = lo; b < hi; ++b) {
            int64_t s = b * bs, e = std::min(n, s + bs);
            float am = 0.0f;
            for (int64_t i = s; i < e; ++i) am = std::fmax(am, std::fabs(A[i]));
            absmax[b] = am;
            float inv = 1.0f / am;
            for (int64_t i = s; i < e; ++i) out[i] = code8_search(code, A[i] * inv);
        }
    });
}

template <class Out, class Store>
void dequantize8(const float *code, const uint8_t *A, const float *absmax, Out *out, int64_t bs, int64_t n,
                 Store store) {
    parallel_for(n, 1, MIN_PER_THREAD, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) store(out + i, code[A[i]] * absmax[i / bs]);
    });
}

void check4(const void *A, const float *absmax, const void *out, int64_t bs, int64_t n, int32_t qt) {
    require_n(n);
    require_blocksize(bs);
    require_quant_type(qt);
    if (n == 0) return;
    require_ptr(A, "A");
    require_ptr(absmax, "absmax");
    require_ptr(out, "out");
}
void check8(const float *code, const void *A, const float *absmax, const void *out, int64_t bs, int64_t n) {
    require_n(n);
    require_blocksize(bs);
    require_ptr(code, "code");
    if (n == 0) return;
    require_ptr(A, "A");
    require_ptr(absmax, "absmax");
    require_ptr(out, "out");
}

auto store_f32 = [](float *o, float v) { *o = v; };
auto store_bf16 = [](uint16_t *o, float v) { *o = float_to_bf16(v); };
auto store_f16 = [](uint16_t *o, float v) { *o = float_to_fp16(v); };

} // namespace
} // namespace sftn

using namespace sftn;

extern "C" {

// ---- jbnb 4-bit ----------------------------------------------------------------------------------------------
int32_t jbnb_quantize_4bit_cpu_fp32(const float *A, float *absmax, uint8_t *out, int64_t bs, int64_t n, int32_t qt) {
    return guarded(__func__, [&] {
        check4(A, absmax, out, bs, n, qt);
        quantize4(F32In{A}, absmax, out, bs, n, qt);
    });
}
int32_t jbnb_quantize_4bit_cpu_bf16(const sftn_bf16 *A, float *absmax, uint8_t *out, int64_t bs, int64_t n, int32_t qt) {
    return guarded(__func__, [&] {
        check4(A, absmax, out, bs, n, qt);
        quantize4(Bf16In{A}, absmax, out, bs, n, qt);
    });
}
int32_t jbnb_quantize_4bit_cpu_fp16(const sftn_fp16 *A, float *absmax, uint8_t *out, int64_t bs, int64_t n, int32_t qt) {
    return guarded(__func__, [&] {
        check4(A, absmax, out, bs, n, qt);
        quantize4(F16In{A}, absmax, out, bs, n, qt);
    });
}
int32_t jbnb_dequantize_4bit_cpu_fp32(const uint8_t *A, const float *absmax, float *out, int64_t bs, int64_t n, int32_t qt) {
    return guarded(__func__, [&] {
        check4(A, absmax, out, bs, n, qt);
        dequantize4(A, absmax, out, bs, n, qt, kernels().deq4_f32, store_f32);
    });
}
int32_t jbnb_dequantize_4bit_cpu_bf16(const uint8_t *A, const float *absmax, sftn_bf16 *out, int64_t bs, int64_t n, int32_t qt) {
    return guarded(__func__, [&] {
        check4(A, absmax, out, bs, n, qt);
        dequantize4(A, absmax, out, bs, n, qt, kernels().deq4_bf16, store_bf16);
    });
}
int32_t jbnb_dequantize_4bit_cpu_fp16(const uint8_t *A, const float *absmax, sftn_fp16 *out, int64_t bs, int64_t n, int32_t qt) {
    return guarded(__func__, [&] {
        check4(A, absmax, out, bs, n, qt);
        dequantize4(A, absmax, out, bs, n, qt, kernels().deq4_f16, store_f16);
    });
}

// ---- jbnb 8-bit ----------------------------------------------------------------------------------------------
int32_t jbnb_quantize_8bit_cpu_fp32(const float *code, const float *A, float *absmax, uint8_t *out, int64_t bs, int64_t n) {
    return guarded(__func__, [&] {
        check8(code, A, absmax, out, bs, n);
        quantize8(code, F32In{A}, absmax, out, bs, n);
    });
}
int32_t jbnb_quantize_8bit_cpu_bf16(const float *code, const sftn_bf16 *A, float *absmax, uint8_t *out, int64_t bs, int64_t n) {
    return guarded(__func__, [&] {
        check8(code, A, absmax, out, bs, n);
        quantize8(code, Bf16In{A}, absmax, out, bs, n);
    });
}
int32_t jbnb_quantize_8bit_cpu_fp16(const float *code, const sftn_fp16 *A, float *absmax, uint8_t *out, int64_t bs, int64_t n) {
    return guarded(__func__, [&] {
        check8(code, A, absmax, out, bs, n);
        quantize8(code, F16In{A}, absmax, out, bs, n);
    });
}
int32_t jbnb_dequantize_8bit_cpu_fp32(const float *code, const uint8_t *A, const float *absmax, float *out, int64_t bs, int64_t n) {
    return guarded(__func__, [&] {
        check8(code, A, absmax, out, bs, n);
        dequantize8(code, A, absmax, out, bs, n, store_f32);
    });
}
int32_t jbnb_dequantize_8bit_cpu_bf16(const float *code, const uint8_t *A, const float *absmax, sftn_bf16 *out, int64_t bs, int64_t n) {
    return guarded(__func__, [&] {
        check8(code, A, absmax, out, bs, n);
        dequantize8(code, A, absmax, out, bs, n, store_bf16);
    });
}
int32_t jbnb_dequantize_8bit_cpu_fp16(const float *code, const uint8_t *A, const float *absmax, sftn_fp16 *out, int64_t bs, int64_t n) {
    return guarded(__func__, [&] {
        check8(code, A, absmax, out, bs, n);
        dequantize8(code, A, absmax, out, bs, n, store_f16);
    });
}

// ---- double quantization -------------------------------------------------------------------------------------
int32_t jbnb_double_quant_cpu(const float *absmax, int64_t nblocks, const float *code, int64_t nested_bs,
                              uint8_t *qabsmax, float *absmax2, float *offset) {
    return guarded(__func__, [&] {
        require_n(nblocks);
        require_blocksize(nested_bs);
        require_ptr(code, "code");
        require_ptr(offset, "offset");
        if (nblocks == 0) invalid("nblocks must be > 0 (the mean of no absmax is undefined)");
        require_ptr(absmax, "absmax");
        require_ptr(qabsmax, "qabsmax");
        require_ptr(absmax2, "absmax2");
        double sum = 0.0;
        for (int64_t i = 0; i < nblocks; ++i) sum += double(absmax[i]);
        float off = float(sum / double(nblocks));
        std::vector<float> centred(static_cast<size_t>(nblocks));
        for (int64_t i = 0; i < nblocks; ++i) centred[size_t(i)] = absmax[i] - off;
        quantize8(code, F32In{centred.data()}, absmax2, qabsmax, nested_bs, nblocks);
        *offset = off;
    });
}

int32_t jbnb_dequant_absmax_cpu(const uint8_t *qabsmax, const float *absmax2, const float *code, float offset,
                                int64_t nested_bs, int64_t nblocks, float *absmax) {
    return guarded(__func__, [&] {
        require_n(nblocks);
        require_blocksize(nested_bs);
        require_ptr(code, "code");
        if (nblocks == 0) return;
        require_ptr(qabsmax, "qabsmax");
        require_ptr(absmax2, "absmax2");
        require_ptr(absmax, "absmax");
        for (int64_t i = 0; i < nblocks; ++i) {
            float v = code[qabsmax[i]] * absmax2[i / nested_bs]; // rounded to fp32 first (two roundings, §2.6)
            absmax[i] = v + offset;
        }
    });
}

// ---- bitsandbytes-named CPU drop-ins -------------------------------------------------------------------------
void cquantize_blockwise_cpu_fp32(float *code, float *A, float *absmax, unsigned char *out, long long bs, long long n) {
    report_void_failure(__func__, jbnb_quantize_8bit_cpu_fp32(code, A, absmax, out, bs, n));
}
void cquantize_blockwise_cpu_bf16(float *code, sftn_bf16 *A, float *absmax, unsigned char *out, long long bs, long long n) {
    report_void_failure(__func__, jbnb_quantize_8bit_cpu_bf16(code, A, absmax, out, bs, n));
}
void cquantize_blockwise_cpu_fp16(float *code, sftn_fp16 *A, float *absmax, unsigned char *out, long long bs, long long n) {
    report_void_failure(__func__, jbnb_quantize_8bit_cpu_fp16(code, A, absmax, out, bs, n));
}
void cdequantize_blockwise_cpu_fp32(float *code, unsigned char *A, const float *absmax, float *out, long long bs, long long n) {
    report_void_failure(__func__, jbnb_dequantize_8bit_cpu_fp32(code, A, absmax, out, bs, n));
}
void cdequantize_blockwise_cpu_bf16(float *code, unsigned char *A, const float *absmax, sftn_bf16 *out, long long bs, long long n) {
    report_void_failure(__func__, jbnb_dequantize_8bit_cpu_bf16(code, A, absmax, out, bs, n));
}
void cdequantize_blockwise_cpu_fp16(float *code, unsigned char *A, const float *absmax, sftn_fp16 *out, long long bs, long long n) {
    report_void_failure(__func__, jbnb_dequantize_8bit_cpu_fp16(code, A, absmax, out, bs, n));
}

#define SFTN_DEQ4_CPU(QT, QTNAME, T, SUFFIX)                                                                   \
    void cdequantize_blockwise_cpu_##QTNAME##_##SUFFIX(unsigned char *A, const float *absmax, T *out,          \
                                                       long long bs, long long m, long long n) {               \
        if (m < 0 || n < 0) {                                                                                  \
            set_last_error(__func__, "m and n must be >= 0");                                                  \
            report_void_failure(__func__, JBNB_EINVAL);                                                        \
            return;                                                                                            \
        }                                                                                                      \
        report_void_failure(__func__, jbnb_dequantize_4bit_cpu_##SUFFIX(A, absmax, out, bs, m * n, QT));       \
    }
SFTN_DEQ4_CPU(JBNB_NF4, nf4, float, fp32)
SFTN_DEQ4_CPU(JBNB_NF4, nf4, sftn_bf16, bf16)
SFTN_DEQ4_CPU(JBNB_NF4, nf4, sftn_fp16, fp16)
SFTN_DEQ4_CPU(JBNB_FP4, fp4, float, fp32)
SFTN_DEQ4_CPU(JBNB_FP4, fp4, sftn_bf16, bf16)
SFTN_DEQ4_CPU(JBNB_FP4, fp4, sftn_fp16, fp16)
#undef SFTN_DEQ4_CPU

} // extern "C"
