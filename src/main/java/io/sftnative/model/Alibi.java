package io.sftnative.model;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.torch.Devices;

/**
 * ALiBi attention biases as Baichuan-13B's and Baichuan2-13B's remote code adds them ({@code modeling_baichuan.py}):
 * per head a slope ({@code _get_interleave}), and the score of query i for key j gets {@code slope * (j - i)}
 * (Baichuan2's training form; Baichuan-13B's {@code slope * j} and both models' inference form differ from it by a
 * constant per query row, which the softmax cancels). i and j are columns of the row, so padding and packing need
 * nothing else: packed segments are contiguous and masked from each other, and left padding shifts both alike.
 * Invisible keys get the dtype's lowest value, as the remote code's {@code finfo.min} mask.
 */
final class Alibi {
    private Alibi() {}

    /** {@code _get_interleave(n)}: the heads' slopes, in Python floats. */
    static double[] slopes(int n) {
        if (Integer.bitCount(n) == 1) {
            return powerOfTwo(n);
        }
        int closest = Integer.highestOneBit(n);
        double[] first = powerOfTwo(closest);
        double[] twice = slopes(2 * closest);
        double[] out = new double[n];
        System.arraycopy(first, 0, out, 0, closest);
        for (int i = 0; i < n - closest; i++) {
            out[closest + i] = twice[2 * i]; // [0::2][:n - closest]
        }
        return out;
    }

    private static double[] powerOfTwo(int n) {
        double log2 = Integer.numberOfTrailingZeros(n); // exact for powers of two, as math.log2
        double start = Math.pow(2, -Math.pow(2, -(log2 - 3)));
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            out[i] = start * Math.pow(start, i);
        }
        return out;
    }

    /**
     * The additive attention mask (B, nH, T, S) in {@code dtype} for T queries (the last T of S columns):
     * {@code slope_h * (j - i)} where {@code visible} (B, 1, T, S) bool (null: causal) is true, the dtype's lowest
     * value elsewhere. Costs (B, nH, T, S) memory per layer call, like the eager scores.
     */
    static Tensor mask(int heads, long t, long s, Tensor visible, ScalarType dtype, Device device) {
        double[] sl = slopes(heads);
        float[] f = new float[heads];
        for (int h = 0; h < heads; h++) {
            f[h] = (float) sl[h]; // torch.Tensor(list): fp32
        }
        Tensor slopes = Tensors.floats(f, device, heads, 1, 1); // (nH, 1, 1) fp32
        TensorOptions fp32 = Devices.options(ScalarType.Float, device);
        Tensor keys = torch.arange(new Scalar(s), fp32); // (S) j
        Tensor queries = torch.arange(new Scalar(s - t), new Scalar(s), new Scalar(1), fp32); // (T) i
        Tensor distance = keys.unsqueeze(0).sub(queries.unsqueeze(1)); // (T, S) j - i, exact
        Tensor bias = slopes.mul(distance).unsqueeze(0).to(dtype); // (1, nH, T, S)
        Tensor vis = visible != null ? visible // (B, 1, T, S)
                : torch.ones(new long[] {t, s}, Devices.options(ScalarType.Bool, device)).tril(s - t); // (T, S)
        long b = visible != null ? visible.size(0) : 1;
        // finfo.min made in fp32 (where it is exact) and cast: libtorch refuses bf16's finfo.min as a Scalar fill
        // value ("cannot be converted to type c10::BFloat16 without overflow")
        Tensor low = torch.full(new long[] {}, new Scalar(lowest(dtype)), fp32).to(dtype); // () in dtype
        return torch.where(vis, bias.expand(b, heads, t, s), low); // (B, nH, T, S)
    }

    /** torch.finfo(dtype).min. */
    static double lowest(ScalarType dtype) {
        if (dtype == ScalarType.BFloat16) {
            return -3.3895313892515355e38;
        }
        if (dtype == ScalarType.Half) {
            return -65504.0;
        }
        return dtype == ScalarType.Double ? -Double.MAX_VALUE : -Float.MAX_VALUE;
    }
}
