// Flash-attention style causal/varlen attention on the CPU, fp32: the forward pass walks key tiles with an online
// softmax and stores only the output and the per-row log-sum-exp; the backward pass recomputes the probabilities
// tile by tile (FlashAttention-2's order: key tiles outside, query tiles inside). Memory is linear in the sequence
// length: which keys a query sees is one range [kv_lo, kv_hi) per query plus its own position, so causal, right
// padding, packed sequences (block-diagonal) and sliding windows need no (T, S) mask. GQA reads each key/value head
// once for its whole group of query heads. The tile GEMMs and row operations come from the ISA table (dispatch.cpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../common.hpp"
#include "dispatch.hpp"

namespace sftn {
namespace {

constexpr int64_t BR = 64; // query rows per tile
constexpr int64_t BC = 64; // keys per tile
constexpr float NEG_INF = -std::numeric_limits<float>::infinity();

// A (batch, head, position, dim) tensor with unit stride along dim.
struct Strided {
    int64_t sb, sh, st;
    int64_t at(int64_t b, int64_t h, int64_t t) const { return b * sb + h * sh + t * st; }
};

struct Problem {
    int64_t B, H, KVH, T, D;
    const int32_t *lo, *hi; // (B, T) or null = causal
    float scale, softcap;
    int64_t group() const { return H / KVH; }
    int64_t lo_of(int64_t b, int64_t t) const { return lo ? lo[b * T + t] : 0; }
    int64_t hi_of(int64_t b, int64_t t) const { return hi ? hi[b * T + t] : t + 1; }
};

void validate(const Problem &p, const int64_t *strides, int n_tensors) {
    if (p.B < 0 || p.T < 0) invalid("batch and seq must be >= 0");
    if (p.H <= 0 || p.KVH <= 0 || p.H % p.KVH != 0)
        invalid("heads (" + std::to_string(p.H) + ") must be a positive multiple of kv_heads (" +
                std::to_string(p.KVH) + ")");
    if (p.D <= 0) invalid("head_dim must be > 0, got " + std::to_string(p.D));
    if (!(p.scale > 0.0f) || !std::isfinite(p.scale)) invalid("scale must be finite and > 0");
    if (!(p.softcap >= 0.0f) || !std::isfinite(p.softcap)) invalid("softcap must be finite and >= 0 (0 = none)");
    if (p.T > int64_t(INT32_MAX)) invalid("seq exceeds int32 range");
    require_ptr(strides, "strides");
    for (int i = 0; i < 3 * n_tensors; ++i)
        if (strides[i] < 0) invalid("strides must be >= 0");
    if ((p.lo == nullptr) != (p.hi == nullptr)) invalid("kv_lo and kv_hi must both be given or both be NULL");
    if (p.lo) {
        for (int64_t i = 0; i < p.B * p.T; ++i) {
            if (p.lo[i] < 0 || p.lo[i] > p.hi[i] || p.hi[i] > p.T)
                invalid("key range [" + std::to_string(p.lo[i]) + ", " + std::to_string(p.hi[i]) + ") of row " +
                        std::to_string(i) + " is not inside [0, seq=" + std::to_string(p.T) + "]");
        }
    }
}

// Keys a query block [i0, i1) can see at all: [kmin, kmax).
void block_keys(const Problem &p, int64_t b, int64_t i0, int64_t i1, int64_t &kmin, int64_t &kmax) {
    kmin = i0;
    kmax = i1;
    for (int64_t t = i0; t < i1; ++t) {
        int64_t lo = p.lo_of(b, t), hi = p.hi_of(b, t);
        if (lo < hi) {
            kmin = std::min(kmin, lo);
            kmax = std::max(kmax, hi);
        }
    }
}

// Turns one row of raw scores s[0..n) for keys [j0, j0+n) of query t into visible-or-not, in place:
// scores := scale * s (soft-capped when softcap > 0), invisible entries left untouched. Returns the visible span
// [a, e) (relative to j0; empty when a >= e) and whether the diagonal key t lies outside it but in the tile.
struct Span {
    int64_t a, e;
    bool diag;      // key t is in this tile and outside [a, e)
    int64_t dcol;   // its column
};
inline Span row_span(const Problem &p, int64_t b, int64_t t, int64_t j0, int64_t n) {
    int64_t lo = p.lo_of(b, t), hi = p.hi_of(b, t);
    Span s;
    s.a = std::max<int64_t>(lo - j0, 0);
    s.e = std::min<int64_t>(hi - j0, n);
    s.dcol = t - j0;
    bool in_tile = s.dcol >= 0 && s.dcol < n;
    s.diag = in_tile && !(s.dcol >= s.a && s.dcol < s.e);
    return s;
}

// scale and (optionally) soft-cap the visible part of a score row; dcap (nullable) receives d(capped)/d(scaled).
inline void transform(const isa::Table &k, const Problem &p, float *s, const Span &sp, float *dcap) {
    auto one = [&](int64_t c) {
        float x = s[c] * p.scale;
        if (p.softcap > 0.0f) {
            float th = std::tanh(x / p.softcap);
            x = p.softcap * th;
            if (dcap) dcap[c] = 1.0f - th * th;
        }
        s[c] = x;
    };
    if (p.softcap > 0.0f) {
        for (int64_t c = sp.a; c < sp.e; ++c) one(c);
    } else if (sp.e > sp.a) {
        k.row_scale_f32(s + sp.a, sp.e - sp.a, p.scale);
    }
    if (sp.diag) one(sp.dcol);
}

// exp(s - m) on the visible entries, 0 elsewhere (n columns); returns the sum of the visible exps.
inline float exp_row(const isa::Table &k, float *s, int64_t n, const Span &sp, float m) {
    float d = sp.diag ? std::exp(s[sp.dcol] - m) : 0.0f;
    float sum = 0.0f;
    if (sp.e > sp.a) {
        sum = k.row_exp_sum_inplace_f32(s + sp.a, sp.e - sp.a, m);
        std::fill(s, s + sp.a, 0.0f);
        std::fill(s + sp.e, s + n, 0.0f);
    } else {
        std::fill(s, s + n, 0.0f);
    }
    if (sp.diag) s[sp.dcol] = d;
    return sum + d;
}

// K (or V) of one (b, kv head) transposed into (D, ldt) so that score tiles are plain row-major GEMMs.
void pack_transposed(const float *x, const Strided &sx, int64_t b, int64_t g, int64_t T, int64_t D, float *out,
                     int64_t ldt) {
    for (int64_t t = 0; t < T; ++t) {
        const float *row = x + sx.at(b, g, t);
        for (int64_t d = 0; d < D; ++d) out[d * ldt + t] = row[d];
    }
}

void forward(const float *q, const float *k, const float *v, float *out, float *lse, const Problem &p,
             const int64_t *strides) {
    const Strided sq{strides[0], strides[1], strides[2]}, sk{strides[3], strides[4], strides[5]},
        sv{strides[6], strides[7], strides[8]}, so{strides[9], strides[10], strides[11]};
    if (p.B * p.T == 0) return;
    require_ptr(q, "q"), require_ptr(k, "k"), require_ptr(v, "v"), require_ptr(out, "out"), require_ptr(lse, "lse");
    const isa::Table &kt = kernels();
    const int64_t T = p.T, D = p.D, ldt = T;
    // Kᵀ of every (b, kv head), packed once: (B, KVH, D, T) — the size of K itself.
    std::vector<float> kT(size_t(p.B * p.KVH * D * ldt));
    parallel_for(p.B * p.KVH, 1, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i)
            pack_transposed(k, sk, i / p.KVH, i % p.KVH, T, D, kT.data() + i * D * ldt, ldt);
    });
    const int64_t nqb = ceil_div(T, BR);
    parallel_for(p.B * p.H * nqb, 1, 1, [&](int64_t lo, int64_t hi) {
        std::vector<float> s(size_t(BR * BC)), o(size_t(BR * D)), m(static_cast<size_t>(BR)), l(static_cast<size_t>(BR));
        for (int64_t task = lo; task < hi; ++task) {
            const int64_t b = task / (p.H * nqb), h = (task / nqb) % p.H, i0 = (task % nqb) * BR;
            const int64_t g = h / p.group(), rows = std::min(BR, T - i0);
            const float *qb = q + sq.at(b, h, i0);
            const float *kTb = kT.data() + (b * p.KVH + g) * D * ldt;
            std::fill(o.begin(), o.end(), 0.0f);
            std::fill(m.begin(), m.end(), NEG_INF);
            std::fill(l.begin(), l.end(), 0.0f);
            int64_t kmin, kmax;
            block_keys(p, b, i0, i0 + rows, kmin, kmax);
            for (int64_t j0 = kmin - kmin % BC; j0 < kmax; j0 += BC) {
                const int64_t n = std::min(BC, T - j0);
                kt.attn_gemm_f32(rows, n, D, qb, sq.st, 1, kTb + j0, ldt, s.data(), BC, 0); // (rows, n) = Q Kᵀ
                for (int64_t r = 0; r < rows; ++r) {
                    float *sr = s.data() + r * BC;
                    Span sp = row_span(p, b, i0 + r, j0, n);
                    if (sp.e <= sp.a && !sp.diag) {
                        std::fill(sr, sr + n, 0.0f);
                        continue;
                    }
                    transform(kt, p, sr, sp, nullptr);
                    float mx = sp.e > sp.a ? kt.row_max_f32(sr + sp.a, sp.e - sp.a) : NEG_INF;
                    if (sp.diag) mx = std::max(mx, sr[sp.dcol]);
                    const float mnew = std::max(m[size_t(r)], mx);
                    const float alpha = m[size_t(r)] == NEG_INF ? 0.0f : std::exp(m[size_t(r)] - mnew);
                    const float sum = exp_row(kt, sr, n, sp, mnew);
                    l[size_t(r)] = l[size_t(r)] * alpha + sum;
                    if (alpha != 1.0f) kt.row_scale_f32(o.data() + r * D, D, alpha);
                    m[size_t(r)] = mnew;
                }
                // O += P V: (rows, D) += (rows, n) · (n, D)
                kt.attn_gemm_f32(rows, D, n, s.data(), BC, 1, v + sv.at(b, g, j0), sv.st, o.data(), D, 1);
            }
            for (int64_t r = 0; r < rows; ++r) {
                float *dst = out + so.at(b, h, i0 + r);
                const float inv = 1.0f / l[size_t(r)];
                for (int64_t d = 0; d < D; ++d) dst[d] = o[size_t(r * D + d)] * inv;
                lse[(b * p.H + h) * T + i0 + r] = m[size_t(r)] + std::log(l[size_t(r)]);
            }
        }
    });
}

