// Fused elementwise kernels on the CPU, fp32: SwiGLU (silu(gate) * up) and rotary embeddings (HF rotate_half
// layout), forward and backward, over strided rows. Each replaces several memory-bound libtorch passes (and the
// temporaries between them) by one pass; the per-row math is in fused_{scalar,avx2,avx512}.cpp.
#include <string>

#include "../common.hpp"
#include "dispatch.hpp"
#include "fused_isa.hpp"

namespace sftn {
namespace {

const isa::FusedTable &fused_kernels() {
    switch (active_isa()) {
#ifdef SFTN_HAVE_AVX512
    case JBNB_ISA_AVX512:
        return isa::FUSED_AVX512;
#endif
#ifdef SFTN_HAVE_AVX2
    case JBNB_ISA_AVX2:
        return isa::FUSED_AVX2;
#endif
    default:
        return isa::FUSED_SCALAR;
    }
}

void require_dims(int64_t rows, int64_t cols, const char *what) {
    if (rows < 0 || cols < 0)
        invalid(std::string(what) + " must be >= 0, got " + std::to_string(rows) + " x " + std::to_string(cols));
}

void require_ld(int64_t ld, int64_t cols, const char *name) {
    if (ld < cols)
        invalid(std::string(name) + " (row stride " + std::to_string(ld) + ") is smaller than the row length " +
                std::to_string(cols));
}

// Rows per task: about 64K elements, so small calls run inline and large ones split evenly.
int64_t grain_rows(int64_t cols) { return cols >= 65536 ? 1 : 65536 / (cols > 0 ? cols : 1); }

} // namespace
} // namespace sftn

using namespace sftn;

extern "C" {

int32_t jbnb_swiglu_fwd_cpu_fp32(const float *gate, int64_t ld_gate, const float *up, int64_t ld_up, float *out,
                                 int64_t ld_out, int64_t rows, int64_t inter) {
    return guarded(__func__, [&] {
        require_dims(rows, inter, "rows x inter");
        if (rows == 0 || inter == 0) return;
        require_ptr(gate, "gate");
        require_ptr(up, "up");
        require_ptr(out, "out");
        require_ld(ld_gate, inter, "gate");
        require_ld(ld_up, inter, "up");
        require_ld(ld_out, inter, "out");
        const auto &k = fused_kernels();
        parallel_for(rows, grain_rows(inter), 1, [&](int64_t lo, int64_t hi) {
            for (int64_t r = lo; r < hi; ++r)
                k.swiglu_fwd_f32(gate + r * ld_gate, up + r * ld_up, out + r * ld_out, inter);
        });
    });
}

int32_t jbnb_swiglu_bwd_cpu_fp32(const float *gate, int64_t ld_gate, const float *up, int64_t ld_up,
                                 const float *dout, int64_t ld_dout, float *dgate, int64_t ld_dgate, float *dup,
                                 int64_t ld_dup, int64_t rows, int64_t inter) {
    return guarded(__func__, [&] {
        require_dims(rows, inter, "rows x inter");
        if (rows == 0 || inter == 0) return;
        require_ptr(gate, "gate");
        require_ptr(up, "up");
        require_ptr(dout, "dout");
        require_ptr(dgate, "dgate");
        require_ptr(dup, "dup");
        require_ld(ld_gate, inter, "gate");
        require_ld(ld_up, inter, "up");
        require_ld(ld_dout, inter, "dout");
        require_ld(ld_dgate, inter, "dgate");
        require_ld(ld_dup, inter, "dup");
        const auto &k = fused_kernels();
        parallel_for(rows, grain_rows(inter), 1, [&](int64_t lo, int64_t hi) {
            for (int64_t r = lo; r < hi; ++r)
                k.swiglu_bwd_f32(gate + r * ld_gate, up + r * ld_up, dout + r * ld_dout, dgate + r * ld_dgate,
                                 dup + r * ld_dup, inter);
        });
    });
}

int32_t jbnb_rope_cpu_fp32(const float *x, float *out, const float *cos, const float *sin, const int64_t *strides,
                           int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, int64_t rot_dims,
                           int32_t backward) {
    return guarded(__func__, [&] {
        if (batch < 0 || seq < 0 || heads < 0 || head_dim < 0)
            invalid("batch, seq, heads, head_dim must be >= 0, got " + std::to_string(batch) + ", " +
                    std::to_string(seq) + ", " + std::to_string(heads) + ", " + std::to_string(head_dim));
        if (rot_dims < 2 || rot_dims > head_dim || rot_dims % 2 != 0)
            invalid("rot_dims must be even and in [2, head_dim = " + std::to_string(head_dim) + "], got " +
                    std::to_string(rot_dims));
        if (batch == 0 || seq == 0 || heads == 0) return;
        require_ptr(x, "x");
        require_ptr(out, "out");
        require_ptr(cos, "cos");
        require_ptr(sin, "sin");
        require_ptr(strides, "strides");
        const int64_t xb = strides[0], xt = strides[1], xh = strides[2];
        const int64_t ob = strides[3], ot = strides[4], oh = strides[5];
        const int64_t cb = strides[6], ct = strides[7];
        const int64_t half = rot_dims / 2;
        const float sign = backward ? -1.0f : 1.0f;
        const auto &k = fused_kernels();
        parallel_for(batch * seq, grain_rows(heads * head_dim), 1, [&](int64_t lo, int64_t hi) {
            for (int64_t r = lo; r < hi; ++r) {
                const int64_t b = r / seq, t = r % seq;
                const float *c = cos + b * cb + t * ct, *s = sin + b * cb + t * ct;
                for (int64_t h = 0; h < heads; ++h) {
                    const float *xi = x + b * xb + t * xt + h * xh;
                    float *o = out + b * ob + t * ot + h * oh;
                    k.rope_f32(xi, o, c, s, half, sign);
                    if (o != xi)
                        for (int64_t j = rot_dims; j < head_dim; ++j) o[j] = xi[j]; // pass-through dims
                }
            }
        });
    });
}

} // extern "C"
