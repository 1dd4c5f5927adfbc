// Fused cross-entropy for one chunk of logits rows on the CPU (spec §4.3, §4.6): per-row logsumexp, loss, and the
// gradient (softmax - onehot) * grad_scale written in place, with optional causal-LM label shift.
#include <cmath>
#include <string>
#include <vector>

#include "../common.hpp"
#include "dispatch.hpp"

namespace sftn {
namespace {

// Targets of rows [row0, row0 + rows): validated before any logits are touched.
std::vector<int64_t> chunk_targets(int64_t rows, int64_t vocab, const int64_t *labels, int64_t total_rows,
                                   int64_t row0, int64_t seq_len, int32_t shift, int64_t ignore_index) {
    if (rows < 0) invalid("rows must be >= 0, got " + std::to_string(rows));
    if (vocab <= 0) invalid("vocab must be > 0, got " + std::to_string(vocab));
    if (shift != 0 && shift != 1) invalid("shift must be 0 or 1, got " + std::to_string(shift));
    if (row0 < 0 || total_rows < 0 || row0 + rows > total_rows)
        invalid("rows [" + std::to_string(row0) + ", " + std::to_string(row0 + rows) + ") exceed total_rows " +
                std::to_string(total_rows));
    if (shift == 1 && (seq_len <= 0 || total_rows % seq_len != 0))
        invalid("with shift=1, seq_len must be > 0 and divide total_rows (" + std::to_string(total_rows) +
                "), got " + std::to_string(seq_len));
    if (ignore_index >= 0 && ignore_index < vocab)
        invalid("ignore_index " + std::to_string(ignore_index) + " is a valid class id in [0, " +
                std::to_string(vocab) + ")");
    std::vector<int64_t> t(static_cast<size_t>(rows));
    if (rows == 0) return t;
    require_ptr(labels, "labels");
    for (int64_t r = 0; r < rows; ++r) {
        int64_t g = row0 + r;
        int64_t y = shift == 0 ? labels[g] : (g % seq_len == seq_len - 1 ? ignore_index : labels[g + 1]);
        if (y != ignore_index && (y < 0 || y >= vocab)) {
            int64_t src = shift == 0 ? g : g + 1;
            invalid("label " + std::to_string(y) + " at position " + std::to_string(src) +
                    " is outside [0, " + std::to_string(vocab) + ") and is not ignore_index " +
                    std::to_string(ignore_index));
        }
        t[size_t(r)] = y;
    }
    return t;
}

struct RowOut {
    float loss, lse;
};

inline RowOut row_f32(const isa::Table &k, float *z, int64_t v, int64_t t, float scale) {
    float m = k.row_max_f32(z, v);
    float zt = z[t];
    float s = k.row_exp_sum_inplace_f32(z, v, m); // z := exp(z - m)
    float lse = m + std::log(s);
    k.row_scale_f32(z, v, scale / s);             // z := softmax * scale
    z[t] -= scale;                                // (p_t - 1) * scale, in fp32
    return {lse - zt, lse};
}

template <class ToF, class FromF>
inline RowOut row_16(float m, float s, uint16_t *z, int64_t t, ToF to_f, FromF from_f, float scale,
                     void (*grad)(uint16_t *, int64_t, float, float), int64_t v) {
    float zt = to_f(z[t]);
    float lse = m + std::log(s);
    grad(z, v, lse, scale);
    // target term computed in fp32 from the fp32 logit before rounding (spec §4.4)
    z[t] = from_f(std::exp(zt - lse) * scale - scale);
    return {lse - zt, lse};
}

enum class Kind { F32, BF16, F16 };

template <Kind K, class T>
void ce_chunk(T *logits, int64_t rows, int64_t vocab, const int64_t *labels, int64_t total_rows, int64_t row0,
              int64_t seq_len, int32_t shift, int64_t ignore_index, float grad_scale, float *row_loss,
              float *row_lse, double *loss_sum, int64_t *valid_count) {
    std::vector<int64_t> tgt =
        chunk_targets(rows, vocab, labels, total_rows, row0, seq_len, shift, ignore_index);
    if (!std::isfinite(grad_scale)) invalid("grad_scale must be finite, got " + std::to_string(grad_scale));
    if (rows == 0) return;
    require_ptr(logits, "logits");
    const isa::Table &k = kernels();
    std::vector<RowOut> res(static_cast<size_t>(rows));
    parallel_for(rows, 1, std::max<int64_t>(1, (1 << 16) / vocab), [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) {
            T *z = logits + r * vocab;
            int64_t t = tgt[size_t(r)];
            if (t == ignore_index) {
                std::memset(static_cast<void *>(z), 0, size_t(vocab) * sizeof(T));
                res[size_t(r)] = {0.0f, 0.0f};
                continue;
            }
            if constexpr (K == Kind::F32) {
                res[size_t(r)] = row_f32(k, z, vocab, t, grad_scale);
            } else if constexpr (K == Kind::BF16) {
                float m = k.row_max_bf16(z, vocab);
                float s = k.row_sumexp_bf16(z, vocab, m);
                res[size_t(r)] = row_16(m, s, z, t, bf16_to_float, float_to_bf16, grad_scale, k.row_grad_bf16, vocab);
            } else {
                float m = k.row_max_f16(z, vocab);
                float s = k.row_sumexp_f16(z, vocab, m);
                res[size_t(r)] = row_16(m, s, z, t, fp16_to_float, float_to_fp16, grad_scale, k.row_grad_f16, vocab);
            }
        }
    });
    // Sequential fp64 sum over rows: the result does not depend on the thread count.
    double sum = 0.0;
    int64_t valid = 0;
    for (int64_t r = 0; r < rows; ++r) {
        if (row_loss) row_loss[r] = res[size_t(r)].loss;
        if (row_lse) row_lse[r] = res[size_t(r)].lse;
        if (tgt[size_t(r)] != ignore_index) {
            sum += double(res[size_t(r)].loss);
            ++valid;
        }
    }
    if (loss_sum) *loss_sum += sum;
    if (valid_count) *valid_count += valid;
}

} // namespace
} // namespace sftn

