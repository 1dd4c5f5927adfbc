/*
 * sftnative_bnb.h — the one C ABI of libsftnative (CPU) and libsftnative_cuda (CPU + CUDA).
 *
 * Two groups of symbols:
 *   1. bitsandbytes drop-ins: the exact names and signatures of libbitsandbytes' blockwise quantize/dequantize
 *      (spec §1.3, §1.4) and 8-bit blockwise Adam (CUDA), so the Java bindings can call either library through the
 *      same descriptors.
 *      They return void like bitsandbytes; unlike bitsandbytes they never call exit(): on bad arguments they
 *      do nothing, print one line to stderr and record the message for jbnb_last_error().
 *   2. Our extensions, all prefixed jbnb_: they return a jbnb_status (0 = OK) and never throw or exit.
 *
 * Conventions (spec §1.2): CUDA entry points take device pointers, *_cpu_* and jbnb_*_cpu_* take host pointers.
 * 16-bit floats are passed as their bit patterns (uint16_t), which is layout-identical to CUDA's half /
 * __nv_bfloat16 and to bitsandbytes' fp16_t / bf16_t. Streams are cudaStream_t passed as void* (NULL = the legacy
 * default stream). Element counts: int for the bitsandbytes CUDA names (n < 2^31), long long / int64_t elsewhere.
 * 4-bit packing: byte i holds element 2i in the high nibble and element 2i+1 in the low nibble; for odd n the
 * last low nibble is the code of 0.0 (NF4 0x7, FP4 0x0). absmax has ceil(n / blocksize) fp32 entries.
 *
 * The Java bindings (bindings/src/main/java/io/sftnative/bindings/BnbAbi.java) mirror every declaration below;
 * a test parses this file and fails if the two drift apart. Keep one declaration per line.
 */
#ifndef SFTNATIVE_BNB_H
#define SFTNATIVE_BNB_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define SFTN_API __declspec(dllexport)
#else
#define SFTN_API __attribute__((visibility("default")))
#endif

typedef uint16_t sftn_fp16; /* IEEE binary16 bits (CUDA half, bnb fp16_t) */
typedef uint16_t sftn_bf16; /* bfloat16 bits (CUDA __nv_bfloat16, bnb bf16_t) */
typedef void *sftn_stream;  /* cudaStream_t; NULL = legacy default stream */

/* ---------------------------------------------------------------------------------------------------------
 * 1a. bitsandbytes drop-ins, CPU (spec §1.4). Present in both libraries.
 * ------------------------------------------------------------------------------------------------------- */

/* 8-bit blockwise with a 256-entry sorted codebook; nearest code by bitsandbytes' CUDA binary search (§2.5.3). */
SFTN_API void cquantize_blockwise_cpu_fp32(float *code, float *A, float *absmax, unsigned char *out, long long blocksize, long long n);
SFTN_API void cquantize_blockwise_cpu_bf16(float *code, sftn_bf16 *A, float *absmax, unsigned char *out, long long blocksize, long long n);
SFTN_API void cquantize_blockwise_cpu_fp16(float *code, sftn_fp16 *A, float *absmax, unsigned char *out, long long blocksize, long long n);
SFTN_API void cdequantize_blockwise_cpu_fp32(float *code, unsigned char *A, const float *absmax, float *out, long long blocksize, long long n);
SFTN_API void cdequantize_blockwise_cpu_bf16(float *code, unsigned char *A, const float *absmax, sftn_bf16 *out, long long blocksize, long long n);
SFTN_API void cdequantize_blockwise_cpu_fp16(float *code, unsigned char *A, const float *absmax, sftn_fp16 *out, long long blocksize, long long n);
/* 4-bit dequantize; m x n is the logical output shape, treated as m*n flat elements (always correct, §1.4). */
SFTN_API void cdequantize_blockwise_cpu_nf4_fp32(unsigned char *A, const float *absmax, float *out, long long blocksize, long long m, long long n);
SFTN_API void cdequantize_blockwise_cpu_nf4_bf16(unsigned char *A, const float *absmax, sftn_bf16 *out, long long blocksize, long long m, long long n);
SFTN_API void cdequantize_blockwise_cpu_nf4_fp16(unsigned char *A, const float *absmax, sftn_fp16 *out, long long blocksize, long long m, long long n);
SFTN_API void cdequantize_blockwise_cpu_fp4_fp32(unsigned char *A, const float *absmax, float *out, long long blocksize, long long m, long long n);
SFTN_API void cdequantize_blockwise_cpu_fp4_bf16(unsigned char *A, const float *absmax, sftn_bf16 *out, long long blocksize, long long m, long long n);
SFTN_API void cdequantize_blockwise_cpu_fp4_fp16(unsigned char *A, const float *absmax, sftn_fp16 *out, long long blocksize, long long m, long long n);

