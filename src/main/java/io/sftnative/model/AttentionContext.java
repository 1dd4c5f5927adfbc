package io.sftnative.model;

import org.bytedeco.pytorch.Tensor;

/**
 * What every layer's attention needs for one batch, built once per batch by {@link DecoderModel}'s
 * {@code *Context} methods (inside the step's {@code PointerScope}, which frees it).
 *
 * @param cos        (B, T, 1, D) rotary cosines in the compute dtype
 * @param sinSigned  (B, T, 1, D) rotary sines with rotate_half's sign folded in
 * @param mask       (B, 1, T, S) bool, true = may attend; null for plain causal attention
 * @param cache      key/value cache for incremental decoding, or null (training)
 * @param queryLength T
 * @param ranges     key ranges when our attention kernel runs ({@link FlashAttention}; then mask is null), else null
 */
public record AttentionContext(Tensor cos, Tensor sinSigned, Tensor mask, KvCache cache, long queryLength,
        KeyRanges ranges) {
    /** Whether attention uses the causal fast path (no explicit mask). */
    public boolean isCausal() {
        return mask == null && ranges == null;
    }
}
