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
     * {@code q} (B, nH, T, D), {@code k}/{@code v} (B, nKV, S, D) -> (B, nH, T, D); {@code gqa} when nKV < nH.
     */
    static Tensor attention(Tensor q, Tensor k, Tensor v, AttentionContext ctx, double scale, boolean gqa) {
        if (ctx.ranges() != null) {
            if (FlashAttention.supports(q, k, v)) {
                return FlashAttention.attention(q, k, v, ctx.ranges(), scale, 0.0);
            }
            // e.g. bf16 tensors under autocast: SDPA, causal or with the ranges as a mask
            Tensor mask = ctx.ranges().isCausal() ? null : ctx.ranges().mask(q.size(0), q.size(2), q.device());
            ctx = new AttentionContext(ctx.cos(), ctx.sinSigned(), mask, ctx.cache(), ctx.queryLength(), null);
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