/* ---------------------------------------------------------------------------------------------------------
 * 1b. bitsandbytes drop-ins, CUDA (spec §1.3). Only in libsftnative_cuda; device pointers; quantize runs on the
 *     legacy default stream (no stream argument, as in bitsandbytes). blocksize: 4-bit 32..4096, 8-bit 64..4096.
 * ------------------------------------------------------------------------------------------------------- */
SFTN_API void cquantize_blockwise_fp32(float *code, float *A, float *absmax, unsigned char *out, int blocksize, int n);
SFTN_API void cquantize_blockwise_fp16(float *code, sftn_fp16 *A, float *absmax, unsigned char *out, int blocksize, int n);
SFTN_API void cquantize_blockwise_bf16(float *code, sftn_bf16 *A, float *absmax, unsigned char *out, int blocksize, int n);
SFTN_API void cquantize_blockwise_fp32_nf4(float *code, float *A, float *absmax, unsigned char *out, int blocksize, int n);
SFTN_API void cquantize_blockwise_fp16_nf4(float *code, sftn_fp16 *A, float *absmax, unsigned char *out, int blocksize, int n);
SFTN_API void cquantize_blockwise_bf16_nf4(float *code, sftn_bf16 *A, float *absmax, unsigned char *out, int blocksize, int n);
SFTN_API void cquantize_blockwise_fp32_fp4(float *code, float *A, float *absmax, unsigned char *out, int blocksize, int n);
SFTN_API void cquantize_blockwise_fp16_fp4(float *code, sftn_fp16 *A, float *absmax, unsigned char *out, int blocksize, int n);
SFTN_API void cquantize_blockwise_bf16_fp4(float *code, sftn_bf16 *A, float *absmax, unsigned char *out, int blocksize, int n);
SFTN_API void cdequantize_blockwise_fp32(float *code, unsigned char *A, float *absmax, float *out, int blocksize, int n, sftn_stream stream);
SFTN_API void cdequantize_blockwise_fp16(float *code, unsigned char *A, float *absmax, sftn_fp16 *out, int blocksize, int n, sftn_stream stream);
SFTN_API void cdequantize_blockwise_bf16(float *code, unsigned char *A, float *absmax, sftn_bf16 *out, int blocksize, int n, sftn_stream stream);
SFTN_API void cdequantize_blockwise_fp32_nf4(float *code, unsigned char *A, float *absmax, float *out, int blocksize, int n, sftn_stream stream);
SFTN_API void cdequantize_blockwise_fp16_nf4(float *code, unsigned char *A, float *absmax, sftn_fp16 *out, int blocksize, int n, sftn_stream stream);
SFTN_API void cdequantize_blockwise_bf16_nf4(float *code, unsigned char *A, float *absmax, sftn_bf16 *out, int blocksize, int n, sftn_stream stream);
SFTN_API void cdequantize_blockwise_fp32_fp4(float *code, unsigned char *A, float *absmax, float *out, int blocksize, int n, sftn_stream stream);
SFTN_API void cdequantize_blockwise_fp16_fp4(float *code, unsigned char *A, float *absmax, sftn_fp16 *out, int blocksize, int n, sftn_stream stream);
SFTN_API void cdequantize_blockwise_bf16_fp4(float *code, unsigned char *A, float *absmax, sftn_bf16 *out, int blocksize, int n, sftn_stream stream);

