package io.sftnative.quant;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * How frozen linear weights are held (LLaMA-Factory's {@code quantization_bit}, {@code quantization_type},
 * {@code double_quantization}, {@code quantization_blocksize}).
 *
 * @param bits        4 (bitsandbytes Linear4bit: NF4/FP4 blocks) or 8 (LLM.int8() row-wise)
 * @param type        the 4-bit data type (ignored for 8 bits)
 * @param doubleQuant quantize the per-block absmax too (4-bit only; QLoRA's double quantization)
 * @param blocksize   values per absmax block (4-bit only): a power of two in [32, 4096], bitsandbytes' default 64
 */
public record QuantizationSpec(int bits, QuantType type, boolean doubleQuant, int blocksize) {

    public QuantizationSpec {
        if (bits != 4 && bits != 8) {
            throw new IllegalArgumentException("quantization_bit must be 4 or 8, got " + bits);
        }
        if (type == null) {
            throw new IllegalArgumentException("quantization_type is required (nf4 or fp4)");
        }
        if (bits == 4) {
            try {
                QuantizedWeight.checkBlocksize(blocksize);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("quantization_blocksize: " + e.getMessage(), e);
            }
        }
    }

    /** QLoRA's recipe: NF4, double quantization, blocksize 64 (about 4.13 bits per parameter). */
    public static QuantizationSpec nf4() {
        return new QuantizationSpec(4, QuantType.NF4, true, 64);
    }

    /**
     * From the config keys; null when {@code quantizationBit} is 0 (no quantization). {@code type}: "nf4" or "fp4".
     */
    public static QuantizationSpec of(int quantizationBit, String type, boolean doubleQuant, int blocksize) {
        if (quantizationBit == 0) {
            return null;
        }
        return new QuantizationSpec(quantizationBit, QuantType.parse(type), doubleQuant, blocksize);
    }

    /**
     * Quantizes the dense weight (out, in) of module {@code module} into a frozen layer (the dense tensor is not kept;
     * the caller frees it). Errors name the module.
     */
    public QuantizedLinear quantize(String module, Tensor weight, Tensor bias) {
        if (weight.dim() != 2) {
            throw new IllegalArgumentException(module + ".weight: a linear weight must be 2-D (out, in), got "
                    + weight.dim() + " dims");
        }
        try (PointerScope scope = new PointerScope()) {
            if (bits == 8) {
                return QuantizedLinear.of(module, RowwiseInt8Weight.quantize(weight), bias);
            }
            return QuantizedLinear.of(module, QuantizedWeight.quantize(weight, type, blocksize, doubleQuant), bias);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("cannot quantize " + module + ".weight "
                    + java.util.Arrays.toString(weight.sizes().vec().get()) + " to " + this + ": " + e.getMessage(), e);
        }
    }

    /** Whether rows of {@code inFeatures} split into whole blocks (bitsandbytes' fused inference kernels need it). */
    public boolean rowsFitBlocks(long inFeatures) {
        return bits == 8 || inFeatures % blocksize == 0;
    }

    @Override
    public String toString() {
        return bits == 8 ? "int8 (row-wise)"
                : type.bnbName + (doubleQuant ? " + double quantization" : "") + ", blocksize " + blocksize;
    }
}
