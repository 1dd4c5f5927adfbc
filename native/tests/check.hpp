// Minimal test helpers for the CTest executables (no framework dependency).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace check {
inline int failures = 0;
inline int checks = 0;

inline void fail(const char *file, int line, const std::string &what) {
    ++failures;
    if (failures <= 30) std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}
inline int finish(const char *name) {
    std::printf("%s: %d checks, %d failures\n", name, checks, failures);
    return failures == 0 ? 0 : 1;
}
inline uint32_t bits(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
}
inline float from_bits(uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}
// Deterministic generator (splitmix64) and a Box-Muller normal.
struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed) {}
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
    double normal() {
        double u1 = uniform(), u2 = uniform();
        if (u1 < 1e-300) u1 = 1e-300;
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
};
} // namespace check

#define CHECK(cond)                                                                                            \
    do {                                                                                                       \
        ++check::checks;                                                                                       \
        if (!(cond)) check::fail(__FILE__, __LINE__, #cond);                                                   \
    } while (0)
#define CHECK_MSG(cond, msg)                                                                                   \
    do {                                                                                                       \
        ++check::checks;                                                                                       \
        if (!(cond)) check::fail(__FILE__, __LINE__, std::string(#cond) + " -- " + (msg));                     \
    } while (0)
#define CHECK_OK(call)                                                                                         \
    do {                                                                                                       \
        ++check::checks;                                                                                       \
        int32_t st_ = (call);                                                                                  \
        if (st_ != 0) check::fail(__FILE__, __LINE__, std::string(#call) + " returned " + std::to_string(st_) + ": " + jbnb_last_error()); \
    } while (0)