/* bitsandbytes' 8-bit blockwise Adam/AdamW step (bnb.optim.AdamW8bit: kOptimizerStatic8bit2StateBlockwise, block 256)
 * on device memory, legacy default stream. The update and bits of jbnb_adam_8bit_blockwise_cpu_* (section 2), which
 * describes it; beta3, alpha, skip_zeros unused as in bitsandbytes' Adam. */
SFTN_API void cadam_8bit_blockwise_grad_fp32(float *p, float *g, unsigned char *state1, unsigned char *state2, float beta1, float beta2, float beta3, float alpha, float eps, int step, float lr, float *quantiles1, float *quantiles2, float *absmax1, float *absmax2, float weight_decay, const float gnorm_scale, bool skip_zeros, int n);
SFTN_API void cadam_8bit_blockwise_grad_fp16(sftn_fp16 *p, sftn_fp16 *g, unsigned char *state1, unsigned char *state2, float beta1, float beta2, float beta3, float alpha, float eps, int step, float lr, float *quantiles1, float *quantiles2, float *absmax1, float *absmax2, float weight_decay, const float gnorm_scale, bool skip_zeros, int n);
SFTN_API void cadam_8bit_blockwise_grad_bf16(sftn_bf16 *p, sftn_bf16 *g, unsigned char *state1, unsigned char *state2, float beta1, float beta2, float beta3, float alpha, float eps, int step, float lr, float *quantiles1, float *quantiles2, float *absmax1, float *absmax2, float weight_decay, const float gnorm_scale, bool skip_zeros, int n);

/* ---------------------------------------------------------------------------------------------------------
 * 2. Extensions (jbnb_ prefix). Every function returns a jbnb_status; on failure jbnb_last_error() describes it.
 * ------------------------------------------------------------------------------------------------------- */
#define JBNB_ABI_VERSION 1

enum jbnb_status {
    JBNB_OK = 0,
    JBNB_EINVAL = 1,      /* bad argument (null pointer, size, blocksize, label out of range, ...) */
    JBNB_ENOMEM = 2,      /* host allocation failed */
    JBNB_ECUDA = 3,       /* a CUDA runtime call or kernel launch failed */
    JBNB_EUNSUPPORTED = 4, /* not built into this library (e.g. CUDA in the CPU library) or ISA not available */
    JBNB_EINTERNAL = 5    /* any other C++ exception caught at the boundary */
};

enum jbnb_quant_type { JBNB_FP4 = 1, JBNB_NF4 = 2 }; /* the numbering of bitsandbytes' cgemm_4bit quant_type */

enum jbnb_isa { JBNB_ISA_SCALAR = 0, JBNB_ISA_AVX2 = 1, JBNB_ISA_AVX512 = 2 };

/* Library facts and settings. */
SFTN_API int32_t jbnb_abi_version(void);
SFTN_API const char *jbnb_last_error(void); /* message of the last failed call on this thread; "" if none */
SFTN_API int32_t jbnb_has_cuda(void);       /* 1 when the CUDA kernels are compiled in */
SFTN_API int32_t jbnb_cpu_isa(void);        /* the jbnb_isa the CPU kernels dispatch to */
SFTN_API int32_t jbnb_set_cpu_isa(int32_t isa); /* force a lower ISA (tests, benchmarks); EUNSUPPORTED if absent */
SFTN_API int32_t jbnb_set_num_threads(int32_t threads); /* CPU kernel threads; 0 = all hardware threads */
SFTN_API int32_t jbnb_num_threads(void);

/* Codebooks (fp32, code order): NF4 (16), FP4 (16), bitsandbytes' signed dynamic 8-bit map (256, §2.3) and its
 * unsigned variant create_dynamic_map(signed=False) (256; the map of Adam's second state). */