void backward(const float *q, const float *k, const float *v, const float *out, const float *dout, const float *lse,
              float *dq, float *dk, float *dv, const Problem &p, const int64_t *strides) {
    const Strided sq{strides[0], strides[1], strides[2]}, sk{strides[3], strides[4], strides[5]},
        sv{strides[6], strides[7], strides[8]}, so{strides[9], strides[10], strides[11]},
        sdo{strides[12], strides[13], strides[14]}, sdq{strides[15], strides[16], strides[17]},
        sdk{strides[18], strides[19], strides[20]}, sdv{strides[21], strides[22], strides[23]};
    if (p.B * p.T == 0) return;
    require_ptr(q, "q"), require_ptr(k, "k"), require_ptr(v, "v"), require_ptr(out, "out");
    require_ptr(dout, "dout"), require_ptr(lse, "lse"), require_ptr(dq, "dq"), require_ptr(dk, "dk");
    require_ptr(dv, "dv");
    const isa::Table &kt = kernels();
    const int64_t T = p.T, D = p.D, G = p.group(), nqb = ceil_div(T, BR);
    // One task per (b, kv head): it owns dK, dV of that head and dQ of its group of query heads, so no two threads
    // write the same memory and the result does not depend on the thread count.
    parallel_for(p.B * p.KVH, 1, 1, [&](int64_t lo_task, int64_t hi_task) {
        std::vector<float> kT(size_t(D * T)), vT(size_t(D * T)), delta(size_t(G * T));
        std::vector<float> s(size_t(BR * BC)), dp(size_t(BR * BC)), dcap(size_t(BR * BC));
        std::vector<float> dkb(size_t(BC * D)), dvb(size_t(BC * D));
        std::vector<int64_t> qkmin(static_cast<size_t>(nqb)), qkmax(static_cast<size_t>(nqb));
        for (int64_t task = lo_task; task < hi_task; ++task) {
            const int64_t b = task / p.KVH, g = task % p.KVH;
            pack_transposed(k, sk, b, g, T, D, kT.data(), T);
            pack_transposed(v, sv, b, g, T, D, vT.data(), T);
            for (int64_t qi = 0; qi < nqb; ++qi)
                block_keys(p, b, qi * BR, std::min(T, qi * BR + BR), qkmin[size_t(qi)], qkmax[size_t(qi)]);
            for (int64_t hg = 0; hg < G; ++hg) {
                const int64_t h = g * G + hg;
                for (int64_t t = 0; t < T; ++t) {
                    const float *o = out + so.at(b, h, t), *go = dout + sdo.at(b, h, t);
                    float acc = 0.0f;
                    for (int64_t d = 0; d < D; ++d) acc += o[d] * go[d];
                    delta[size_t(hg * T + t)] = acc;
                    float *gq = dq + sdq.at(b, h, t);
                    std::fill(gq, gq + D, 0.0f);
                }
            }
            for (int64_t j0 = 0; j0 < T; j0 += BC) {
                const int64_t n = std::min(BC, T - j0);
                std::fill(dkb.begin(), dkb.end(), 0.0f);
                std::fill(dvb.begin(), dvb.end(), 0.0f);
                for (int64_t hg = 0; hg < G; ++hg) {
                    const int64_t h = g * G + hg;
                    const float *lse_h = lse + (b * p.H + h) * T;
                    for (int64_t qi = 0; qi < nqb; ++qi) {
                        if (qkmax[size_t(qi)] <= j0 || qkmin[size_t(qi)] >= j0 + n) continue;
                        const int64_t i0 = qi * BR, rows = std::min(BR, T - i0);
                        const float *qb = q + sq.at(b, h, i0), *dob = dout + sdo.at(b, h, i0);
                        kt.attn_gemm_f32(rows, n, D, qb, sq.st, 1, kT.data() + j0, T, s.data(), BC, 0); // S = Q Kᵀ
                        bool any = false;
                        for (int64_t r = 0; r < rows; ++r) {
                            float *sr = s.data() + r * BC;
                            Span sp = row_span(p, b, i0 + r, j0, n);
                            if (sp.e <= sp.a && !sp.diag) {
                                std::fill(sr, sr + n, 0.0f);
                                continue;
                            }
                            any = true;
                            transform(kt, p, sr, sp, dcap.data() + r * BC);
                            exp_row(kt, sr, n, sp, lse_h[i0 + r]); // P
                        }
                        if (!any) continue;
                        // dV += Pᵀ dO: (n, D) += (n, rows) · (rows, D)
                        kt.attn_gemm_f32(n, D, rows, s.data(), 1, BC, dob, sdo.st, dvb.data(), D, 1);
                        // dP = dO Vᵀ: (rows, n)
                        kt.attn_gemm_f32(rows, n, D, dob, sdo.st, 1, vT.data() + j0, T, dp.data(), BC, 0);
                        for (int64_t r = 0; r < rows; ++r) {
                            float *sr = s.data() + r * BC; // becomes dS (w.r.t. the scaled scores)
                            kt.row_dsoftmax_f32(sr, dp.data() + r * BC, n, delta[size_t(hg * T + i0 + r)]);
                            if (p.softcap > 0.0f) {
                                const float *dc = dcap.data() + r * BC;
                                for (int64_t c = 0; c < n; ++c) sr[c] *= sr[c] == 0.0f ? 0.0f : dc[c];
                            }
                        }
                        // dK += dSᵀ Q: (n, D) += (n, rows) · (rows, D)
                        kt.attn_gemm_f32(n, D, rows, s.data(), 1, BC, qb, sq.st, dkb.data(), D, 1);
                        // dQ += dS K: (rows, D) += (rows, n) · (n, D)
                        kt.attn_gemm_f32(rows, D, n, s.data(), BC, 1, k + sk.at(b, g, j0), sk.st,
                                         dq + sdq.at(b, h, i0), sdq.st, 1);
                    }
                }
                for (int64_t c = 0; c < n; ++c) {
                    float *gk = dk + sdk.at(b, g, j0 + c), *gv = dv + sdv.at(b, g, j0 + c);
                    for (int64_t d = 0; d < D; ++d) {
                        gk[d] = dkb[size_t(c * D + d)] * p.scale;
                        gv[d] = dvb[size_t(c * D + d)];
                    }
                }
            }
            for (int64_t hg = 0; hg < G; ++hg)
                for (int64_t t = 0; t < T; ++t) kt.row_scale_f32(dq + sdq.at(b, g * G + hg, t), D, p.scale);
        }
    });
}

