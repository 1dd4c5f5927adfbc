package io.sftnative.model;

import org.bytedeco.pytorch.Tensor;

/**
 * Builds the slot of a linear module from its dense weight while a checkpoint is read, e.g. a quantized layer, so
 * the dense weights of the whole model never exist at once ({@link DecoderModel#load(java.nio.file.Path,
 * org.bytedeco.pytorch.global.torch.ScalarType, LinearFactory)}).
 */
@FunctionalInterface
public interface LinearFactory {
    /**
     * @param module HF module path, e.g. {@code model.layers.0.mlp.down_proj} (never a tied {@code lm_head})
     * @param weight (out, in) in the model dtype; freed after this call unless null is returned
     * @param bias   (out) the model's parameter (borrowed), or null
     * @return the layer for the slot (the model adopts it if it is AutoCloseable), or null to keep the dense weight
     */
    LinearLayer create(String module, Tensor weight, Tensor bias);
}