SFTN_API int32_t jbnb_codebook(int32_t which, float *out); /* which: JBNB_FP4, JBNB_NF4, 8 dynamic map, 9 unsigned dynamic map */

/* 4-bit blockwise, CPU (bitsandbytes has no CPU 4-bit quantize). out: ceil(n/2) bytes, absmax: ceil(n/blocksize). */
SFTN_API int32_t jbnb_quantize_4bit_cpu_fp32(const float *A, float *absmax, uint8_t *out, int64_t blocksize, int64_t n, int32_t quant_type);
SFTN_API int32_t jbnb_quantize_4bit_cpu_bf16(const sftn_bf16 *A, float *absmax, uint8_t *out, int64_t blocksize, int64_t n, int32_t quant_type);
SFTN_API int32_t jbnb_quantize_4bit_cpu_fp16(const sftn_fp16 *A, float *absmax, uint8_t *out, int64_t blocksize, int64_t n, int32_t quant_type);
SFTN_API int32_t jbnb_dequantize_4bit_cpu_fp32(const uint8_t *A, const float *absmax, float *out, int64_t blocksize, int64_t n, int32_t quant_type);
SFTN_API int32_t jbnb_dequantize_4bit_cpu_bf16(const uint8_t *A, const float *absmax, sftn_bf16 *out, int64_t blocksize, int64_t n, int32_t quant_type);
SFTN_API int32_t jbnb_dequantize_4bit_cpu_fp16(const uint8_t *A, const float *absmax, sftn_fp16 *out, int64_t blocksize, int64_t n, int32_t quant_type);

/* 8-bit blockwise with a sorted 256-entry code, CPU. */
SFTN_API int32_t jbnb_quantize_8bit_cpu_fp32(const float *code, const float *A, float *absmax, uint8_t *out, int64_t blocksize, int64_t n);
SFTN_API int32_t jbnb_quantize_8bit_cpu_bf16(const float *code, const sftn_bf16 *A, float *absmax, uint8_t *out, int64_t blocksize, int64_t n);
SFTN_API int32_t jbnb_quantize_8bit_cpu_fp16(const float *code, const sftn_fp16 *A, float *absmax, uint8_t *out, int64_t blocksize, int64_t n);
SFTN_API int32_t jbnb_dequantize_8bit_cpu_fp32(const float *code, const uint8_t *A, const float *absmax, float *out, int64_t blocksize, int64_t n);
SFTN_API int32_t jbnb_dequantize_8bit_cpu_bf16(const float *code, const uint8_t *A, const float *absmax, sftn_bf16 *out, int64_t blocksize, int64_t n);
SFTN_API int32_t jbnb_dequantize_8bit_cpu_fp16(const float *code, const uint8_t *A, const float *absmax, sftn_fp16 *out, int64_t blocksize, int64_t n);

/* Double quantization of absmax (spec §2.6), CPU: offset = fp32(mean in fp64); qabsmax = code8((absmax - offset)
 * / absmax2) per group of nested_blocksize. qabsmax: nblocks bytes; absmax2: ceil(nblocks/nested_blocksize). */
SFTN_API int32_t jbnb_double_quant_cpu(const float *absmax, int64_t nblocks, const float *code, int64_t nested_blocksize, uint8_t *qabsmax, float *absmax2, float *offset);
/* Inverse: absmax[i] = fp32(fp32(code[qabsmax[i]] * absmax2[i / nested_blocksize]) + offset). */
SFTN_API int32_t jbnb_dequant_absmax_cpu(const uint8_t *qabsmax, const float *absmax2, const float *code, float offset, int64_t nested_blocksize, int64_t nblocks, float *absmax);

