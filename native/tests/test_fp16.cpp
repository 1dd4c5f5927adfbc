// The library's scalar fp16/bf16 conversions: exhaustive decode/encode round trip over all 65536 half values, and
// encode against the F16C hardware instruction (IEEE round-to-nearest-even) on random and edge-case floats.
#include <immintrin.h>

#include "check.hpp"

namespace sftn {
float fp16_to_float(uint16_t h);
uint16_t float_to_fp16(float f);
} // namespace sftn

__attribute__((target("f16c"))) static uint16_t hw_encode(float f) {
    return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
__attribute__((target("f16c"))) static float hw_decode(uint16_t h) { return _cvtsh_ss(h); }

int main() {
    bool f16c = __builtin_cpu_supports("f16c");
    int bad_round_trip = 0, bad_decode = 0;
    for (uint32_t h = 0; h < 65536; ++h) {
        float f = sftn::fp16_to_float(uint16_t(h));
        bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (!nan && sftn::float_to_fp16(f) != h) ++bad_round_trip;
        if (nan && !std::isnan(f)) ++bad_round_trip;
        if (f16c && !nan && check::bits(hw_decode(uint16_t(h))) != check::bits(f)) ++bad_decode;
    }
    CHECK_MSG(bad_round_trip == 0, std::to_string(bad_round_trip) + " half values do not round-trip");
    CHECK_MSG(bad_decode == 0, std::to_string(bad_decode) + " half values decode differently from F16C");
    if (f16c) {
        check::Rng rng(5);
        int bad = 0;
        for (int i = 0; i < 2000000; ++i) {
            // random bit patterns over the interesting exponent range (subnormal halves up to overflow)
            uint32_t b = uint32_t(rng.next());
            uint32_t e = 96 + uint32_t(rng.next() % 50); // exponents 2^-31 .. 2^18
            b = (b & 0x807fffffu) | (e << 23);
            float f = check::from_bits(b);
            if (sftn::float_to_fp16(f) != hw_encode(f)) ++bad;
        }
        for (float f : {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 5.96e-8f, 2.98e-8f, 2.9802322e-8f,
                        6.1035156e-5f, 6.1e-5f, INFINITY, -INFINITY, 1e-45f})
            if (sftn::float_to_fp16(f) != hw_encode(f)) ++bad;
        CHECK_MSG(bad == 0, std::to_string(bad) + " floats encode differently from F16C");
    } else {
        std::printf("F16C not available: hardware comparison skipped\n");
    }
    return check::finish("test_fp16");
}
