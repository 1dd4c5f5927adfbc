package io.sftnative.model;

import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.safetensors.DType;

/**
 * transformers' RMSNorm in the three forms of {@link Architecture.NormKind}, used by {@link DecoderForward} for the
 * layer and final norms and by {@link SelfAttention} for the q/k norms.
 */
final class RmsNorm {
    private RmsNorm() {}

    /** Benchmark switch (A/B measurements); on by default. */
    static final boolean FUSED_RMS_NORM = !"0".equals(System.getenv("SFT_FUSED_RMS_NORM"));

    /** x (..., H), weight (H) -> (..., H) in x's dtype, the weight applied as {@code kind} says. */
    static Tensor apply(Tensor x, Tensor weight, double eps, Architecture.NormKind kind) {
        if (kind == Architecture.NormKind.CAST_THEN_WEIGHT) {
            return apply(x, weight, eps);
        }
        ScalarType in = x.scalar_type();
        Tensor n = normalized(x, eps); // (..., H) fp32
        Tensor w = weight.to(ScalarType.Float); // (H)
        if (kind == Architecture.NormKind.ONE_PLUS_WEIGHT) {
            w = w.add(new Scalar(1.0)); // Gemma: output * (1.0 + weight.float())
        }
        return n.mul(w).to(in);
    }

    /** fp32 x * rsqrt(mean(x^2) + eps) of x (..., H). */
    private static Tensor normalized(Tensor x, double eps) {
        Tensor h = x.to(ScalarType.Float); // (..., H) fp32, no copy when already fp32
        Tensor variance = h.pow(new Scalar(2.0)).mean(new long[] {-1}, true, new ScalarTypeOptional()); // (..., 1)
        return h.mul(variance.add(new Scalar(eps)).rsqrt());
    }

    /**
     * LlamaRMSNorm, x (..., H) -> (..., H): in fp32, x * rsqrt(mean(x^2) + eps), cast back to the input dtype, times
     * weight (H).
     */
    static Tensor apply(Tensor x, Tensor weight, double eps) {
        ScalarType in = x.scalar_type();
        if (FUSED_RMS_NORM && DType.same(in, ScalarType.Float)) {
            // fp32: libtorch's rms_norm is the same math in fewer passes over memory. Not for bf16/fp16: its fused
            // kernel multiplies by the weight before rounding, HF rounds first (measured: bf16 logits 30% further
            // from the reference)
            return torch.rms_norm(x, new long[] {x.size(-1)}, new TensorOptional(weight), new DoubleOptional(eps));
        }
        return weight.mul(normalized(x, eps).to(in));
    }
}