/* Fused cross-entropy for one chunk of logits rows (spec §4.3, §4.6), CPU. logits (rows, vocab) row-major is
 * overwritten IN PLACE with d(loss)/d(logits) = (softmax(z) - onehot(target)) * grad_scale (0 for ignored rows).
 * Targets: shift = 0: target(r) = labels[row0 + r]; shift = 1 (causal-LM label shift): labels holds the unshifted
 * (B, seq_len) labels and target(r) = labels[g + 1] with g = row0 + r, or ignore_index when g is the last position
 * of its sequence (g % seq_len == seq_len - 1). total_rows = length of labels (B * seq_len when shifted).
 * Outputs (nullable): row_loss[r] = logsumexp(z_r) - z_r[target] (0 when ignored), row_lse[r] = logsumexp(z_r),
 * loss_sum += sum of row_loss in fp64, valid_count += number of non-ignored rows. All arithmetic in fp32 with fp64
 * loss accumulation; labels outside [0, vocab) other than ignore_index are rejected before anything is written. */
SFTN_API int32_t jbnb_ce_chunk_cpu_fp32(float *logits, int64_t rows, int64_t vocab, const int64_t *labels, int64_t total_rows, int64_t row0, int64_t seq_len, int32_t shift, int64_t ignore_index, float grad_scale, float *row_loss, float *row_lse, double *loss_sum, int64_t *valid_count);
SFTN_API int32_t jbnb_ce_chunk_cpu_bf16(sftn_bf16 *logits, int64_t rows, int64_t vocab, const int64_t *labels, int64_t total_rows, int64_t row0, int64_t seq_len, int32_t shift, int64_t ignore_index, float grad_scale, float *row_loss, float *row_lse, double *loss_sum, int64_t *valid_count);
SFTN_API int32_t jbnb_ce_chunk_cpu_fp16(sftn_fp16 *logits, int64_t rows, int64_t vocab, const int64_t *labels, int64_t total_rows, int64_t row0, int64_t seq_len, int32_t shift, int64_t ignore_index, float grad_scale, float *row_loss, float *row_lse, double *loss_sum, int64_t *valid_count);

/* Fused AdamW step on host memory (torch.optim.AdamW, single-tensor semantics, fp32): for each i
 *   p *= 1 - lr*weight_decay (skipped when weight_decay == 0); m = lerp(m, g, 1 - beta1);
 *   v = v*beta2 + (1 - beta2)*g*g; p += -lr/(1 - beta1^step) * m / (sqrt(v)/sqrt(1 - beta2^step) + eps)
 * with the scalars computed in double and rounded to fp32, every operation in fp32 without FMA contraction.
 * step is the parameter's step count including this update (>= 1). param, exp_avg, exp_avg_sq updated in place. */
SFTN_API int32_t jbnb_adamw_cpu_fp32(float *param, const float *grad, float *exp_avg, float *exp_avg_sq, int64_t n, double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step);

/* bitsandbytes' 8-bit blockwise Adam/AdamW step on host memory (bnb.optim.AdamW8bit; the argument order of
 * bitsandbytes' cadam_8bit_blockwise_grad_{fp32,bf16,fp16}, host pointers, int64 n, int32 skip_zeros).
 * The update of bitsandbytes' CUDA kernel kOptimizerStatic8bit2StateBlockwise, block size 256, op by op in IEEE fp32
 * (no FMA): per block b, m = quantiles1[state1] * absmax1[b], v = quantiles2[state2] * absmax2[b];
 * g *= gnorm_scale; v = v*beta2 + ((1-beta2)*g)*g; m = m*beta1 + (1-beta1)*g (NaN/inf g: m = v = 0, p untouched);
 * absmax1[b], absmax2[b] = max |m|, max |v| over the block (a partial last block's padding counts with g = 0,
 * state1 128, state2 0); p += (-lr*c2/c1) * m / (sqrt(v) + c2*eps) with c1 = 1 - beta1^step, c2 = sqrt(1 - beta2^step);
 * then p *= 1 - lr*weight_decay when weight_decay > 0; state codes re-found by bitsandbytes' binary search of m/absmax1
 * (signed map) and v/absmax2 (unsigned map), state1 moved one code when its sign differs from m's. Initial state:
 * codes 0 and absmax 0 (bitsandbytes' zeros). step counts this update (>= 1). beta3, alpha, skip_zeros: unused. */