// bf16 in memory, fp32 inside: each (B, heads, T, D) operand is widened once into a contiguous fp32 copy (exact), the
// fp32 kernel above runs on the copies, and results are rounded to bf16 (nearest-even) on the way out. The copies
// are O(B * H * T * D) (linear in T, freed on return); the widening is O(T * D) per head against the kernel's
// O(T^2 * D), and the tile GEMMs keep fp32 accumulation with the per-ISA fused multiply-add kernels.
struct Bf16View {
    const uint16_t *p;
    int64_t n_heads;
    Strided s;
};

// x (B, n_heads, T, D) bf16 with strides s -> dst contiguous fp32 (B, n_heads, T, D).
void widen(const Bf16View &x, int64_t B, int64_t T, int64_t D, float *dst) {
    parallel_for(B * x.n_heads, 1, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
            const int64_t b = i / x.n_heads, h = i % x.n_heads;
            for (int64_t t = 0; t < T; ++t) {
                const uint16_t *src = x.p + x.s.at(b, h, t);
                float *o = dst + (i * T + t) * D;
                for (int64_t d = 0; d < D; ++d) o[d] = bf16_to_float(src[d]);
            }
        }
    });
}

// src fp32 laid out by ss -> dst bf16 (B, n_heads, T, D) with strides sd, rounded to nearest-even.
void narrow(const float *src, const Strided &ss, uint16_t *dst, const Strided &sd, int64_t B, int64_t n_heads,
            int64_t T, int64_t D) {
    parallel_for(B * n_heads, 1, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
            const int64_t b = i / n_heads, h = i % n_heads;
            for (int64_t t = 0; t < T; ++t) {
                const float *a = src + ss.at(b, h, t);
                uint16_t *o = dst + sd.at(b, h, t);
                for (int64_t d = 0; d < D; ++d) o[d] = float_to_bf16(a[d]);
            }
        }
    });
}

