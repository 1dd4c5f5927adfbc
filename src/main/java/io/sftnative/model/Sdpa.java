package io.sftnative.model;

import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/**
 * Scaled dot-product attention (libtorch's fused CPU kernel, or {@link CausalChunks} for mid-length causal rows),
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
        if (softcap != null) {
            return EagerAttention.softcapped(q, k, v, ctx.mask(), scale, softcap);
        }
        return attention(q, k, v, ctx, scale, gqa);
    }

    /**
     * {@code q} (B, nH, T, D), {@code k}/{@code v} (B, nKV, S, D) -> (B, nH, T, D); {@code gqa} when nKV < nH.
     */
    static Tensor attention(Tensor q, Tensor k, Tensor v, AttentionContext ctx, double scale, boolean gqa) {
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