SFTN_API int32_t jbnb_adam_8bit_blockwise_cpu_fp32(float *p, const float *g, uint8_t *state1, uint8_t *state2, float beta1, float beta2, float beta3, float alpha, float eps, int32_t step, float lr, const float *quantiles1, const float *quantiles2, float *absmax1, float *absmax2, float weight_decay, float gnorm_scale, int32_t skip_zeros, int64_t n);
SFTN_API int32_t jbnb_adam_8bit_blockwise_cpu_bf16(sftn_bf16 *p, const sftn_bf16 *g, uint8_t *state1, uint8_t *state2, float beta1, float beta2, float beta3, float alpha, float eps, int32_t step, float lr, const float *quantiles1, const float *quantiles2, float *absmax1, float *absmax2, float weight_decay, float gnorm_scale, int32_t skip_zeros, int64_t n);
SFTN_API int32_t jbnb_adam_8bit_blockwise_cpu_fp16(sftn_fp16 *p, const sftn_fp16 *g, uint8_t *state1, uint8_t *state2, float beta1, float beta2, float beta3, float alpha, float eps, int32_t step, float lr, const float *quantiles1, const float *quantiles2, float *absmax1, float *absmax2, float weight_decay, float gnorm_scale, int32_t skip_zeros, int64_t n);
/* bitsandbytes' 32-bit Adam step (kOptimizer32bit2State; argument order of cadam32bit_grad_*), which bnb uses for
 * tensors below min_8bit_size: g *= gnorm_scale; m = m*beta1 + (1-beta1)*g; v = v*beta2 + (1-beta2)*(g*g);
 * p += (-lr*c2/c1) * m / (sqrt(v) + eps*c2); p *= 1 - lr*weight_decay when weight_decay > 0; skip_zeros: elements with
 * g == 0 are left alone. max_unorm > 0 is EUNSUPPORTED (unorm, param_norm, beta3, alpha unused). */
SFTN_API int32_t jbnb_adam_32bit_cpu_fp32(const float *g, float *p, float *state1, float *state2, float *unorm, float max_unorm, float param_norm, float beta1, float beta2, float beta3, float alpha, float eps, float weight_decay, int32_t step, float lr, float gnorm_scale, int32_t skip_zeros, int64_t n);
SFTN_API int32_t jbnb_adam_32bit_cpu_bf16(const sftn_bf16 *g, sftn_bf16 *p, float *state1, float *state2, float *unorm, float max_unorm, float param_norm, float beta1, float beta2, float beta3, float alpha, float eps, float weight_decay, int32_t step, float lr, float gnorm_scale, int32_t skip_zeros, int64_t n);
SFTN_API int32_t jbnb_adam_32bit_cpu_fp16(const sftn_fp16 *g, sftn_fp16 *p, float *state1, float *state2, float *unorm, float max_unorm, float param_norm, float beta1, float beta2, float beta3, float alpha, float eps, float weight_decay, int32_t step, float lr, float gnorm_scale, int32_t skip_zeros, int64_t n);

/* Attention (flash-attention style), CPU, fp32. Shapes: q (B, H, T, D), k and v (B, KVH, T, D) with H a multiple of
 * KVH (GQA: query head h reads kv head h / (H / KVH), nothing is repeated), out and dout like q, lse (B, H, T)
 * contiguous. Every (B, head, T, D) tensor has unit stride along D and is described by three element strides
 * (batch, head, position) in `strides`: forward q, k, v, out (12 values); backward q, k, v, out, dout, dq, dk, dv (24).
 * Query t of row b sees key s iff kv_lo[b*T+t] <= s < kv_hi[b*T+t], or s == t (every query sees itself, so no row
 * is empty); kv_lo = kv_hi = NULL means plain causal (kv_lo 0, kv_hi t + 1). Scores are scale * q·k, then
 * softcap * tanh(score / softcap) when softcap > 0 (Gemma 2), then softmax over the visible keys.
 * Forward writes out and lse = logsumexp of each row's visible scores; backward recomputes the probabilities from
 * lse and overwrites dq, dk, dv. Memory: O(B * KVH * T * D) scratch, never (T, T). */