Strided contiguous(int64_t n_heads, int64_t T, int64_t D) { return Strided{n_heads * T * D, T * D, D}; }

void forward_bf16(const uint16_t *q, const uint16_t *k, const uint16_t *v, uint16_t *out, float *lse,
                  const Problem &p, const int64_t *strides) {
    if (p.B * p.T == 0) return;
    require_ptr(q, "q"), require_ptr(k, "k"), require_ptr(v, "v"), require_ptr(out, "out"), require_ptr(lse, "lse");
    const int64_t B = p.B, H = p.H, KVH = p.KVH, T = p.T, D = p.D;
    std::vector<float> qf(size_t(B * H * T * D)), kf(size_t(B * KVH * T * D)), vf(size_t(B * KVH * T * D));
    std::vector<float> of(size_t(B * H * T * D));
    widen({q, H, {strides[0], strides[1], strides[2]}}, B, T, D, qf.data());
    widen({k, KVH, {strides[3], strides[4], strides[5]}}, B, T, D, kf.data());
    widen({v, KVH, {strides[6], strides[7], strides[8]}}, B, T, D, vf.data());
    const Strided cq = contiguous(H, T, D), ckv = contiguous(KVH, T, D);
    const int64_t fs[12] = {cq.sb, cq.sh, cq.st, ckv.sb, ckv.sh, ckv.st, ckv.sb, ckv.sh, ckv.st, cq.sb, cq.sh, cq.st};
    forward(qf.data(), kf.data(), vf.data(), of.data(), lse, p, fs);
    narrow(of.data(), cq, out, {strides[9], strides[10], strides[11]}, B, H, T, D);
}

