// Internal helpers shared by the CPU and CUDA translation units: error codes at the C boundary, 16-bit float
// conversions, the codebooks, and a small parallel_for. Never included by the ISA-specific files (see
// cpu/kernels_isa.hpp for why).
#pragma once

#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "sftnative_bnb.h"

namespace sftn {

// An error with a jbnb_status; thrown inside the library, turned into a return code by guarded().
struct Error : std::runtime_error {
    int32_t status;
    Error(int32_t s, const std::string &msg) : std::runtime_error(msg), status(s) {}
};

[[noreturn]] inline void invalid(const std::string &msg) { throw Error(JBNB_EINVAL, msg); }

void set_last_error(const char *fn, const char *msg);
void clear_last_error();

// Runs f and converts every C++ exception into a status code plus a thread-local message: nothing crosses the C
// boundary (the JVM would abort).
template <class F>
int32_t guarded(const char *fn, F &&f) noexcept {
    try {
        f();
        clear_last_error();
        return JBNB_OK;
    } catch (const Error &e) {
        set_last_error(fn, e.what());
        return e.status;
    } catch (const std::bad_alloc &) {
        set_last_error(fn, "out of host memory");
        return JBNB_ENOMEM;
    } catch (const std::exception &e) {
        set_last_error(fn, e.what());
        return JBNB_EINTERNAL;
    } catch (...) {
        set_last_error(fn, "unknown C++ exception");
        return JBNB_EINTERNAL;
    }
}

// The bitsandbytes-named entry points return void: report a failure on stderr instead of calling exit().
void report_void_failure(const char *fn, int32_t status);

inline void require_ptr(const void *p, const char *name) {
    if (p == nullptr) invalid(std::string(name) + " is NULL");
}
inline void require_blocksize(int64_t blocksize) {
    if (blocksize <= 0) invalid("blocksize must be > 0, got " + std::to_string(blocksize));
}
inline void require_n(int64_t n) {
    if (n < 0) invalid("n must be >= 0, got " + std::to_string(n));
}
inline void require_quant_type(int32_t qt) {
    if (qt != JBNB_NF4 && qt != JBNB_FP4)
        invalid("quant_type must be 1 (FP4) or 2 (NF4), got " + std::to_string(qt));
}
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- 16-bit floats (bit patterns) -------------------------------------------------------------------------
inline float bits_to_float(uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}
inline uint32_t float_to_bits(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
}
inline float bf16_to_float(uint16_t h) { return bits_to_float(uint32_t(h) << 16); }
// Round-to-nearest-even, NaN stays a quiet NaN (as torch and CUDA's __float2bfloat16_rn).
inline uint16_t float_to_bf16(float f) {
    uint32_t b = float_to_bits(f);
    if ((b & 0x7fffffffu) > 0x7f800000u) return uint16_t((b >> 16) | 0x40u);
    return uint16_t((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}
float fp16_to_float(uint16_t h);
uint16_t float_to_fp16(float f); // round-to-nearest-even, IEEE semantics incl. subnormals

template <class T> struct Conv;
template <> struct Conv<float> {
    static float load(float v) { return v; }
    static float store(float v) { return v; }
};
struct Bf16Tag {};
struct Fp16Tag {};

// ---- codebooks (spec §2.1–§2.3, §2.5) ------------------------------------------------------------------------
extern const float NF4_CODE[16];
extern const float NF4_THRESHOLDS[15];
extern const float FP4_CODE[16];
extern const float FP4_THRESHOLDS[7];
extern const uint8_t FP4_MAG_CODE[8];
const float *dynamic_map(); // 256 entries, computed once with the exact fp32 rule of §2.3
const float *unsigned_dynamic_map(); // create_dynamic_map(signed=False): bitsandbytes' map for Adam's second state

// Scalar reference rounding shared by all paths (the vector paths must agree bit for bit).
inline uint8_t nf4_code(float y) {
    // code = number of thresholds t with y > t (strict), NaN -> 0
    uint8_t c = 0;
    for (int i = 0; i < 15; ++i) c += (y > NF4_THRESHOLDS[i]) ? 1 : 0;
    return c;
}
inline uint8_t fp4_code(float y) {
    float a = y < 0.0f ? -y : y;
    int idx = 0;
    for (int i = 0; i < 7; ++i) idx += (a > FP4_THRESHOLDS[i]) ? 1 : 0;
    if (y != y) return 0; // NaN: every comparison false in the CUDA decision tree
    return uint8_t(FP4_MAG_CODE[idx] | (y < 0.0f ? 8 : 0));
}
// bitsandbytes CUDA dQuantize<0>: binary search over the sorted 256-entry code, then a midpoint test (§2.5.3).
uint8_t code8_search(const float *code, float x);
// The same answer without data-dependent branches (the optimizer requantizes two values per element; a mispredicted
// branch per search step is most of its cost). bitsandbytes' pivot p = b + 2i - 1 at step i (64, 32, ..., 1) moves
// to b + 3i - 1 (x > code[p]) or b + i - 1, i.e. b += 2i or not; it ends at p = b, even, in [0, 254], with the last
// bounds p - 1 and p + 1, so only the final midpoint test remains. Index 0 answers 0 either way.
inline uint8_t code8_search_branchless(const float *code, float x) {
    int p = 0;
    for (int h = 128; h >= 2; h >>= 1) p += h & -int(x > code[p + h - 1]); // and/neg: no branch is emitted
    float val = code[p];
    if (x > val) return uint8_t(x > (code[p + 1] + val) * 0.5f ? p + 1 : p);
    if (p == 0) return 0;
    return uint8_t(x < (code[p - 1] + val) * 0.5f ? p - 1 : p);
}

// ---- threads ---------------------------------------------------------------------------------------------
int num_threads();
// Splits [0, n) into at most num_threads() contiguous ranges of whole `grain`s and runs f(lo, hi) on each
// (the caller's thread takes the first). Runs inline when the work is small. Rethrows the first exception.
void parallel_for(int64_t n, int64_t grain, int64_t min_per_thread, void (*f)(void *, int64_t, int64_t), void *ctx);

template <class F>
void parallel_for(int64_t n, int64_t grain, int64_t min_per_thread, F &&f) {
    auto tramp = [](void *c, int64_t lo, int64_t hi) { (*static_cast<F *>(c))(lo, hi); };
    parallel_for(n, grain, min_per_thread, +tramp, static_cast<void *>(&f));
}

} // namespace sftn
