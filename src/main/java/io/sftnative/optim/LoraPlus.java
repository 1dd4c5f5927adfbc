package io.sftnative.optim;

import java.util.LinkedHashMap;
import java.util.Map;

import org.bytedeco.pytorch.Tensor;

/**
 * LoRA+ ({@code loraplus_lr_ratio}) as LLaMA-Factory groups the trainable parameters: {@code lora_B} matrices and
 * 1-d parameters train with {@code learning_rate * ratio}, trained embedding matrices with
 * {@code loraplus_lr_embedding}, everything else ({@code lora_A}, other matrices) with {@code learning_rate}. Weight
 * decay stays per HF's groups. The result feeds {@link Optimizer#lrScales}.
 */
public final class LoraPlus {
    private LoraPlus() {}

    /** Learning-rate factors by parameter name (relative to {@code learningRate}). */
    public static Map<String, Double> scales(Map<String, Tensor> trainable, double ratio, double embeddingLr,
            double learningRate) {
        Map<String, Double> out = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : trainable.entrySet()) {
            String name = e.getKey();
            if (name.endsWith("embed_tokens.weight")) { // an nn.Embedding in PEFT's model
                out.put(name, learningRate > 0 ? embeddingLr / learningRate : 0.0);
            } else if (name.contains("lora_B") || e.getValue().dim() == 1) {
                out.put(name, ratio);
            }
        }
        return out;
    }
}