void backward_bf16(const uint16_t *q, const uint16_t *k, const uint16_t *v, const uint16_t *out,
                   const uint16_t *dout, const float *lse, uint16_t *dq, uint16_t *dk, uint16_t *dv, const Problem &p,
                   const int64_t *strides) {
    if (p.B * p.T == 0) return;
    require_ptr(q, "q"), require_ptr(k, "k"), require_ptr(v, "v"), require_ptr(out, "out");
    require_ptr(dout, "dout"), require_ptr(lse, "lse"), require_ptr(dq, "dq"), require_ptr(dk, "dk");
    require_ptr(dv, "dv");
    const int64_t B = p.B, H = p.H, KVH = p.KVH, T = p.T, D = p.D;
    const size_t nq = size_t(B * H * T * D), nkv = size_t(B * KVH * T * D);
    std::vector<float> qf(nq), kf(nkv), vf(nkv), of(nq), gf(nq), dqf(nq), dkf(nkv), dvf(nkv);
    auto st = [&](int i) { return Strided{strides[3 * i], strides[3 * i + 1], strides[3 * i + 2]}; };
    widen({q, H, st(0)}, B, T, D, qf.data());
    widen({k, KVH, st(1)}, B, T, D, kf.data());
    widen({v, KVH, st(2)}, B, T, D, vf.data());
    widen({out, H, st(3)}, B, T, D, of.data());
    widen({dout, H, st(4)}, B, T, D, gf.data());
    const Strided cq = contiguous(H, T, D), ckv = contiguous(KVH, T, D);
    int64_t fs[24];
    const Strided order[8] = {cq, ckv, ckv, cq, cq, cq, ckv, ckv};
    for (int i = 0; i < 8; ++i) fs[3 * i] = order[i].sb, fs[3 * i + 1] = order[i].sh, fs[3 * i + 2] = order[i].st;
    backward(qf.data(), kf.data(), vf.data(), of.data(), gf.data(), lse, dqf.data(), dkf.data(), dvf.data(), p, fs);
    narrow(dqf.data(), cq, dq, st(5), B, H, T, D);
    narrow(dkf.data(), ckv, dk, st(6), B, KVH, T, D);
    narrow(dvf.data(), ckv, dv, st(7), B, KVH, T, D);
}

