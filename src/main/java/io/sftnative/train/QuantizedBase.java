package io.sftnative.train;

import java.util.List;

import io.sftnative.config.ConfigException;
import io.sftnative.config.ModelArgs;
import io.sftnative.lora.AdapterChain;
import io.sftnative.quant.QuantizationSpec;

/**
 * LLaMA-Factory's rules for a quantized base model (QLoRA): {@code quantization_bit} (or a bitsandbytes
 * pre-quantized {@code model_name_or_path}) only with {@code finetuning_type: lora}, and at most one adapter on top,
 * since adapters cannot be merged into quantized weights.
 */
final class QuantizedBase {
    private QuantizedBase() {}

    /**
     * The quantization the config asks for, or null ({@code quantization_bit} absent). Fails for a quantized base
     * (asked for, or {@code preQuantized}) with a finetuning type other than lora, and for bad quantization keys.
     */
    static QuantizationSpec spec(ModelArgs m, boolean preQuantized, String finetuningType) {
        if (m.quantizationBit() == 0 && !preQuantized) {
            return null;
        }
        if (!finetuningType.equals("lora")) {
            throw new ConfigException((preQuantized ? "model_name_or_path " + m.modelNameOrPath() + " is quantized"
                    : "quantization_bit: " + m.quantizationBit() + " is set") + " but finetuning_type is "
                    + finetuningType + ": quantized weights cannot be trained, so quantization is only compatible with"
                    + " finetuning_type: lora (QLoRA), as in LLaMA-Factory");
        }
        try {
            return QuantizationSpec.of(m.quantizationBit(), m.quantizationType(), m.doubleQuantization(),
                    m.quantizationBlocksize());
        } catch (IllegalArgumentException e) {
            throw new ConfigException(e.getMessage(), e);
        }
    }

    /** At most one adapter, never merged: quantized weights cannot absorb adapters. */
    static void checkAdapters(ModelArgs m, boolean createNewAdapter) {
        List<?> chain = AdapterChain.parse(m.adapterNameOrPath());
        if (chain.size() > 1 || (createNewAdapter && !chain.isEmpty())) {
            throw new ConfigException("a quantized base model takes a single adapter in adapter_name_or_path, which"
                    + " is not merged (adapters cannot be merged into quantized weights); got " + chain.size()
                    + (createNewAdapter ? " with create_new_adapter" : "") + ". Merge them into the full-precision"
                    + " base first (export without quantization_bit) and use the export as model_name_or_path");
        }
    }
}
