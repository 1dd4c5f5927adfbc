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

    /**
     * When {@link #completeFrom}{@code (x, y)} is exactly {@code y + scaling · (x Aᵀ) Bᵀ} for this input (plain LoRA:
     * no dropout active, no DoRA, x, A and B in one dtype), that branch, so that {@link Projections} can run the
     * down-projections of siblings sharing x as one GEMM and add each up-projection into its base output in the same
     * GEMM ({@code addmm}); null otherwise.
     */
    default LowRank lowRank(Tensor x) {
        return null;
    }

    /**
     * A low-rank branch.
     *
     * @param a       (r, in) down-projection (PEFT's lora_A)
     * @param b       (out, r) up-projection (lora_B)
     * @param scaling the branch's factor (alpha / r, or alpha / sqrt(r) with rsLoRA)
     */
    record LowRank(Tensor a, Tensor b, double scaling) {}
}
