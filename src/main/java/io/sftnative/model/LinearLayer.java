package io.sftnative.model;

import org.bytedeco.pytorch.Tensor;

/**
 * One linear projection of the decoder (q/k/v/o, gate/up/down, lm_head), held in a replaceable slot of
 * {@link DecoderModel} addressed by its HF module path (e.g. {@code model.layers.0.self_attn.q_proj}).
 * LoRA wraps the dense layer it finds there; QLoRA replaces it with a quantized one.
 *
 * <p>Ownership: a layer does not own the model's parameters; a replacement owns whatever it allocated itself.
 */
public interface LinearLayer {
    /** {@code (..., in) -> (..., out)}. */
    Tensor forward(Tensor x);

    long inFeatures();

    long outFeatures();

    /**
     * The dense layer whose output this layer's forward starts from, for {@link Projections} to fuse with its
     * siblings (q/k/v, gate/up) into one GEMM; null when there is none (e.g. a quantized weight).
     */
    default DenseLinear fusableBase() {
        return this instanceof DenseLinear d ? d : null;
    }

    /**
     * The rest of {@link #forward} given {@code baseOut = fusableBase().forward(x)}: identity for a dense layer, the
     * adapter's contribution for LoRA. {@code forward(x)} must equal {@code completeFrom(x, fusableBase().forward(x))}.
     */
    default Tensor completeFrom(Tensor x, Tensor baseOut) {
        return baseOut;
    }
}
