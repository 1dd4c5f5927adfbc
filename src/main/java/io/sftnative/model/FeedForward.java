package io.sftnative.model;

import org.bytedeco.pytorch.Tensor;

/**
 * The MLP slot of a decoder layer, the one place a layer calls its feed-forward block: the dense gated MLP
 * ({@link GatedMlp}) by default; a mixture-of-experts block plugs in here ({@link DecoderModel#setFeedForward}).
 * Its linear projections live in the model's replaceable {@link LinearLayer} slots (LoRA and QLoRA reach them there).
 */
@FunctionalInterface
public interface FeedForward {
    /** (B, T, H) the post-norm hidden states -> (B, T, H) the block's output (before any post-norm/residual). */
    Tensor forward(Tensor x);
}
