package io.sftnative.lora;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.DenseLinear;
import io.sftnative.model.LinearLayer;
import io.sftnative.model.safetensors.DType;

/**
 * A linear slot with a LoRA branch, PEFT's {@code lora.Linear.forward}:
 * {@code y = base(x) + B(A(dropout(x))) * scaling}, where x is cast to the adapter dtype for the branch and the sum
 * is cast back to the base output dtype. Two thin GEMMs, (.., in) -> (.., r) -> (.., out); B·A is never formed.
 * With a DoRA magnitude the branch is {@link Dora#complete} instead (which does form B·A, for the row norm).
 *
 * <p>Borrows A, B and the magnitude (owned by {@link LoraAdapters}) and the base layer (owned by the model).
 */
final class LoraLinear implements LinearLayer {
    private final String path;
    private final LinearLayer base;
    private final Tensor a; // (r, in)
    private final Tensor b; // (out, r)
    private final Tensor magnitude; // (out) DoRA's lora_magnitude_vector, or null for plain LoRA
    private final double scaling;
    private final double dropout;
    private final LoraAdapters.State state;

    LoraLinear(String path, LinearLayer base, Tensor a, Tensor b, Tensor magnitude, double scaling, double dropout,
            LoraAdapters.State state) {
        this.path = path;
        this.base = base;
        this.a = a;
        this.b = b;
        this.magnitude = magnitude;
        this.scaling = scaling;
        this.dropout = dropout;
        this.state = state;
    }

    @Override
    public Tensor forward(Tensor x) { // x (..., in)
        state.check();
        return completeFrom(x, base.forward(x));
    }

    /** The base when it is a plain dense layer (so q/k/v and gate/up bases still run as one GEMM). */
    @Override
    public DenseLinear fusableBase() {
        return base instanceof DenseLinear d ? d : null; // only this slot's delta is added on top
    }

    /** {@code y} = base(x) (..., out) plus the adapter branch. */
    @Override
    public Tensor completeFrom(Tensor x, Tensor y) {
        state.check();
        ScalarType outType = y.scalar_type();
        Tensor xa = DType.same(x.scalar_type(), a.scalar_type()) ? x : x.to(a.scalar_type()); // (..., in)
        if (magnitude != null) {
            Tensor sum = Dora.complete(base, path, xa, y, a, b, magnitude, scaling, dropout > 0 && state.training(),
                    dropout); // (..., out)
            return DType.same(sum.scalar_type(), outType) ? sum : sum.to(outType);
        }
        if (dropout > 0 && state.training()) {
            xa = torch.dropout(xa, dropout, true);
        }
        if (DType.same(outType, a.scalar_type()) && DType.same(b.scalar_type(), a.scalar_type())) {
            // one dtype: the up-projection adds into the base output in its GEMM (no delta tensor, no add pass)
            long[] shape = y.sizes().vec().get();
            long rows = y.numel() / Math.max(1, b.size(0));
            Tensor down = torch.linear(xa, a).reshape(rows, a.size(0)); // (N, r)
            return torch.addmm(y.reshape(rows, b.size(0)), down, b.t(), new Scalar(1.0), new Scalar(scaling))
                    .view(shape); // (..., out)
        }
        Tensor delta = torch.linear(torch.linear(xa, a), b); // (..., r) -> (..., out)
        Tensor sum = y.add(delta, new Scalar(scaling)); // promoted to the wider of the two dtypes, as in PEFT
        return DType.same(sum.scalar_type(), outType) ? sum : sum.to(outType);
    }

    @Override
    public LowRank lowRank(Tensor x) {
        state.check();
        boolean plain = magnitude == null && !(dropout > 0 && state.training())
                && DType.same(x.scalar_type(), a.scalar_type()) && DType.same(b.scalar_type(), a.scalar_type());
        return plain ? new LowRank(a, b, scaling) : null;
    }

    String path() {
        return path;
    }

    LinearLayer base() {
        return base;
    }

    /** (r, in) */
    Tensor a() {
        return a;
    }

    /** (out, r) */
    Tensor b() {
        return b;
    }

    /** (out), or null without DoRA */
    Tensor magnitude() {
        return magnitude;
    }

    double scaling() {
        return scaling;
    }

    @Override
    public long inFeatures() {
        return base.inFeatures();
    }

    @Override
    public long outFeatures() {
        return base.outFeatures();
    }
}
