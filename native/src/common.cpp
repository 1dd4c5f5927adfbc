// Error state, 16-bit conversions, codebooks and the thread helper shared by all kernels.
#include "common.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace sftn {

// ---- errors ------------------------------------------------------------------------------------------------
static thread_local std::string g_last_error;

void set_last_error(const char *fn, const char *msg) {
    g_last_error = std::string(fn) + ": " + msg;
}
void clear_last_error() { g_last_error.clear(); }

void report_void_failure(const char *fn, int32_t status) {
    if (status != JBNB_OK) std::fprintf(stderr, "sftnative: %s failed (status %d): %s\n", fn, status, g_last_error.c_str());
}

// ---- fp16 <-> fp32 (exact IEEE binary16, round-to-nearest-even) ---------------------------------------------
float fp16_to_float(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        if (mant == 0) return bits_to_float(sign);
        float v = std::ldexp(float(mant), -24); // subnormal: mant * 2^-24, exact in fp32
        return sign ? -v : v;
    }
    if (exp == 31) return bits_to_float(sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0u));
    return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t float_to_fp16(float f) {
    uint32_t b = float_to_bits(f);
    uint16_t sign = uint16_t((b >> 16) & 0x8000u);
    uint32_t abs = b & 0x7fffffffu;
    if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u); // NaN -> quiet NaN
    if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u); // rounds to >= 65520 -> inf
    if (abs < 0x38800000u) {                                  // below 2^-14: subnormal half (or zero)
        // value = abs_float; half subnormal unit is 2^-24: q = RNE(value * 2^24)
        float v = bits_to_float(abs) * 16777216.0f;           // exact (power of two scaling, no overflow)
        float r = std::nearbyint(v);                           // default rounding mode: nearest even
        return uint16_t(sign | uint16_t(r));
    }
    uint32_t mant = abs & 0x7fffffu;
    uint32_t exp = (abs >> 23) - 112u;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h; // carry into the exponent is correct
    return uint16_t(sign | h);
}

// ---- codebooks ----------------------------------------------------------------------------------------------
const float NF4_CODE[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                            -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                            0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
                            0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};
// bitsandbytes' CUDA decision-tree thresholds in ascending order (= fp32 midpoints of adjacent codes).
const float NF4_THRESHOLDS[15] = {-0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f,
                                  -0.33967943489551544f, -0.23460740596055984f, -0.13791173323988914f,
                                  -0.045525018125772476f, 0.03979014977812767f, 0.1202552504837513f,
                                  0.2035212516784668f, 0.2920137718319893f, 0.3893125355243683f,
                                  0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f};
// FP4: bit 3 = sign; low 3 bits index {0, 0.0625, 8, 12, 4, 6, 2, 3} / 12 (the CUDA literals, bit-identical).
const float FP4_CODE[16] = {0.0f, 0.005208333333f, 0.66666667f, 1.0f, 0.33333333f, 0.5f, 0.16666667f, 0.25f,
                            -0.0f, -0.005208333333f, -0.66666667f, -1.0f, -0.33333333f, -0.5f, -0.16666667f, -0.25f};
// Magnitude thresholds exactly as the CUDA literals (not the exact fp32 midpoints, §2.5.2).
const float FP4_THRESHOLDS[7] = {0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f, 0.4166667f, 0.583333f, 0.8333333f};
const uint8_t FP4_MAG_CODE[8] = {0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011};

static float g_dynamic_map[256];
static float g_udynamic_map[256];
static std::once_flag g_dynamic_once;
static std::once_flag g_udynamic_once;

// bitsandbytes create_dynamic_map(signed, 7, 8) evaluated with the exact fp32 rule of spec §2.3. signed: 2^i + 1
// boundaries per exponent level i and both signs; unsigned (the second Adam state): 2^(i+1) + 1 boundaries, positive
// values only. Both end with 0 and 1.0, 256 values sorted ascending.
static void build_dynamic_map(bool is_signed, float *out) {
    std::vector<float> vals;
    for (int i = 0; i < 7; ++i) {
        int n = is_signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
        float start = 0.1f, end = 1.0f;
        float step = (end - start) / float(n - 1);
        std::vector<float> b(n);
        for (int j = 0; j < n; ++j)
            b[j] = j < n / 2 ? std::fma(step, float(j), start) : std::fma(-step, float(n - 1 - j), end);
        float scale = float(std::pow(10.0, double(i - 6)));
        for (int j = 0; j + 1 < n; ++j) {
            float m = (b[j] + b[j + 1]) / 2.0f;
            vals.push_back(scale * m);
            if (is_signed) vals.push_back(-(scale * m));
        }
    }
    vals.push_back(0.0f);
    vals.push_back(1.0f);
    std::sort(vals.begin(), vals.end());
    std::copy(vals.begin(), vals.end(), out);
}

const float *dynamic_map() {
    std::call_once(g_dynamic_once, [] { build_dynamic_map(true, g_dynamic_map); });
    return g_dynamic_map;
}

const float *unsigned_dynamic_map() {
    std::call_once(g_udynamic_once, [] { build_dynamic_map(false, g_udynamic_map); });
    return g_udynamic_map;
}

uint8_t code8_search(const float *code, float x) {
    int pivot = 127, upper_pivot = 255, lower_pivot = 0;
    float lower = -1.0f, upper = 1.0f;
    float val = code[pivot];
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
    if (x > val) {
        float mid = (upper + val) * 0.5f;
        return uint8_t(x > mid ? upper_pivot : pivot);
    }
    float mid = (lower + val) * 0.5f;
    return uint8_t(x < mid ? lower_pivot : pivot);
}

// ---- threads ------------------------------------------------------------------------------------------------
static int g_threads = 0; // 0 = not set: hardware concurrency

int num_threads() {
    int t = __atomic_load_n(&g_threads, __ATOMIC_RELAXED);
    if (t > 0) return t;
    unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : int(hw);
}

void set_num_threads(int t) { __atomic_store_n(&g_threads, t, __ATOMIC_RELAXED); }

void parallel_for(int64_t n, int64_t grain, int64_t min_per_thread, void (*f)(void *, int64_t, int64_t), void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t units = ceil_div(n, grain);
    int64_t by_work = std::max<int64_t>(1, n / std::max<int64_t>(1, min_per_thread));
    int64_t t = std::min<int64_t>({int64_t(num_threads()), units, by_work});
    if (t <= 1) {
        f(ctx, 0, n);
        return;
    }
    int64_t per = ceil_div(units, t) * grain;
    std::vector<std::thread> workers;
    std::vector<std::exception_ptr> errors(size_t(t), nullptr);
    workers.reserve(size_t(t - 1));
    for (int64_t k = 1; k < t; ++k) {
        int64_t lo = k * per, hi = std::min(n, lo + per);
        if (lo >= hi) break;
        workers.emplace_back([=, &errors] {
            try {
                f(ctx, lo, hi);
            } catch (...) {
                errors[size_t(k)] = std::current_exception();
            }
        });
    }
    try {
        f(ctx, 0, std::min(n, per));
    } catch (...) {
        errors[0] = std::current_exception();
    }
    for (auto &w : workers) w.join();
    for (auto &e : errors)
        if (e) std::rethrow_exception(e);
}

} // namespace sftn

extern "C" const char *jbnb_last_error(void) { return sftn::g_last_error.c_str(); }