using namespace sftn;

extern "C" {

int32_t jbnb_ce_chunk_cpu_fp32(float *logits, int64_t rows, int64_t vocab, const int64_t *labels, int64_t total_rows,
                               int64_t row0, int64_t seq_len, int32_t shift, int64_t ignore_index, float grad_scale,
                               float *row_loss, float *row_lse, double *loss_sum, int64_t *valid_count) {
    return guarded(__func__, [&] {
        ce_chunk<Kind::F32>(logits, rows, vocab, labels, total_rows, row0, seq_len, shift, ignore_index, grad_scale,
                            row_loss, row_lse, loss_sum, valid_count);
    });
}
int32_t jbnb_ce_chunk_cpu_bf16(sftn_bf16 *logits, int64_t rows, int64_t vocab, const int64_t *labels,
                               int64_t total_rows, int64_t row0, int64_t seq_len, int32_t shift, int64_t ignore_index,
                               float grad_scale, float *row_loss, float *row_lse, double *loss_sum,
                               int64_t *valid_count) {
    return guarded(__func__, [&] {
        ce_chunk<Kind::BF16>(logits, rows, vocab, labels, total_rows, row0, seq_len, shift, ignore_index, grad_scale,
                             row_loss, row_lse, loss_sum, valid_count);
    });
}
int32_t jbnb_ce_chunk_cpu_fp16(sftn_fp16 *logits, int64_t rows, int64_t vocab, const int64_t *labels,
                               int64_t total_rows, int64_t row0, int64_t seq_len, int32_t shift, int64_t ignore_index,
                               float grad_scale, float *row_loss, float *row_lse, double *loss_sum,
                               int64_t *valid_count) {
    return guarded(__func__, [&] {
        ce_chunk<Kind::F16>(logits, rows, vocab, labels, total_rows, row0, seq_len, shift, ignore_index, grad_scale,
                            row_loss, row_lse, loss_sum, valid_count);
    });
}

} // extern "C"