SFTN_API int32_t jbnb_attention_fwd_cpu_fp32(const float *q, const float *k, const float *v, float *out, float *lse, int64_t batch, int64_t heads, int64_t kv_heads, int64_t seq, int64_t head_dim, const int64_t *strides, const int32_t *kv_lo, const int32_t *kv_hi, float scale, float softcap);
SFTN_API int32_t jbnb_attention_bwd_cpu_fp32(const float *q, const float *k, const float *v, const float *out, const float *dout, const float *lse, float *dq, float *dk, float *dv, int64_t batch, int64_t heads, int64_t kv_heads, int64_t seq, int64_t head_dim, const int64_t *strides, const int32_t *kv_lo, const int32_t *kv_hi, float scale, float softcap);
/* The same in bf16 (sftn_bf16 q, k, v, out, dout, dq, dk, dv; lse stays fp32): every operand is widened to fp32
 * (exact), the fp32 kernel above computes, and outputs are rounded to nearest-even bf16. Scratch: fp32 copies of
 * the operands, O(B * H * T * D). */
SFTN_API int32_t jbnb_attention_fwd_cpu_bf16(const sftn_bf16 *q, const sftn_bf16 *k, const sftn_bf16 *v, sftn_bf16 *out, float *lse, int64_t batch, int64_t heads, int64_t kv_heads, int64_t seq, int64_t head_dim, const int64_t *strides, const int32_t *kv_lo, const int32_t *kv_hi, float scale, float softcap);
SFTN_API int32_t jbnb_attention_bwd_cpu_bf16(const sftn_bf16 *q, const sftn_bf16 *k, const sftn_bf16 *v, const sftn_bf16 *out, const sftn_bf16 *dout, const float *lse, sftn_bf16 *dq, sftn_bf16 *dk, sftn_bf16 *dv, int64_t batch, int64_t heads, int64_t kv_heads, int64_t seq, int64_t head_dim, const int64_t *strides, const int32_t *kv_lo, const int32_t *kv_hi, float scale, float softcap);
/* Key ranges (B, T) int32 for the attention above, from the batch layout: causal, then segments (B, T) int64
 * (nullable; packed sequences, each a contiguous run of one non-zero id, 0 = padding that sees only itself), then
 * lengths (B) int64 (nullable; right padding: keys >= lengths[b] are hidden), then window > 0 (sliding window: keys
 * t - window < s <= t). EINVAL when a segment id appears in two separate runs. */
SFTN_API int32_t jbnb_attention_ranges_cpu(int64_t batch, int64_t seq, const int64_t *segments, const int64_t *lengths, int64_t window, int32_t *kv_lo, int32_t *kv_hi);

/* Fused elementwise kernels, CPU, fp32 (fused_cpu.cpp). One pass each instead of libtorch's chain of ops.
 * SwiGLU over `rows` rows of `inter` values, each row contiguous, rows `ld_*` elements apart: forward
 * out = silu(gate) * up; backward dgate = dout * up * s * (1 + gate * (1 - s)) with s = sigmoid(gate), dup =
 * dout * silu(gate). Outputs must not overlap the inputs. */
