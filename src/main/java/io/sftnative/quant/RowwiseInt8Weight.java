package io.sftnative.quant;

import java.util.LinkedHashMap;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.bindings.TensorMemory;

/**
 * A 2-D weight in LLM.int8()'s row-wise 8-bit format, bitsandbytes' {@code Linear8bitLt} (spec §3.2): per output row
 * {@code SCB[r] = max |W[r, :]|} (fp32) and {@code CB[r, c] = round-half-even(W[r, c] * (127 / SCB[r]))} (int8), and
 * {@code W ≈ CB * SCB[r] / 127}. Pure libtorch ops, CPU or CUDA. An all-zero row gets SCB 0 and codes 0.
 *
 * <p>Checkpoint keys (spec §2.7): {@code P.weight} int8 (out, in), {@code P.SCB} fp32 (out), {@code P.weight_format}
 * uint8 scalar 0 ("row", the only layout accepted). Ownership as {@link QuantizedWeight}.
 */
// PointerScope blocks own every tensor created inside them; the scope variable itself is never read
@SuppressWarnings("try")
public final class RowwiseInt8Weight implements AutoCloseable {
    private final Tensor codes; // int8 (out, in)
    private final Tensor scb; // fp32 (out)
    private final ScalarType dtype; // original dtype, the default output of dequantize()
    private Tensor format; // uint8 () = 0, created by stateDict()
    private boolean closed;

    private RowwiseInt8Weight(Tensor codes, Tensor scb, ScalarType dtype) {
        this.codes = codes.retainReference();
        this.scb = scb.retainReference();
        this.dtype = dtype;
    }

    /** Quantizes a finite float weight (out, in). */
    public static RowwiseInt8Weight quantize(Tensor weight) {
        if (weight.dim() != 2) {
            throw new IllegalArgumentException("row-wise int8 needs a 2-D (out, in) weight, got " + weight.dim() + " dims");
        }
        TensorMemory.dtype(weight, "weight"); // float types only
        try (PointerScope scope = new PointerScope()) {
            Tensor w = weight.detach().to(ScalarType.Float); // (out, in) fp32
            long bad = w.isfinite().logical_not().sum().item_long();
            if (bad > 0) {
                throw new IllegalArgumentException("weight has " + bad + " non-finite values (NaN/Inf); refusing to"
                        + " quantize. Check the checkpoint.");
            }
            Tensor absmax = torch.amax(w.abs(), new long[] {1}, false); // (out)
            Tensor scale = torch.reciprocal(absmax).mul(new Scalar(127.0)); // (out): 127 / absmax, inf for 0 rows
            Tensor q = torch.round(w.mul(scale.unsqueeze(1))); // half-to-even like __float2int_rn
            q = q.masked_fill(absmax.eq(new Scalar(0.0)).unsqueeze(1), new Scalar(0.0)); // 0 * inf = NaN -> 0
            Tensor cb = q.clamp(new org.bytedeco.pytorch.ScalarOptional(new Scalar(-127.0)),
                    new org.bytedeco.pytorch.ScalarOptional(new Scalar(127.0))).to(ScalarType.Char);
            return new RowwiseInt8Weight(cb.contiguous(), absmax.contiguous(), weight.scalar_type());
        }
    }

    /** W ≈ CB * SCB / 127 in the original dtype (new tensor, owned like any libtorch result). */
    public Tensor dequantize() {
        return dequantize(dtype);
    }

    public Tensor dequantize(ScalarType outDtype) {
        ensureOpen();
        Tensor out;
        try (PointerScope scope = new PointerScope()) {
            out = codes.to(ScalarType.Float).mul(scb.unsqueeze(1)).div(new Scalar(127.0)).to(outDtype);
            out.retainReference();
        }
        // hand the reference to the caller's scope (if any), like a plain libtorch result
        PointerScope outer = PointerScope.getInnerScope();
        if (outer != null) {
            outer.attach(out);
            out.releaseReference();
        }
        return out;
    }

    /** {@code P.weight}, {@code P.SCB}, {@code P.weight_format}: views owned by this weight. */
    public Map<String, Tensor> stateDict(String prefix) {
        ensureOpen();
        String p = prefix.isEmpty() ? "" : prefix + ".";
        if (format == null) {
            try (PointerScope scope = new PointerScope()) {
                format = torch.zeros(new long[] {}, new TensorOptions(ScalarType.Byte)).retainReference();
            }
        }
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put(p + "weight", codes);
        m.put(p + "SCB", scb);
        m.put(p + "weight_format", format);
        return m;
    }

    /** Reads {@code P.weight} (int8) and {@code P.SCB}; {@code P.weight_format}, when present, must be 0 ("row"). */
    public static RowwiseInt8Weight fromStateDict(String prefix, Map<String, Tensor> tensors, ScalarType dtype) {
        String p = prefix.isEmpty() ? "" : prefix + ".";
        Tensor cb = tensors.get(p + "weight");
        Tensor s = tensors.get(p + "SCB");
        if (cb == null || s == null) {
            throw new IllegalArgumentException("8-bit weight " + p + "weight needs " + p + "weight (int8) and " + p
                    + "SCB (fp32); " + (cb == null ? p + "weight" : p + "SCB") + " is missing");
        }
        if (!TensorMemory.same(cb.scalar_type(), ScalarType.Char) || cb.dim() != 2) {
            throw new IllegalArgumentException(p + "weight must be int8 (out, in), got " + cb.scalar_type());
        }
        if (!TensorMemory.same(s.scalar_type(), ScalarType.Float) || s.numel() != cb.size(0)) {
            throw new IllegalArgumentException(p + "SCB must be fp32 with " + cb.size(0) + " entries");
        }
        Tensor f = tensors.get(p + "weight_format");
        if (f != null && f.numel() == 1 && f.to(ScalarType.Long).item_long() != 0) {
            throw new IllegalArgumentException(p + "weight_format is " + f.to(ScalarType.Long).item_long()
                    + "; only 0 (\"row\") is supported, as in bitsandbytes");
        }
        try (PointerScope scope = new PointerScope()) {
            return new RowwiseInt8Weight(cb.contiguous().clone(), s.contiguous().reshape(-1).clone(), dtype);
        }
    }

    /** A copy on another device. */
    public RowwiseInt8Weight to(Device device) {
        ensureOpen();
        try (PointerScope scope = new PointerScope()) {
            return new RowwiseInt8Weight(codes.to(device, ScalarType.Char), scb.to(device, ScalarType.Float), dtype);
        }
    }

    /** Codes, int8 (out, in); a view owned by this weight. */
    public Tensor codes() {
        ensureOpen();
        return codes;
    }

    /** Row absmax, fp32 (out); a view owned by this weight. */
    public Tensor scb() {
        ensureOpen();
        return scb;
    }

    public ScalarType dtype() {
        return dtype;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        codes.close();
        scb.close();
        if (format != null) {
            format.close();
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("RowwiseInt8Weight used after close()");
        }
    }
}
