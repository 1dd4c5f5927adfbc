// Straightforward references written from the spec text (§2.1–§2.6, §4.1–§4.3), independent of the library's
// kernels: the library's scalar and vector paths are checked against these.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace ref {

// Spec §2.1 / §2.5.1: NF4 code = number of thresholds strictly below y (the CUDA decision tree).
static const float NF4[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                              -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                              0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f,
                              0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
                              0.7229568362236023f, 1.0f};
static const float NF4_T[15] = {-0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f,
                                -0.33967943489551544f, -0.23460740596055984f, -0.13791173323988914f,
                                -0.045525018125772476f, 0.03979014977812767f, 0.1202552504837513f,
                                0.2035212516784668f, 0.2920137718319893f, 0.3893125355243683f,
                                0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f};
// Spec §2.2 / §2.5.2.
static const float FP4_MAG[8] = {0.0f, 0.005208333333f, 0.66666667f, 1.0f, 0.33333333f, 0.5f, 0.16666667f, 0.25f};
static const float FP4_T[7] = {0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f, 0.4166667f, 0.583333f, 0.8333333f};
static const int FP4_ORDER[8] = {0, 1, 6, 7, 4, 5, 2, 3};

inline int nf4_code(float y) {
    int c = 0;
    for (float t : NF4_T)
        if (y > t) ++c;
    return c;
}
inline int fp4_code(float y) {
    float a = std::fabs(y);
    int i = 0;
    for (float t : FP4_T)
        if (a > t) ++i;
    return FP4_ORDER[i] | (y < 0.0f ? 8 : 0);
}
inline float fp4_value(int c) { return (c & 8) ? -FP4_MAG[c & 7] : FP4_MAG[c & 7]; }

struct Q4 {
    std::vector<uint8_t> packed;
    std::vector<float> absmax;
};
inline Q4 quantize4(const std::vector<float> &x, int64_t bs, bool nf4) {
    int64_t n = int64_t(x.size()), nb = (n + bs - 1) / bs;
    Q4 q;
    q.absmax.assign(size_t(nb), 0.0f);
    for (int64_t i = 0; i < n; ++i) q.absmax[size_t(i / bs)] = std::fmax(q.absmax[size_t(i / bs)], std::fabs(x[size_t(i)]));
    std::vector<int> codes(size_t(n + 1), nf4 ? 7 : 0);
    for (int64_t i = 0; i < n; ++i) {
        float y = x[size_t(i)] * (1.0f / q.absmax[size_t(i / bs)]);
        codes[size_t(i)] = nf4 ? nf4_code(y) : fp4_code(y);
    }
    q.packed.resize(size_t((n + 1) / 2));
    for (int64_t j = 0; j < (n + 1) / 2; ++j) q.packed[size_t(j)] = uint8_t((codes[size_t(2 * j)] << 4) | codes[size_t(2 * j + 1)]);
    return q;
}
inline std::vector<float> dequantize4(const Q4 &q, int64_t n, int64_t bs, bool nf4) {
    std::vector<float> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        uint8_t b = q.packed[size_t(i / 2)];
        int c = (i % 2 == 0) ? (b >> 4) : (b & 15);
        out[size_t(i)] = (nf4 ? NF4[c] : fp4_value(c)) * q.absmax[size_t(i / bs)];
    }
    return out;
}

// 16-bit conversions by the textbook definition (RNE via long double arithmetic).
inline uint16_t to_bf16(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    if (std::isnan(f)) return uint16_t((b >> 16) | 0x40); // NaN stays a (quiet) NaN
    uint32_t lower = b & 0xffff, upper = b >> 16;
    if (lower > 0x8000 || (lower == 0x8000 && (upper & 1))) ++upper;
    return uint16_t(upper);
}
inline float bf16_to_f(uint16_t h) {
    uint32_t b = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}

// Spec §2.3: the dynamic map values are the sorted set; nearest neighbour (ties do not occur in random tests).
inline int nearest(const float *code, float x) {
    int best = 0;
    for (int i = 1; i < 256; ++i)
        if (std::fabs(code[i] - x) < std::fabs(code[best] - x)) best = i;
    return best;
}

} // namespace ref
