// The non-temporal-store path of the 4-bit dequantize (used for large, 64-byte aligned outputs; forced here with
// SFTNATIVE_STREAM_MIN_BYTES=0 by CTest) gives the same values as the regular path on every ISA.
#include <algorithm>
#include <cstdlib>
#include <vector>

#include "check.hpp"
#include "sftnative_bnb.h"

int main() {
    check::Rng rng(17);
    const int64_t n = 64 * 1000 + 40;
    std::vector<float> x(static_cast<size_t>(n));
    for (auto &v : x) v = float(rng.normal());
    for (int64_t bs : {32, 64, 256}) {
        for (int32_t qt : {JBNB_NF4, JBNB_FP4}) {
            std::vector<uint8_t> p(static_cast<size_t>((n + 1) / 2));
            std::vector<float> am(static_cast<size_t>((n + bs - 1) / bs));
            CHECK_OK(jbnb_quantize_4bit_cpu_fp32(x.data(), am.data(), p.data(), bs, n, qt));
            int best = jbnb_cpu_isa();
            CHECK_OK(jbnb_set_cpu_isa(JBNB_ISA_SCALAR));
            std::vector<float> want32(static_cast<size_t>(n));
            std::vector<uint16_t> want16(static_cast<size_t>(n)), wanth(static_cast<size_t>(n));
            CHECK_OK(jbnb_dequantize_4bit_cpu_fp32(p.data(), am.data(), want32.data(), bs, n, qt));
            CHECK_OK(jbnb_dequantize_4bit_cpu_bf16(p.data(), am.data(), want16.data(), bs, n, qt));
            CHECK_OK(jbnb_dequantize_4bit_cpu_fp16(p.data(), am.data(), wanth.data(), bs, n, qt));
            for (int isa = JBNB_ISA_AVX2; isa <= best; ++isa) {
                CHECK_OK(jbnb_set_cpu_isa(isa));
                auto *o32 = static_cast<float *>(std::aligned_alloc(64, size_t(n) * 4 + 64));
                auto *o16 = static_cast<uint16_t *>(std::aligned_alloc(64, size_t(n) * 2 + 64));
                CHECK_OK(jbnb_dequantize_4bit_cpu_fp32(p.data(), am.data(), o32, bs, n, qt));
                CHECK(std::equal(want32.begin(), want32.end(), o32));
                CHECK_OK(jbnb_dequantize_4bit_cpu_bf16(p.data(), am.data(), o16, bs, n, qt));
                CHECK(std::equal(want16.begin(), want16.end(), o16));
                CHECK_OK(jbnb_dequantize_4bit_cpu_fp16(p.data(), am.data(), o16, bs, n, qt));
                CHECK(std::equal(wanth.begin(), wanth.end(), o16));
                std::free(o32);
                std::free(o16);
            }
            CHECK_OK(jbnb_set_cpu_isa(best));
        }
    }
    return check::finish("test_stream");
}
