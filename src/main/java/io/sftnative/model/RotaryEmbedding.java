package io.sftnative.model;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Rotary position embeddings as transformers computes them: {@code inv_freq = 1 / theta^(arange(0, d, 2) / d)} in
 * fp32 (then {@code linear} or {@code llama3} scaling), angles {@code position x inv_freq} in fp32, cos/sin cast to
 * the activation dtype; applied as {@code x * cos + rotate_half(x) * sin}.
 *
 * <p>We fold the sign of {@code rotate_half} into the sine ({@code sinSigned = [-sin, sin]}) so that
 * {@code rotate_half(x) * sin == roll(x, d/2) * sinSigned}: the same products and sums (negation is exact), one
 * fewer copy than HF's {@code cat(-x2, x1)}.
 */
public final class RotaryEmbedding implements AutoCloseable {
    private final int headDim;
    private final Tensor invFreq; // (D/2) fp32 on the model's device, owned

    /**
     * The table for {@code config} on {@code device} (e.g. {@code cpu}, {@code cuda:0}). Computed on the host (a few
     * dozen values, the same on every device) and moved once.
     */
    public RotaryEmbedding(ModelConfig config, String device) {
        this.headDim = config.headDim();
        try (PointerScope scope = new PointerScope()) {
            Tensor inv = inverseFrequencies(config).to(new Device(device), ScalarType.Float);
            inv.retainReference();
            this.invFreq = inv;
        }
    }

    private static Tensor inverseFrequencies(ModelConfig c) {
        int d = c.headDim();
        Tensor exponents = torch.arange(new Scalar(0), new Scalar(d), new Scalar(2),
                new TensorOptions(ScalarType.Long)) // host: moved with the result
                .to(ScalarType.Float).div(new Scalar((double) d)); // (D/2)
        Tensor inv = torch.pow(new Scalar(c.ropeTheta()), exponents).reciprocal(); // (D/2) fp32
        RopeScaling rs = c.ropeScaling();
        if (rs == null || rs.type().equals("default")) {
            return inv;
        }
        if (rs.type().equals("linear")) {
            return inv.div(new Scalar(rs.factor()));
        }
        // transformers' _compute_llama3_parameters, op for op
        double factor = rs.factor();
        double lowFreqWavelen = rs.originalMaxPositionEmbeddings() / rs.lowFreqFactor();
        double highFreqWavelen = rs.originalMaxPositionEmbeddings() / rs.highFreqFactor();
        Tensor wavelen = inv.reciprocal().mul(new Scalar(2 * Math.PI)); // 2*pi / inv
        Tensor invLlama = torch.where(wavelen.gt(new Scalar(lowFreqWavelen)), inv.div(new Scalar(factor)), inv);
        Tensor smooth = wavelen.reciprocal().mul(new Scalar((double) rs.originalMaxPositionEmbeddings()))
                .sub(new Scalar(rs.lowFreqFactor())).div(new Scalar(rs.highFreqFactor() - rs.lowFreqFactor()));
        Tensor smoothed = smooth.neg().add(new Scalar(1.0)).mul(invLlama).div(new Scalar(factor))
                .add(smooth.mul(invLlama));
        Tensor medium = wavelen.lt(new Scalar(highFreqWavelen)).logical_not()
                .logical_and(wavelen.gt(new Scalar(lowFreqWavelen)).logical_not());
        return torch.where(medium, smoothed, invLlama);
    }

    /** (D/2) fp32 inverse frequencies (a view of the owned buffer). */
    public Tensor inverseFrequencies() {
        return invFreq;
    }

    /**
     * cos and sign-folded sin for {@code positionIds} (B, T) int64: two tensors (B, T, 1, D) in {@code dtype},
     * broadcasting over heads of activations laid out (B, T, heads, D).
     */
    public Tensor[] cosSin(Tensor positionIds, ScalarType dtype) {
        Tensor freqs = positionIds.to(ScalarType.Float).unsqueeze(-1).mul(invFreq); // (B, T, D/2) fp32
        Tensor cosHalf = freqs.cos(); // (B, T, D/2)
        Tensor sinHalf = freqs.sin();
        Tensor cos = torch.cat(new org.bytedeco.pytorch.TensorVector(cosHalf, cosHalf), -1); // (B, T, D)
        Tensor sinSigned = torch.cat(new org.bytedeco.pytorch.TensorVector(sinHalf.neg(), sinHalf), -1);
        return new Tensor[] {cos.unsqueeze(2).to(dtype), sinSigned.unsqueeze(2).to(dtype)};
    }

    /** {@code x * cos + rotate_half(x) * sin} for x (B, T, heads, D) and cos/sin from {@link #cosSin}. */
    public Tensor apply(Tensor x, Tensor cos, Tensor sinSigned) {
        Tensor rolled = x.roll(new long[] {headDim / 2}, -1); // (B, T, heads, D) = [x2, x1]
        return torch.addcmul(x.mul(cos), rolled, sinSigned);
    }

    @Override
    public void close() {
        invFreq.releaseReference();
    }
}
