package io.sftnative.model;

import java.util.List;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
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
    private final int rotaryDims; // R <= head_dim: the leading dims that rotate (partial_rotary_factor)
    private final boolean interleaved; // pairs (2i, 2i+1) (glm4) instead of (i, i + R/2)
    private final Tensor invFreq; // (R/2) fp32 on the model's device, owned
    private final Tensor longInvFreq; // (R/2) longrope's table beyond the original context, owned; or null
    private final long originalMax; // longrope: positions >= this switch to longInvFreq
    private final double attentionFactor; // multiplies cos and sin (longrope)

    /**
     * The global table for {@code config} on {@code device} (e.g. {@code cpu}, {@code cuda:0}). Computed on the host
     * (a few dozen values, the same on every device) and moved once.
     */
    public RotaryEmbedding(ModelConfig config, String device) {
        this(config, null, device);
    }

    /**
     * With {@code localTheta} non-null: the table of the sliding layers that have their own base (gemma3
     * {@code rope_local_base_freq}, default rope without scaling).
     */
    public RotaryEmbedding(ModelConfig config, Double localTheta, String device) {
        Architecture a = config.arch();
        this.rotaryDims = a.rotaryDims();
        this.interleaved = a.interleavedRotary();
        RopeScaling rs = localTheta != null ? null : config.ropeScaling();
        double theta = localTheta != null ? localTheta : config.ropeTheta();
        boolean longrope = rs != null && rs.type().equals("longrope");
        this.originalMax = longrope ? rs.originalMaxPositionEmbeddings() : Long.MAX_VALUE;
        this.attentionFactor = rs == null ? 1.0 : rs.attentionFactor();
        Device dev = new Device(device);
        try (PointerScope scope = new PointerScope()) {
            this.invFreq = inverseFrequencies(rotaryDims, theta, rs, false).to(dev, ScalarType.Float)
                    .retainReference();
            this.longInvFreq = longrope
                    ? inverseFrequencies(rotaryDims, theta, rs, true).to(dev, ScalarType.Float).retainReference()
                    : null;
        }
    }

    /** inv_freq (R/2) fp32 for dims {@code d}; {@code useLong}: longrope's long factors. */
    private static Tensor inverseFrequencies(int d, double theta, RopeScaling rs, boolean useLong) {
        Tensor exponents = torch.arange(new Scalar(0), new Scalar(d), new Scalar(2),
                new TensorOptions(ScalarType.Long)) // host: moved with the result
                .to(ScalarType.Float).div(new Scalar((double) d)); // (D/2)
        Tensor base = torch.pow(new Scalar(theta), exponents); // (D/2) fp32
        if (rs != null && rs.type().equals("longrope")) {
            // _compute_longrope_parameters: 1 / (ext_factors * base^(arange/dim))
            List<Double> f = useLong ? rs.longFactor() : rs.shortFactor();
            float[] ext = new float[f.size()];
            for (int i = 0; i < ext.length; i++) {
                ext[i] = f.get(i).floatValue(); // torch.tensor(list, dtype=float32)
            }
            return Tensors.floats(ext, ext.length).mul(base).reciprocal();
        }
        Tensor inv = base.reciprocal(); // (D/2) fp32
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

    /** (R/2) fp32 inverse frequencies (a view of the owned buffer; longrope: the short table). */
    public Tensor inverseFrequencies() {
        return invFreq;
    }

    /**
     * cos and sign-folded sin for {@code positionIds} (B, T) int64: two tensors (B, T, 1, R) in {@code dtype},
     * broadcasting over heads of activations laid out (B, T, heads, D). Longrope (like transformers'
     * {@code dynamic_rope_update}) uses the long factors when the batch's largest position reaches the original
     * context length.
     */
    public Tensor[] cosSin(Tensor positionIds, ScalarType dtype) {
        Tensor inv = invFreq;
        if (longInvFreq != null && positionIds.numel() > 0 && positionIds.max().item_long() + 1 > originalMax) {
            inv = longInvFreq;
        }
        Tensor freqs = positionIds.to(ScalarType.Float).unsqueeze(-1).mul(inv); // (B, T, R/2) fp32
        Tensor cosHalf = freqs.cos(); // (B, T, R/2)
        Tensor sinHalf = freqs.sin();
        if (attentionFactor != 1.0) { // HF: emb.cos() * attention_scaling, in fp32
            cosHalf = cosHalf.mul(new Scalar(attentionFactor));
            sinHalf = sinHalf.mul(new Scalar(attentionFactor));
        }
        Tensor cos; // (B, T, R)
        Tensor sinSigned; // (B, T, R)
        if (interleaved) { // glm4: cos[..., :R/2].repeat_interleave(2); rotate_half_llm's sign on even slots
            cos = torch.stack(new TensorVector(cosHalf, cosHalf), -1).flatten(-2, -1);
            sinSigned = torch.stack(new TensorVector(sinHalf.neg(), sinHalf), -1).flatten(-2, -1);
        } else {
            cos = torch.cat(new TensorVector(cosHalf, cosHalf), -1);
            sinSigned = torch.cat(new TensorVector(sinHalf.neg(), sinHalf), -1);
        }
        return new Tensor[] {cos.unsqueeze(2).to(dtype), sinSigned.unsqueeze(2).to(dtype)};
    }

    /**
     * {@code x * cos + rotate_half(x) * sin} on the first R dims of x (B, T, heads, D) (the rest passes through),
     * with cos/sin from {@link #cosSin}.
     */
    public Tensor apply(Tensor x, Tensor cos, Tensor sinSigned) {
        long d = x.size(-1);
        Tensor xr = rotaryDims == d ? x : x.narrow(-1, 0, rotaryDims); // (B, T, heads, R)
        Tensor swapped; // (B, T, heads, R): the partner of each element
        if (interleaved) {
            long[] pairs = xr.sizes().vec().get();
            long[] shape = java.util.Arrays.copyOf(pairs, pairs.length + 1);
            shape[pairs.length - 1] = rotaryDims / 2;
            shape[pairs.length] = 2;
            swapped = xr.reshape(shape).flip(new long[] {-1}).flatten(-2, -1); // [x1, x0, x3, x2, ...]
        } else {
            swapped = xr.roll(new long[] {rotaryDims / 2}, -1); // [x2, x1]
        }
        Tensor rotated = torch.addcmul(xr.mul(cos), swapped, sinSigned);
        return rotaryDims == d ? rotated : torch.cat(new TensorVector(rotated, x.narrow(-1, rotaryDims, d - rotaryDims)),
                -1);
    }

    @Override
    public void close() {
        invFreq.releaseReference();
        if (longInvFreq != null) {
            longInvFreq.releaseReference();
        }
    }
}
