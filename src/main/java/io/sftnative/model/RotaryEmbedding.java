package io.sftnative.model;

import java.util.List;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Rotary position embeddings as transformers computes them: {@code inv_freq = 1 / theta^(arange(0, d, 2) / d)} in
 * fp32 (then {@code linear}, {@code llama3}, {@code yarn}, {@code longrope} or {@code dynamic} scaling, as
 * transformers' {@code modeling_rope_utils}), angles {@code position x inv_freq} in fp32, cos/sin cast to
 * the activation dtype; applied as {@code x * cos + rotate_half(x) * sin}.
 *
 * <p>We fold the sign of {@code rotate_half} into the sine ({@code sinSigned = [-sin, sin]}) so that
 * {@code rotate_half(x) * sin == roll(x, d/2) * sinSigned}: the same products and sums (negation is exact), one
 * fewer copy than HF's {@code cat(-x2, x1)}.
 */
public final class RotaryEmbedding implements AutoCloseable {
    private final int rotaryDims; // R <= head_dim: the leading dims that rotate (partial_rotary_factor)
    private final boolean interleaved; // pairs (2i, 2i+1) (glm4) instead of (i, i + R/2)
    private final Tensor originalInvFreq; // (R/2) fp32 on the model's device, owned
    private final Tensor longInvFreq; // (R/2) longrope's table beyond the original context, owned; or null
    private final long originalMax; // longrope: positions >= this switch to longInvFreq
    private final double attentionFactor; // multiplies cos and sin (longrope, yarn)
    private final RopeScaling dynamic; // dynamic NTK: the scaling whose table follows the sequence length; or null
    private final double theta;
    private final String device;
    private Tensor dynamicInvFreq; // (R/2) dynamic NTK's grown table, owned; null while the original one is used
    private long maxSeqLenCached; // dynamic NTK: the length the current table was computed for

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
        this.theta = localTheta != null ? localTheta : config.ropeTheta();
        this.device = device;
        boolean longrope = rs != null && rs.type().equals("longrope");
        this.originalMax = longrope ? rs.originalMaxPositionEmbeddings() : Long.MAX_VALUE;
        this.attentionFactor = rs == null ? 1.0 : rs.attentionFactor();
        this.dynamic = rs != null && rs.type().equals("dynamic") ? rs : null;
        this.maxSeqLenCached = dynamic != null ? dynamic.originalMaxPositionEmbeddings() : 0;
        Device dev = new Device(device);
        try (PointerScope scope = new PointerScope()) {
            this.originalInvFreq = inverseFrequencies(rotaryDims, theta, rs, false).to(dev, ScalarType.Float)
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
        if (rs != null && rs.type().equals("yarn")) {
            return yarn(d, theta, rs, base);
        }
        if (rs != null && rs.type().equals("dynamic")) {
            // _compute_dynamic_ntk_parameters at init (seq_len = max_position_embeddings), in Python floats
            double m = rs.originalMaxPositionEmbeddings();
            double b = theta * Math.pow(rs.factor() * m / m - (rs.factor() - 1), (double) d / (d - 2));
            return torch.pow(new Scalar(b), exponents).reciprocal();
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

    /**
     * transformers' _compute_yarn_parameters: per rotary dim, a ramp between the interpolated ({@code 1 / (factor *
     * base^(2i/d))}) and the extrapolated ({@code 1 / base^(2i/d)}) frequency over the correction range of dims
     * whose wavelength turns beta_fast..beta_slow times in the original context.
     */
    private static Tensor yarn(int d, double theta, RopeScaling rs, Tensor posFreqs) {
        double lowDim = correctionDim(rs.betaFast(), d, theta, rs.originalMaxPositionEmbeddings());
        double highDim = correctionDim(rs.betaSlow(), d, theta, rs.originalMaxPositionEmbeddings());
        if (rs.truncate()) {
            lowDim = Math.floor(lowDim);
            highDim = Math.ceil(highDim);
        }
        double low = Math.max(lowDim, 0);
        double high = Math.min(highDim, d - 1);
        if (low == high) {
            high += 0.001; // HF: prevent singularity
        }
        Tensor ramp = torch.arange(new Scalar(d / 2), new TensorOptions(ScalarType.Float)).sub(new Scalar(low))
                .div(new Scalar(high - low)).clamp(new ScalarOptional(new Scalar(0)),
                        new ScalarOptional(new Scalar(1))); // (D/2)
        Tensor extrapolation = posFreqs.reciprocal(); // (D/2)
        Tensor interpolation = posFreqs.mul(new Scalar(rs.factor())).reciprocal(); // (D/2)
        Tensor extrapolationFactor = ramp.neg().add(new Scalar(1.0)); // 1 - ramp
        return interpolation.mul(extrapolationFactor.neg().add(new Scalar(1.0)))
                .add(extrapolation.mul(extrapolationFactor));
    }

    /** yarn's find_correction_dim: the dim whose wavelength turns {@code rotations} times in {@code context}. */
    private static double correctionDim(double rotations, int d, double theta, int context) {
        return d * Math.log(context / (rotations * 2 * Math.PI)) / (2 * Math.log(theta));
    }

    /**
     * Dynamic NTK's table for {@code seqLen} (> max_position_embeddings): transformers computes the base from the
     * forward's {@code torch.max(position_ids) + 1}, a tensor, so in fp32 tensor arithmetic.
     */
    private Tensor dynamicTable(long seqLen) {
        int d = rotaryDims;
        double m = dynamic.originalMaxPositionEmbeddings();
        Tensor s = torch.scalar_tensor(new Scalar(seqLen), new TensorOptions(ScalarType.Long)); // () int64
        Tensor base = s.mul(new Scalar(dynamic.factor())).div(new Scalar(m)) // () fp32 (int x float -> float32)
                .sub(new Scalar(dynamic.factor() - 1)).pow(new Scalar((double) d / (d - 2))).mul(new Scalar(theta));
        Tensor exponents = torch.arange(new Scalar(0), new Scalar(d), new Scalar(2),
                new TensorOptions(ScalarType.Long)).to(ScalarType.Float).div(new Scalar((double) d)); // (D/2)
        return torch.pow(base, exponents).reciprocal(); // (D/2) fp32
    }

    /**
     * transformers' dynamic_frequency_update, with its state: the table grows when a forward's largest position + 1
     * exceeds the length it was computed for, and returns to the original one when a forward stays below
     * max_position_embeddings again (so a length between the two keeps the grown table, as in transformers).
     */
    private Tensor dynamicUpdate(Tensor positionIds) {
        long seqLen = positionIds.max().item_long() + 1;
        long original = dynamic.originalMaxPositionEmbeddings();
        if (seqLen > maxSeqLenCached) {
            try (PointerScope scope = new PointerScope()) {
                Tensor grown = dynamicTable(seqLen).to(new Device(device), ScalarType.Float).retainReference();
                if (dynamicInvFreq != null) {
                    dynamicInvFreq.releaseReference();
                }
                dynamicInvFreq = grown;
            }
            maxSeqLenCached = seqLen;
        }
        if (seqLen < original && maxSeqLenCached > original) {
            if (dynamicInvFreq != null) {
                dynamicInvFreq.releaseReference();
                dynamicInvFreq = null;
            }
            maxSeqLenCached = original;
        }
        return dynamicInvFreq != null ? dynamicInvFreq : originalInvFreq;
    }

    /** (R/2) fp32 inverse frequencies (a view of the owned buffer; longrope: the short table; dynamic: the current). */
    public Tensor inverseFrequencies() {
        return dynamicInvFreq != null ? dynamicInvFreq : originalInvFreq;
    }

    /**
     * cos and sign-folded sin for {@code positionIds} (B, T) int64: two tensors (B, T, 1, R) in {@code dtype},
     * broadcasting over heads of activations laid out (B, T, heads, D). Longrope (like transformers'
     * {@code dynamic_rope_update}) uses the long factors when the batch's largest position reaches the original
     * context length.
     */
    public Tensor[] cosSin(Tensor positionIds, ScalarType dtype) {
        Tensor inv = dynamic != null && positionIds.numel() > 0 ? dynamicUpdate(positionIds) : inverseFrequencies();
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
        if (!interleaved && FusedElementwise.ropeSupported(x, cos, sinSigned)) {
            return FusedElementwise.rope(x, cos, sinSigned); // one pass each way (fp32 CPU)
        }
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
        originalInvFreq.releaseReference();
        if (dynamicInvFreq != null) {
            dynamicInvFreq.releaseReference();
            dynamicInvFreq = null;
        }
        if (longInvFreq != null) {
            longInvFreq.releaseReference();
        }
    }
}