SFTN_API int32_t jbnb_swiglu_fwd_cpu_fp32(const float *gate, int64_t ld_gate, const float *up, int64_t ld_up, float *out, int64_t ld_out, int64_t rows, int64_t inter);
SFTN_API int32_t jbnb_swiglu_bwd_cpu_fp32(const float *gate, int64_t ld_gate, const float *up, int64_t ld_up, const float *dout, int64_t ld_dout, float *dgate, int64_t ld_dgate, float *dup, int64_t ld_dup, int64_t rows, int64_t inter);
/* Rotary embedding, HF rotate_half layout: x and out (B, T, heads, head_dim), unit stride along head_dim, element
 * strides (batch, position, head) in strides[0..2] for x and strides[3..5] for out; cos and sin (B, T, rot_dims / 2)
 * half-angle tables with unit inner stride and strides (batch, position) in strides[6..7] (0 broadcasts). For
 * i < h = rot_dims / 2: out[i] = x[i] cos[i] - x[i+h] sin[i], out[i+h] = x[i+h] cos[i] + x[i] sin[i]; dims from
 * rot_dims on are copied (partial rotary). backward != 0 applies the transposed rotation (sin negated): dx from
 * dout. out may be x itself (in place); otherwise they must not overlap. */
SFTN_API int32_t jbnb_rope_cpu_fp32(const float *x, float *out, const float *cos, const float *sin, const int64_t *strides, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, int64_t rot_dims, int32_t backward);

/* CUDA variants (libsftnative_cuda only; JBNB_EUNSUPPORTED in the CPU library). Device pointers; asynchronous on
 * `stream` except that argument errors are reported synchronously and launch errors via cudaGetLastError. */
SFTN_API int32_t jbnb_cuda_device_count(int32_t *count);
SFTN_API int32_t jbnb_cuda_synchronize(void);
SFTN_API int32_t jbnb_quantize_4bit_cuda_fp32(const float *A, float *absmax, uint8_t *out, int64_t blocksize, int64_t n, int32_t quant_type, sftn_stream stream);
SFTN_API int32_t jbnb_quantize_4bit_cuda_bf16(const sftn_bf16 *A, float *absmax, uint8_t *out, int64_t blocksize, int64_t n, int32_t quant_type, sftn_stream stream);
SFTN_API int32_t jbnb_quantize_4bit_cuda_fp16(const sftn_fp16 *A, float *absmax, uint8_t *out, int64_t blocksize, int64_t n, int32_t quant_type, sftn_stream stream);
SFTN_API int32_t jbnb_dequantize_4bit_cuda_fp32(const uint8_t *A, const float *absmax, float *out, int64_t blocksize, int64_t n, int32_t quant_type, sftn_stream stream);
SFTN_API int32_t jbnb_dequantize_4bit_cuda_bf16(const uint8_t *A, const float *absmax, sftn_bf16 *out, int64_t blocksize, int64_t n, int32_t quant_type, sftn_stream stream);
SFTN_API int32_t jbnb_dequantize_4bit_cuda_fp16(const uint8_t *A, const float *absmax, sftn_fp16 *out, int64_t blocksize, int64_t n, int32_t quant_type, sftn_stream stream);
SFTN_API int32_t jbnb_quantize_8bit_cuda_fp32(const float *code, const float *A, float *absmax, uint8_t *out, int64_t blocksize, int64_t n, sftn_stream stream);
SFTN_API int32_t jbnb_dequantize_8bit_cuda_fp32(const float *code, const uint8_t *A, const float *absmax, float *out, int64_t blocksize, int64_t n, sftn_stream stream);
SFTN_API int32_t jbnb_ce_chunk_cuda_fp32(float *logits, int64_t rows, int64_t vocab, const int64_t *labels, int64_t total_rows, int64_t row0, int64_t seq_len, int32_t shift, int64_t ignore_index, float grad_scale, float *row_loss, float *row_lse, sftn_stream stream);
SFTN_API int32_t jbnb_ce_chunk_cuda_bf16(sftn_bf16 *logits, int64_t rows, int64_t vocab, const int64_t *labels, int64_t total_rows, int64_t row0, int64_t seq_len, int32_t shift, int64_t ignore_index, float grad_scale, float *row_loss, float *row_lse, sftn_stream stream);

#ifdef __cplusplus
}
#endif

#endif /* SFTNATIVE_BNB_H */
