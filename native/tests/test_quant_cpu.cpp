// CPU quantization kernels: the spec's hand examples, then every ISA path (scalar, AVX2, AVX-512 where the CPU
// has them) against the reference in reference.hpp over block sizes, odd tails, dtypes and special values.
#include <vector>

#include "check.hpp"
#include "reference.hpp"
#include "sftnative_bnb.h"

namespace {

std::vector<uint8_t> q4(const std::vector<float> &x, int64_t bs, int32_t qt, std::vector<float> &absmax) {
    std::vector<uint8_t> out(size_t((x.size() + 1) / 2));
    absmax.assign(size_t((int64_t(x.size()) + bs - 1) / bs), -1.0f);
    CHECK_OK(jbnb_quantize_4bit_cpu_fp32(x.data(), absmax.data(), out.data(), bs, int64_t(x.size()), qt));
    return out;
}

std::string hex(const std::vector<uint8_t> &b, size_t count) {
    std::string s;
    char buf[4];
    for (size_t i = 0; i < count && i < b.size(); ++i) {
        std::snprintf(buf, sizeof buf, "%02X", b[i]);
        s += buf;
    }
    return s;
}

void hand_examples() {
    std::vector<float> am;
    // EX1: the NF4 codebook repeated 4x -> absmax 1, bytes 01 23 45 67 89 AB CD EF x4, exact round trip
    std::vector<float> x1;
    for (int r = 0; r < 4; ++r)
        for (float v : ref::NF4) x1.push_back(v);
    auto p1 = q4(x1, 64, JBNB_NF4, am);
    CHECK(am[0] == 1.0f);
    CHECK_MSG(hex(p1, 8) == "0123456789ABCDEF", hex(p1, 8));
    std::vector<float> d1(64);
    CHECK_OK(jbnb_dequantize_4bit_cpu_fp32(p1.data(), am.data(), d1.data(), 64, 64, JBNB_NF4));
    CHECK(d1 == x1);
    // EX2: x 2.5 -> same bytes, absmax 2.5, bf16 bits of the first outputs C020 BFDF BFA8 BF7D
    std::vector<float> x2;
    for (float v : x1) x2.push_back(v * 2.5f);
    auto p2 = q4(x2, 64, JBNB_NF4, am);
    CHECK(am[0] == 2.5f && p2 == p1);
    std::vector<uint16_t> b2(64);
    CHECK_OK(jbnb_dequantize_4bit_cpu_bf16(p2.data(), am.data(), b2.data(), 64, 64, JBNB_NF4));
    CHECK(b2[0] == 0xC020 && b2[1] == 0xBFDF && b2[2] == 0xBFA8 && b2[3] == 0xBF7D);
    // EX3: ramp (2j-63)/63
    std::vector<float> x3;
    for (int j = 0; j < 64; ++j) x3.push_back(float((2.0 * j - 63.0) / 63.0));
    auto p3 = q4(x3, 64, JBNB_NF4, am);
    CHECK_MSG(hex(p3, 32) == "00000111111112222233344445556667788899AAABBBCCCCDDDDEEEEEEEFFFFF", hex(p3, 32));
    // EX4: all zeros -> CUDA semantics: absmax 0, bytes 00, dequant -0.0
    auto p4 = q4(std::vector<float>(64, 0.0f), 64, JBNB_NF4, am);
    CHECK(am[0] == 0.0f && hex(p4, 4) == "00000000");
    std::vector<float> d4(64);
    CHECK_OK(jbnb_dequantize_4bit_cpu_fp32(p4.data(), am.data(), d4.data(), 64, 64, JBNB_NF4));
    CHECK(d4[0] == 0.0f && std::signbit(d4[0]));
    // EX5: odd n, pad nibble 7
    auto p5 = q4({0.5f, -1.0f, 0.25f, 0.0f, 1.0f}, 64, JBNB_NF4, am);
    CHECK_MSG(hex(p5, 3) == "C0A7F7", hex(p5, 3));
    // EX6: tie on a threshold goes to the lower code
    float t = 0.03979014977812767f;
    auto p6 = q4({1.0f, t, std::nextafter(t, 1.0f), -1.0f}, 64, JBNB_NF4, am);
    CHECK_MSG(hex(p6, 2) == "F780", hex(p6, 2));
    // EX7: FP4 table values (-0.0 -> code 0)
    std::vector<float> x7 = {0, 0.005208333333f, 0.16666667f, 0.25f, 0.33333333f, 0.5f, 0.66666667f, 1.0f,
                             -0.0f, -0.005208333333f, -0.16666667f, -0.25f, -0.33333333f, -0.5f, -0.66666667f, -1.0f};
    auto p7 = q4(x7, 64, JBNB_FP4, am);
    CHECK_MSG(hex(p7, 8) == "0167452309EFCDAB", hex(p7, 8));
    // EX8: double quant of [1,2,3,4]
    float code[256];
    CHECK_OK(jbnb_codebook(8, code));
    float a8[4] = {1, 2, 3, 4}, am2[1], off = 0, rec[4];
    uint8_t q8[4];
    CHECK_OK(jbnb_double_quant_cpu(a8, 4, code, 256, q8, am2, &off));
    CHECK(off == 2.5f && am2[0] == 1.5f && q8[0] == 0 && q8[1] == 47 && q8[2] == 207 && q8[3] == 255);
    CHECK_OK(jbnb_dequant_absmax_cpu(q8, am2, code, off, 256, 4, rec));
    CHECK(rec[0] == 1.0105469f && rec[1] == 2.0019531f && rec[2] == 2.9980469f && rec[3] == 4.0f);
    // EX9: 8-bit blockwise of the map itself is the identity
    std::vector<uint8_t> q9(256);
    float a9;
    CHECK_OK(jbnb_quantize_8bit_cpu_fp32(code, code, &a9, q9.data(), 256, 256));
    bool identity = a9 == 1.0f;
    for (int i = 0; i < 256; ++i) identity &= q9[size_t(i)] == i;
    CHECK(identity);
}

void dynamic_map_bits() {
    float code[256];
    CHECK_OK(jbnb_codebook(8, code));
    CHECK(check::bits(code[0]) == 0xBF7E3333u);
    CHECK(check::bits(code[1]) == 0xBF7A999Au);
    CHECK(check::bits(code[20]) == 0xBF363334u);
    CHECK(check::bits(code[126]) == 0xB513A3B7u);
    CHECK(check::bits(code[127]) == 0u);
    CHECK(check::bits(code[128]) == 0x3513A3B7u);
    CHECK(check::bits(code[218]) == 0x3EF93332u);
    CHECK(check::bits(code[255]) == 0x3F800000u);
    bool sorted = true;
    for (int i = 1; i < 256; ++i) sorted &= code[i - 1] < code[i];
    CHECK(sorted);
    float nf4[16], fp4[16];
    CHECK_OK(jbnb_codebook(JBNB_NF4, nf4));
    CHECK_OK(jbnb_codebook(JBNB_FP4, fp4));
    CHECK(check::bits(nf4[1]) == 0xBF3239B1u && check::bits(nf4[14]) == 0x3F3913B3u);
    CHECK(check::bits(fp4[1]) == 0x3BAAAAABu && check::bits(fp4[2]) == 0x3F2AAAABu && check::bits(fp4[8]) == 0x80000000u);
}

// One configuration against the reference, for the currently active ISA.
void compare_4bit(const std::vector<float> &x, int64_t bs, int32_t qt, const char *what) {
    bool nf4 = qt == JBNB_NF4;
    int64_t n = int64_t(x.size());
    ref::Q4 r = ref::quantize4(x, bs, nf4);
    std::vector<float> am;
    auto p = q4(x, bs, qt, am);
    std::string ctx = std::string(what) + " bs=" + std::to_string(bs) + " n=" + std::to_string(n) + (nf4 ? " nf4" : " fp4");
    CHECK_MSG(p == r.packed, "packed " + ctx);
    bool am_eq = am.size() == r.absmax.size();
    for (size_t i = 0; am_eq && i < am.size(); ++i) am_eq = check::bits(am[i]) == check::bits(r.absmax[i]);
    CHECK_MSG(am_eq, "absmax " + ctx);
    // bf16 / fp16 inputs: the same values given as 16-bit must give the same codes
    std::vector<uint16_t> xb(static_cast<size_t>(n));
    std::vector<float> xbf(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        xb[size_t(i)] = ref::to_bf16(x[size_t(i)]);
        xbf[size_t(i)] = ref::bf16_to_f(xb[size_t(i)]);
    }
    ref::Q4 rb = ref::quantize4(xbf, bs, nf4);
    std::vector<uint8_t> pb(size_t((n + 1) / 2));
    std::vector<float> amb(am.size());
    CHECK_OK(jbnb_quantize_4bit_cpu_bf16(xb.data(), amb.data(), pb.data(), bs, n, qt));
    CHECK_MSG(pb == rb.packed && amb == rb.absmax, "bf16 input " + ctx);
    // dequantize to fp32 / bf16 / fp16
    std::vector<float> d(static_cast<size_t>(n)), want = ref::dequantize4(r, n, bs, nf4);
    CHECK_OK(jbnb_dequantize_4bit_cpu_fp32(p.data(), am.data(), d.data(), bs, n, qt));
    bool eq = true;
    for (int64_t i = 0; i < n; ++i) eq &= check::bits(d[size_t(i)]) == check::bits(want[size_t(i)]);
    CHECK_MSG(eq, "dequant fp32 " + ctx);
    std::vector<uint16_t> h(static_cast<size_t>(n));
    CHECK_OK(jbnb_dequantize_4bit_cpu_bf16(p.data(), am.data(), h.data(), bs, n, qt));
    eq = true;
    for (int64_t i = 0; i < n; ++i) eq &= h[size_t(i)] == ref::to_bf16(want[size_t(i)]);
    CHECK_MSG(eq, "dequant bf16 " + ctx);
    // fp16: the vector conversion must equal the scalar one (itself checked exhaustively in test_fp16)
    CHECK_OK(jbnb_dequantize_4bit_cpu_fp16(p.data(), am.data(), h.data(), bs, n, qt));
    std::vector<uint16_t> hs(static_cast<size_t>(n));
    int cur = jbnb_cpu_isa();
    CHECK_OK(jbnb_set_cpu_isa(JBNB_ISA_SCALAR));
    CHECK_OK(jbnb_dequantize_4bit_cpu_fp16(p.data(), am.data(), hs.data(), bs, n, qt));
    CHECK_OK(jbnb_set_cpu_isa(cur));
    CHECK_MSG(h == hs, "dequant fp16 vs scalar " + ctx);
}

std::vector<float> gaussian(check::Rng &rng, int64_t n, double sigma) {
    std::vector<float> x(static_cast<size_t>(n));
    for (auto &v : x) v = float(rng.normal() * sigma);
    return x;
}

void isa_sweep() {
    check::Rng rng(42);
    int best = jbnb_cpu_isa();
    for (int isa = JBNB_ISA_SCALAR; isa <= best; ++isa) {
        CHECK_OK(jbnb_set_cpu_isa(isa));
        const char *name = isa == 0 ? "scalar" : isa == 1 ? "avx2" : "avx512";
        for (int32_t qt : {JBNB_NF4, JBNB_FP4}) {
            for (int64_t bs : {32, 64, 128, 256, 1024, 4096, 2, 6, 7, 33}) {
                for (int64_t n : {0, 1, 2, 5, 31, 63, 64, 65, 1000, 4096 + 17}) {
                    compare_4bit(gaussian(rng, n, 0.02), bs, qt, name);
                }
            }
            // a larger input that spreads over threads
            compare_4bit(gaussian(rng, (1 << 20) + 3, 1.0), 64, qt, name);
            // special values: zero block, NaN, +-inf, huge and tiny
            std::vector<float> sp = gaussian(rng, 256, 1.0);
            for (int i = 64; i < 128; ++i) sp[size_t(i)] = 0.0f;
            sp[130] = NAN;
            sp[200] = -INFINITY;
            sp[10] = 3e38f;
            sp[11] = 1e-40f;
            compare_4bit(sp, 64, qt, name);
        }
    }
    CHECK_OK(jbnb_set_cpu_isa(best));
}

void eight_bit() {
    float code[256];
    CHECK_OK(jbnb_codebook(8, code));
    check::Rng rng(7);
    for (int64_t bs : {64, 256, 4096, 5}) {
        std::vector<float> x = gaussian(rng, 10000, 0.5);
        std::vector<uint8_t> q(x.size());
        std::vector<float> am(size_t((int64_t(x.size()) + bs - 1) / bs));
        CHECK_OK(jbnb_quantize_8bit_cpu_fp32(code, x.data(), am.data(), q.data(), bs, int64_t(x.size())));
        bool ok = true;
        for (size_t i = 0; i < x.size(); ++i) {
            float y = x[i] * (1.0f / am[i / size_t(bs)]);
            ok &= q[i] == ref::nearest(code, y);
        }
        CHECK_MSG(ok, "8-bit nearest code bs=" + std::to_string(bs));
        std::vector<float> d(x.size());
        CHECK_OK(jbnb_dequantize_8bit_cpu_fp32(code, q.data(), am.data(), d.data(), bs, int64_t(x.size())));
        ok = true;
        for (size_t i = 0; i < x.size(); ++i) ok &= d[i] == code[q[i]] * am[i / size_t(bs)];
        CHECK(ok);
        // the bitsandbytes-named drop-ins agree with ours
        std::vector<uint8_t> q2(x.size());
        std::vector<float> am2(am.size());
        cquantize_blockwise_cpu_fp32(code, x.data(), am2.data(), q2.data(), bs, (long long)x.size());
        CHECK(q2 == q && am2 == am);
    }
}

void drop_in_4bit() {
    check::Rng rng(3);
    std::vector<float> x = gaussian(rng, 3000, 1.0), am;
    auto p = q4(x, 64, JBNB_NF4, am);
    std::vector<float> a(x.size()), b(x.size());
    CHECK_OK(jbnb_dequantize_4bit_cpu_fp32(p.data(), am.data(), a.data(), 64, 3000, JBNB_NF4));
    cdequantize_blockwise_cpu_nf4_fp32(p.data(), am.data(), b.data(), 64, 30, 100); // m x n, flat
    CHECK(a == b);
}

void errors() {
    float am[1];
    uint8_t out[1];
    float x[2] = {1, 2};
    CHECK(jbnb_quantize_4bit_cpu_fp32(nullptr, am, out, 64, 2, JBNB_NF4) == JBNB_EINVAL);
    CHECK(std::string(jbnb_last_error()).find("A is NULL") != std::string::npos);
    CHECK(std::string(jbnb_last_error()).find("jbnb_quantize_4bit_cpu_fp32") == 0);
    CHECK(jbnb_quantize_4bit_cpu_fp32(x, am, out, 0, 2, JBNB_NF4) == JBNB_EINVAL);
    CHECK(jbnb_quantize_4bit_cpu_fp32(x, am, out, 64, -1, JBNB_NF4) == JBNB_EINVAL);
    CHECK(jbnb_quantize_4bit_cpu_fp32(x, am, out, 64, 2, 3) == JBNB_EINVAL);
    CHECK(std::string(jbnb_last_error()).find("quant_type") != std::string::npos);
    CHECK_OK(jbnb_quantize_4bit_cpu_fp32(nullptr, nullptr, nullptr, 64, 0, JBNB_NF4)); // n = 0 is a no-op
    CHECK(std::string(jbnb_last_error()).empty());
    CHECK(jbnb_set_cpu_isa(7) == JBNB_EINVAL);
    CHECK(jbnb_codebook(3, am) == JBNB_EINVAL);
    CHECK(jbnb_set_num_threads(-1) == JBNB_EINVAL);
    CHECK(jbnb_abi_version() == JBNB_ABI_VERSION);
    float code[256];
    CHECK_OK(jbnb_codebook(8, code));
    uint8_t q[1];
    float a2[1], off;
    CHECK(jbnb_double_quant_cpu(x, 0, code, 256, q, a2, &off) == JBNB_EINVAL);
    // bitsandbytes-named functions never exit: they report and return
    cquantize_blockwise_cpu_fp32(code, nullptr, am, out, 64, 2);
    CHECK(std::string(jbnb_last_error()).find("NULL") != std::string::npos);
}

void threads_do_not_change_results() {
    check::Rng rng(11);
    std::vector<float> x = gaussian(rng, 1 << 20, 1.0), a1, a2;
    CHECK_OK(jbnb_set_num_threads(1));
    auto p1 = q4(x, 64, JBNB_NF4, a1);
    CHECK_OK(jbnb_set_num_threads(4));
    auto p2 = q4(x, 64, JBNB_NF4, a2);
    CHECK(jbnb_num_threads() == 4);
    CHECK_OK(jbnb_set_num_threads(0));
    CHECK(p1 == p2 && a1 == a2);
}

} // namespace

int main() {
    hand_examples();
    dynamic_map_bits();
    isa_sweep();
    eight_bit();
    drop_in_4bit();
    errors();
    threads_do_not_change_results();
    return check::finish("test_quant_cpu");
}
