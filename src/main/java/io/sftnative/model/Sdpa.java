package io.sftnative.model;

import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/**
 * Scaled dot-product attention (our {@link FlashAttention} when the context carries key ranges; libtorch's fused CPU
 * kernel, or {@link CausalChunks} for mid-length causal rows),
 * with OpenBLAS single-threaded inside it in the forward and, through tensor hooks, in the backward (see
 * {@link BlasThreads}).
 */
final class Sdpa {
    private Sdpa() {}

    /**
     * As {@link #attention(Tensor, Tensor, Tensor, AttentionContext, double, boolean)}, with the attention logits
     * soft-capped ({@code cap * tanh(s / cap)}, gemma2) when {@code softcap} is non-null. libtorch's fused SDPA has no
     * hook between the scores and the softmax, so capped attention runs eagerly ({@link EagerAttention}).
     */
    static Tensor attention(Tensor q, Tensor k, Tensor v, AttentionContext ctx, double scale, boolean gqa,
            Double softcap) {
        if (softcap == null) {
            return attention(q, k, v, ctx, scale, gqa);
        }
        if (ctx.ranges() != null) {
            if (FlashAttention.supports(q, k, v)) { // our kernel caps the logits itself
                return FlashAttention.attention(q, k, v, ctx.ranges(), scale, softcap);
            }
            ctx = ctx.withMask(rangesAsMask(ctx.ranges(), q));
        }
        return EagerAttention.softcapped(q, k, v, ctx.mask(), scale, softcap);
    }

    /** (B, 1, T, T) visibility of {@code ranges}, or null when they are plain causal; for kernels without ranges. */
    private static Tensor rangesAsMask(KeyRanges ranges, Tensor q) {
        return ranges.isCausal() ? null : ranges.mask(q.size(0), q.size(2), q.device());
    }

    /**
     * {@code q} (B, nH, T, D), {@code k}/{@code v} (B, nKV, S, D) -> (B, nH, T, D); {@code gqa} when nKV < nH.
     */
    static Tensor attention(Tensor q, Tensor k, Tensor v, AttentionContext ctx, double scale, boolean gqa) {
        if (ctx.ranges() != null) {
            if (FlashAttention.supports(q, k, v)) {
                return FlashAttention.attention(q, k, v, ctx.ranges(), scale, 0.0);
            }
            // e.g. bf16 tensors under autocast: SDPA, causal or with the ranges as a mask
            ctx = ctx.withMask(rangesAsMask(ctx.ranges(), q));
        }
        boolean guard = BlasThreads.enabled();
        Tensor out;
        if (guard) {
            BlasThreads.set(1);
        }
        try {
            if (ctx.isCausal() && ctx.cache() == null && CausalChunks.applies(q.size(2))) {
                out = CausalChunks.attention(q, k, v, scale, gqa);
            } else {
                out = torch.scaled_dot_product_attention(q, k, v,
                        ctx.mask() == null ? new TensorOptional() : new TensorOptional(ctx.mask()), 0.0,
                        ctx.isCausal(), new DoubleOptional(scale), gqa);
            }
        } finally {
            if (guard) {
                BlasThreads.restore();
            }
        }
        if (guard && out.requires_grad()) {
            out.register_hook(BlasThreads.SINGLE);
            for (Tensor in : new Tensor[] {q, k, v}) {
                if (in.requires_grad()) {
                    in.register_hook(BlasThreads.RESTORE);
                }
            }
        }
        return out;
    }
}