void ranges(int64_t B, int64_t T, const int64_t *segments, const int64_t *lengths, int64_t window, int32_t *lo,
            int32_t *hi) {
    if (B < 0 || T < 0) invalid("batch and seq must be >= 0");
    if (T > int64_t(INT32_MAX)) invalid("seq exceeds int32 range");
    if (B * T == 0) return;
    require_ptr(lo, "kv_lo"), require_ptr(hi, "kv_hi");
    for (int64_t b = 0; b < B; ++b) {
        const int64_t len = lengths ? lengths[b] : T;
        if (len < 0 || len > T)
            invalid("lengths[" + std::to_string(b) + "] = " + std::to_string(len) + " is outside [0, " +
                    std::to_string(T) + "]");
        int64_t start = 0; // first position of the current segment run
        for (int64_t t = 0; t < T; ++t) {
            int64_t l = 0, h = t + 1;
            if (segments) {
                const int64_t *sg = segments + b * T;
                if (t > 0 && sg[t] != sg[t - 1]) {
                    start = t;
                    for (int64_t u = 0; u < t; ++u)
                        if (sg[u] == sg[t] && sg[t] != 0)
                            invalid("segment id " + std::to_string(sg[t]) + " of row " + std::to_string(b) +
                                    " appears in two separate runs (positions " + std::to_string(u) + " and " +
                                    std::to_string(t) + "); packed segments must be contiguous");
                }
                if (sg[t] == 0) l = h = t; // padding: only its own key
                else l = start;
            }
            h = std::min(h, len);
            if (window > 0) l = std::max(l, t - window + 1);
            if (h < l) h = l;
            lo[b * T + t] = int32_t(l);
            hi[b * T + t] = int32_t(h);
        }
    }
}

} // namespace
} // namespace sftn

