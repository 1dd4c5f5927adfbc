package io.sftnative.model;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.torch.Devices;

/**
 * Which keys each query sees, for {@link FlashAttention}: query t of batch row b sees keys {@code [lo, hi)} and
 * itself. Linear in T (no (B, 1, T, S) mask). Built once per batch with the {@link AttentionContext}, which owns it.
 */
public final class KeyRanges {
    /** Plain causal attention: query t sees keys 0..t. */
    public static final KeyRanges CAUSAL = new KeyRanges(null, null);

    private final Tensor lo; // (B, T) int32 on the host, or null (causal)
    private final Tensor hi; // (B, T) int32 on the host, or null (causal)

    KeyRanges(Tensor lo, Tensor hi) {
        this.lo = lo;
        this.hi = hi;
    }

    /** (B, T) int32 lower bounds, or null for plain causal attention. */
    public Tensor lo() {
        return lo;
    }

    /** (B, T) int32 upper bounds (exclusive), or null for plain causal attention. */
    public Tensor hi() {
        return hi;
    }

    public boolean isCausal() {
        return lo == null;
    }

    /**
     * The same visibility as a boolean mask (B, 1, T, T) on {@code device}, for kernels that need one (SDPA when our
     * kernel cannot run, e.g. bf16 tensors under autocast). Built per call, in the caller's PointerScope (a cached
     * mask could outlive a layer-local scope, e.g. under gradient checkpointing).
     */
    Tensor mask(long batch, long seq, Device device) {
        if (isCausal()) {
            throw new IllegalStateException("causal key ranges need no mask");
        }
        Tensor kPos = torch.arange(new Scalar(0), new Scalar(seq), Devices.options(ScalarType.Long, device))
                .view(1, 1, seq); // (1, 1, S)
        Tensor qPos = kPos.view(1, seq, 1); // (1, T, 1)
        Tensor l = Devices.to(lo, device).to(ScalarType.Long).unsqueeze(2); // (B, T, 1)
        Tensor h = Devices.to(hi, device).to(ScalarType.Long).unsqueeze(2); // (B, T, 1)
        Tensor visible = kPos.ge(l).logical_and(kPos.lt(h)).logical_or(kPos.eq(qPos)); // (B, T, S)
        return visible.unsqueeze(1); // (B, 1, T, S)
    }
}
