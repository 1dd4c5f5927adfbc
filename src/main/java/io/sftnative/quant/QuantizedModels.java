package io.sftnative.quant;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.DenseLinear;
import io.sftnative.model.LinearLayer;
import io.sftnative.torch.TorchRuntime;

/**
 * QLoRA's base model: every frozen linear projection (q/k/v/o, gate/up/down of every layer) held quantized, the rest
 * as PEFT / LLaMA-Factory / transformers keep it: embeddings, norms and biases dense in the compute dtype, and the LM
 * head unquantized (transformers' {@code get_keys_to_not_convert} skips {@code lm_head}; in tied models it is the
 * embedding).
 *
 * <pre>{@code
 * try (DecoderModel model = QuantizedModels.load(dir, ScalarType.BFloat16, QuantizationSpec.nf4(), log::warn)) {
 *     ... attach LoRA, train ...
 * }
 * }</pre>
 */
public final class QuantizedModels {
    private QuantizedModels() {}

    /**
     * Loads a model directory for QLoRA. A bitsandbytes pre-quantized checkpoint ({@code quantization_config} in
     * config.json, {@code .weight.quant_state.*} / {@code .SCB} tensors) loads as stored, its per-tensor state being
     * authoritative ({@code spec} is then ignored, with a warning, as LLaMA-Factory does). A dense checkpoint is
     * quantized per {@code spec} while it is read, one weight at a time, so the dense weights never exist together;
     * with {@code spec == null} it loads dense. {@code dtype}: the compute dtype (null: config.json's torch_dtype).
     */
    public static DecoderModel load(Path dir, ScalarType dtype, QuantizationSpec spec, Consumer<String> warn)
            throws IOException {
        try (PointerScope scope = new PointerScope()) {
            return load(dir, dtype, TorchRuntime.device(), spec, warn);
        }
    }

    /**
     * As {@link #load(Path, ScalarType, QuantizationSpec, Consumer)} onto {@code device}: each dense weight is read on
     * the host, moved to the device and quantized there (bitsandbytes quantizes when a weight is moved to the GPU,
     * too; our CUDA kernels when the device is a GPU), so neither memory ever holds the dense model.
     */
    public static DecoderModel load(Path dir, ScalarType dtype, Device device, QuantizationSpec spec,
            Consumer<String> warn) throws IOException {
        if (BnbCheckpoint.isPreQuantized(dir)) {
            if (spec != null) {
                warn.accept("quantization_bit has no effect: " + dir + " is already quantized with bitsandbytes"
                        + " (its per-tensor quantization state is used)");
            }
            return BnbCheckpoint.load(dir, dtype, device);
        }
        if (spec == null) {
            return DecoderModel.load(dir, dtype, device);
        }
        List<String> unaligned = new ArrayList<>();
        DecoderModel model = DecoderModel.load(dir, dtype, device, (module, weight, bias) -> {
            if (module.equals("lm_head")) {
                return null; // kept in the compute dtype, as transformers does
            }
            if (!spec.rowsFitBlocks(weight.size(1))) {
                unaligned.add(module);
            }
            NativeHeap.trim(); // return the previous dense weight's memory: keeps the loading peak bounded
            return spec.quantize(module, weight, bias);
        });
        warnUnaligned(unaligned, spec, warn);
        NativeHeap.trim(); // the freed dense weights
        return model;
    }

    /**
     * Quantizes the frozen linear layers of an already loaded model in place (all but lm_head), one at a time: each
     * dense weight is freed as soon as its quantized copy is in the slot. Slots already replaced (LoRA, quantized)
     * are rejected: quantize before attaching adapters.
     */
    public static Summary quantize(DecoderModel model, QuantizationSpec spec, Consumer<String> warn) {
        List<String> unaligned = new ArrayList<>();
        for (String path : model.linearPaths()) {
            if (path.equals("lm_head") || model.isRouter(path)) { // MoE routers stay dense
                continue;
            }
            LinearLayer slot = model.linear(path);
            if (!(slot instanceof DenseLinear dense)) {
                throw new IllegalStateException(path + " is already replaced (" + slot.getClass().getSimpleName()
                        + "); quantize the base model before attaching adapters");
            }
            if (dense.weight().requires_grad()) {
                throw new IllegalStateException(path + ".weight requires grad: quantized weights are frozen; quantize"
                        + " before choosing what to train (LoRA adapters train on top)");
            }
            if (!spec.rowsFitBlocks(dense.inFeatures())) {
                unaligned.add(path);
            }
            QuantizedLinear q = model.adopt(spec.quantize(path, dense.weight(), dense.bias()));
            model.setLinear(path, q);
            model.detachParameter(path + ".weight").releaseReference();
        }
        warnUnaligned(unaligned, spec, warn);
        NativeHeap.trim(); // the freed dense weights
        return summary(model);
    }

    private static void warnUnaligned(List<String> modules, QuantizationSpec spec, Consumer<String> warn) {
        if (!modules.isEmpty()) {
            warn.accept(modules.size() + " quantized weights have rows that are not a whole number of "
                    + spec.blocksize() + "-value blocks (first: " + modules.get(0) + "); training is unaffected, but"
                    + " bitsandbytes' fast 4-bit inference kernels will not serve them. A smaller"
                    + " quantization_blocksize that divides the hidden sizes avoids this");
        }
    }

    /**
     * What the model's base weights cost.
     *
     * @param quantizedParams   parameters held quantized
     * @param quantizedBytes    their storage (codes + statistics)
     * @param denseParams       parameters held dense (embeddings, norms, biases, an untied LM head)
     * @param denseBytes        their bytes
     * @param quantizedLayers   number of quantized linear layers
     */
    public record Summary(long quantizedParams, long quantizedBytes, long denseParams, long denseBytes,
            int quantizedLayers) {
        /** Bits per parameter of the quantized layers (NF4 + double quantization, blocksize 64: about 4.13). */
        public double quantizedBitsPerParam() {
            return quantizedParams == 0 ? 0 : 8.0 * quantizedBytes / quantizedParams;
        }

        /** Bytes per parameter over the whole base model. */
        public double bytesPerParam() {
            long n = quantizedParams + denseParams;
            return n == 0 ? 0 : (double) (quantizedBytes + denseBytes) / n;
        }

        @Override
        public String toString() {
            return String.format(java.util.Locale.ROOT, "%d quantized layers: %,d params in %,d bytes (%.3f bits/param);"
                    + " dense: %,d params in %,d bytes; base model %.3f bytes/param", quantizedLayers, quantizedParams,
                    quantizedBytes, quantizedBitsPerParam(), denseParams, denseBytes, bytesPerParam());
        }
    }

    /** Counts quantized and dense base weights; call it before adapters wrap the slots. */
    public static Summary summary(DecoderModel model) {
        long qParams = 0;
        long qBytes = 0;
        int layers = 0;
        for (String path : model.linearPaths()) {
            QuantizedLinear q = find(model.linear(path));
            if (q != null) {
                qParams += q.inFeatures() * q.outFeatures();
                qBytes += q.storageBytes();
                layers++;
            }
        }
        long dParams = 0;
        long dBytes = 0;
        for (Tensor t : model.parameters().values()) {
            dParams += t.numel();
            dBytes += t.numel() * t.element_size();
        }
        return new Summary(qParams, qBytes, dParams, dBytes, layers);
    }

    /** The quantized layer in a slot, or null. */
    private static QuantizedLinear find(LinearLayer slot) {
        return slot instanceof QuantizedLinear q ? q : null;
    }
}