using namespace sftn;

extern "C" {

int32_t jbnb_attention_ranges_cpu(int64_t batch, int64_t seq, const int64_t *segments, const int64_t *lengths,
                                  int64_t window, int32_t *kv_lo, int32_t *kv_hi) {
    return guarded(__func__, [&] { ranges(batch, seq, segments, lengths, window, kv_lo, kv_hi); });
}

int32_t jbnb_attention_fwd_cpu_fp32(const float *q, const float *k, const float *v, float *out, float *lse,
                                    int64_t batch, int64_t heads, int64_t kv_heads, int64_t seq, int64_t head_dim,
                                    const int64_t *strides, const int32_t *kv_lo, const int32_t *kv_hi, float scale,
                                    float softcap) {
    return guarded(__func__, [&] {
        Problem p{batch, heads, kv_heads, seq, head_dim, kv_lo, kv_hi, scale, softcap};
        validate(p, strides, 4);
        forward(q, k, v, out, lse, p, strides);
    });
}

int32_t jbnb_attention_bwd_cpu_fp32(const float *q, const float *k, const float *v, const float *out,
                                    const float *dout, const float *lse, float *dq, float *dk, float *dv,
                                    int64_t batch, int64_t heads, int64_t kv_heads, int64_t seq, int64_t head_dim,
                                    const int64_t *strides, const int32_t *kv_lo, const int32_t *kv_hi, float scale,
                                    float softcap) {
    return guarded(__func__, [&] {
        Problem p{batch, heads, kv_heads, seq, head_dim, kv_lo, kv_hi, scale, softcap};
        validate(p, strides, 8);
        backward(q, k, v, out, dout, lse, dq, dk, dv, p, strides);
    });
}

int32_t jbnb_attention_fwd_cpu_bf16(const sftn_bf16 *q, const sftn_bf16 *k, const sftn_bf16 *v, sftn_bf16 *out,
                                    float *lse, int64_t batch, int64_t heads, int64_t kv_heads, int64_t seq,
                                    int64_t head_dim, const int64_t *strides, const int32_t *kv_lo,
                                    const int32_t *kv_hi, float scale, float softcap) {
    return guarded(__func__, [&] {
        Problem p{batch, heads, kv_heads, seq, head_dim, kv_lo, kv_hi, scale, softcap};
        validate(p, strides, 4);
        forward_bf16(q, k, v, out, lse, p, strides);
    });
}

int32_t jbnb_attention_bwd_cpu_bf16(const sftn_bf16 *q, const sftn_bf16 *k, const sftn_bf16 *v,
                                    const sftn_bf16 *out, const sftn_bf16 *dout, const float *lse, sftn_bf16 *dq,
                                    sftn_bf16 *dk, sftn_bf16 *dv, int64_t batch, int64_t heads, int64_t kv_heads,
                                    int64_t seq, int64_t head_dim, const int64_t *strides, const int32_t *kv_lo,
                                    const int32_t *kv_hi, float scale, float softcap) {
    return guarded(__func__, [&] {
        Problem p{batch, heads, kv_heads, seq, head_dim, kv_lo, kv_hi, scale, softcap};
        validate(p, strides, 8);
        backward_bf16(q, k, v, out, dout, lse, dq, dk, dv, p, strides);
    });
}

} // extern "C"
