package io.sftnative.model;

import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.torch.Devices;

/**
 * transformers' eager attention with logit soft-capping (Gemma 2), op for op: {@code s = (q k^T) * scale},
 * {@code s = tanh(s / cap) * cap}, masked, softmax in fp32, cast back, {@code @ v}. It materialises the (B, nH, T, S)
 * scores (and keeps them and the probabilities for the backward): memory O(T * S) per head instead of the fused
 * kernel's O(T), and slower than libtorch's fused SDPA, which has no hook for the cap.
 */
final class EagerAttention {
    private EagerAttention() {}

    /**
     * q (B, nH, T, D), k/v (B, nKV, S, D) (nKV divides nH: repeated like HF's repeat_kv), mask (B, 1, T, S) bool
     * (true = visible) or null for causal with S == T -> (B, nH, T, D).
     */
    static Tensor softcapped(Tensor q, Tensor k, Tensor v, Tensor mask, double scale, double cap) {
        long groups = q.size(1) / k.size(1);
        if (groups > 1) {
            k = k.repeat_interleave(groups, new LongOptional(1), new LongOptional()); // (B, nH, S, D)
            v = v.repeat_interleave(groups, new LongOptional(1), new LongOptional());
        }
        Tensor s = torch.matmul(q, k.transpose(2, 3)).mul(new Scalar(scale)); // (B, nH, T, S)
        s = s.div(new Scalar(cap)).tanh().mul(new Scalar(cap));
        Tensor visible = mask != null ? mask // (B, 1, T, S)
                : torch.ones(new long[] {s.size(2), s.size(3)}, Devices.options(ScalarType.Bool, s.device()))
                        .tril(s.size(3) - s.size(2)); // (T, S) causal
        s = s.masked_fill(visible.logical_not(), new Scalar(Double.NEGATIVE_INFINITY));
        Tensor p = torch.softmax(s, -1, new ScalarTypeOptional(ScalarType.Float)).to(q.scalar_type());
        return torch.matmul(p, v); // (B, nH, T, D)
    }
}
