package io.sftnative.model;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.torch.Devices;

/**
 * Which keys each query sees, for {@link FlashAttention}: query t of batch row b sees keys {@code [lo, hi)} and
 * itself. Linear in T (no (B, 1, T, S) mask).
 *
 * @param lo (B, T) int32 on the host, or null together with {@code hi} for plain causal attention
 * @param hi (B, T) int32 on the host
 */
public record KeyRanges(Tensor lo, Tensor hi) {
    /** Plain causal attention: query t sees keys 0..t. */
    public static final KeyRanges CAUSAL = new KeyRanges(null, null);

    /** The same visibility as a boolean mask (B, 1, T, T) on {@code device}, for kernels that need one. */
    static Tensor mask(KeyRanges r, long batch, long seq, Device device) {
        Tensor kPos = torch.arange(new Scalar(0), new Scalar(seq), Devices.options(ScalarType.Long, device))
                .view(1, 1, seq); // (1, 1, S)
        Tensor qPos = kPos.view(1, seq, 1); // (1, T, 1)
        Tensor diag = kPos.eq(qPos); // (1, T, S)
        Tensor visible;
        if (r.lo() == null) {
            visible = kPos.le(qPos).expand(batch, seq, seq); // (B, T, S)
        } else {
            Tensor lo = Devices.to(r.lo(), device).to(ScalarType.Long).unsqueeze(2); // (B, T, 1)
            Tensor hi = Devices.to(r.hi(), device).to(ScalarType.Long).unsqueeze(2); // (B, T, 1)
            visible = kPos.ge(lo).logical_and(kPos.lt(hi)).logical_or(diag); // (B, T, S)
        }
        return visible.unsqueeze(1); // (B, 1, T, S)
    }
}
