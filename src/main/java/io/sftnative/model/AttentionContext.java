package io.sftnative.model;

import org.bytedeco.pytorch.Tensor;

/**
 * What every layer's attention needs for one batch, built once per batch by {@link DecoderModel}'s
 * {@code *Context} methods (inside the step's {@code PointerScope}, which frees it).
 *
 * @param cos        (B, T, 1, R) rotary cosines in the compute dtype (R: rotary dims per head)
 * @param sinSigned  (B, T, 1, R) rotary sines with rotate_half's sign folded in
 * @param mask       (B, 1, T, S) bool, true = may attend; null for plain causal attention or when {@code ranges} hold
 *                   the visibility
 * @param cache      key/value cache for incremental decoding, or null (training)
 * @param queryLength T
 * @param ranges     key ranges when our attention kernel runs ({@link FlashAttention}; then mask is null), else null
 * @param sliding    the context of the model's sliding-window layers when they differ from the others (their window
 *                   in the mask or ranges; gemma3: their own rotary tables), or null when every layer uses this one
 */
public record AttentionContext(Tensor cos, Tensor sinSigned, Tensor mask, KvCache cache, long queryLength,
        KeyRanges ranges, AttentionContext sliding) {
    public AttentionContext(Tensor cos, Tensor sinSigned, Tensor mask, KvCache cache, long queryLength) {
        this(cos, sinSigned, mask, cache, queryLength, null, null);
    }

    /** Whether attention uses the causal fast path (no explicit mask, no key ranges). */
    public boolean isCausal() {
        return mask == null && ranges == null;
    }

    /** The context of a layer: {@link #sliding} for a sliding-window layer when there is one. */
    public AttentionContext forLayer(boolean slidingLayer) {
        return slidingLayer && sliding != null ? sliding : this;
    }

    /** This layer's context with the visibility as {@code mask} (null = causal) instead of key ranges. */
    AttentionContext withMask(Tensor mask) {
        return new AttentionContext(cos, sinSigned, mask, cache, queryLength, null, sliding);
    }
}
