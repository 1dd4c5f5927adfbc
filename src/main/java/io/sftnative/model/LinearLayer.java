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
}
