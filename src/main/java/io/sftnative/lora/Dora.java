package io.sftnative.lora;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.DenseLinear;
import io.sftnative.model.LinearLayer;
import io.sftnative.model.safetensors.DType;
import io.sftnative.quant.QuantizedLinear;

/**
 * DoRA (weight-decomposed LoRA) as PEFT computes it ({@code tuners/lora/dora.py DoraLinearLayer} and
 * {@code variants.py DoraLinearVariant}): the adapted weight is {@code m · (W + s·B·A) / ||W + s·B·A||_row}, with the
 * magnitude m (out) trained and the row norm treated as a constant (detached, DoRA paper §4.3). The forward adds to
 * the base output {@code y = W x + b}:
 *
 * <pre>
 *   k = m / ||W + s·B·A||_row                                  (out), no gradient through the norm
 *   y + (k - 1) · (y - b) + (k · B(A(x))) · s                  no dropout, or evaluation
 *   y + (k - 1) · (W·drop(x)) + (k · B(A(drop(x)))) · s        training with lora_dropout > 0
 * </pre>
 *
 * The norm uses the dequantized weight for a quantized base (QLoRA), cast to the adapter dtype as PEFT does.
 */
final class Dora {
    private Dora() {}

    /** The base weight (out, in) in {@code dtype}: the dense weight, or the dequantized one (a new tensor). */
    static Tensor baseWeight(LinearLayer base, ScalarType dtype, String path) {
        if (base instanceof DenseLinear d) {
            Tensor w = d.weight();
            return DType.same(w.scalar_type(), dtype) ? w : w.to(dtype);
        }
        if (base instanceof QuantizedLinear q) {
            return q.dequantize(dtype);
        }
        throw new IllegalArgumentException("DoRA needs the weight of " + path + ", whose base layer is "
                + base.getClass().getSimpleName() + " (neither a dense nor a bitsandbytes-quantized weight); remove "
                + path + " from lora_target or train without use_dora");
    }

    /** The dtype the base weight is stored in (the dequantization dtype for a quantized base). */
    static ScalarType baseDtype(LinearLayer base, String path) {
        if (base instanceof DenseLinear d) {
            return d.weight().scalar_type();
        }
        if (base instanceof QuantizedLinear q) {
            return q.weightDtype();
        }
        return baseWeight(base, ScalarType.Float, path).scalar_type(); // throws the message above
    }

    /** (out) {@code ||w + scaling·lora||_2} per row, without autograd history; dtype: w and lora promoted. */
    static Tensor weightNorm(Tensor w, Tensor lora, double scaling) { // w (out, in), lora (out, in)
        try (NoGradGuard noGrad = new NoGradGuard()) {
            Tensor sum = w.add(lora.mul(new Scalar(scaling))); // PEFT: weight + scaling * lora_weight
            return torch.linalg_vector_norm(sum, new Scalar(2.0), new long[] {1}, false, new ScalarTypeOptional());
        }
    }

    /** PEFT's initial magnitude: {@code ||W + s·B·A||_row} in the adapter dtype (B = 0 for a new adapter: ||W||). */
    static Tensor initialMagnitude(LinearLayer base, Tensor a, Tensor b, double scaling, String path) {
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            Tensor w = baseWeight(base, baseDtype(base, path), path); // (out, in)
            Tensor lora = torch.mm(b, a); // (out, r) x (r, in)
            Tensor m = weightNorm(w, lora, scaling).to(a.scalar_type()).contiguous(); // (out)
            return m.retainReference();
        }
    }

    /**
     * The DoRA output for a slot: {@code y} (..., out) = the base output for {@code x}; {@code xa} (..., in) = x in
     * the adapter dtype. Returns y plus the DoRA term, in the promoted dtype (the caller casts back).
     */
    static Tensor complete(LinearLayer base, String path, Tensor xa, Tensor y, Tensor a, Tensor b, Tensor magnitude,
            double scaling, boolean dropoutActive, double dropout) {
        Tensor w = baseWeight(base, xa.scalar_type(), path); // (out, in), PEFT: dequantize(base).to(x.dtype)
        Tensor norm; // (out), detached
        try (NoGradGuard noGrad = new NoGradGuard()) {
            norm = weightNorm(w, torch.mm(b, a).to(xa.scalar_type()), scaling);
        }
        Tensor k = magnitude.div(norm); // (out): the gradient reaches the magnitude only
        Tensor xd = xa;
        Tensor baseResult; // (..., out), without bias
        if (dropoutActive) {
            xd = torch.dropout(xa, dropout, true);
            baseResult = torch.linear(xd, w);
        } else {
            Tensor bias = base instanceof DenseLinear d ? d.bias() : base instanceof QuantizedLinear q ? q.bias() : null;
            baseResult = bias == null ? y : y.sub(bias);
        }
        Tensor lora = torch.linear(torch.linear(xd, a), b); // (..., r) -> (..., out)
        Tensor term = k.sub(new Scalar(1.0)).mul(baseResult).add(k.mul(lora).mul(new Scalar(scaling))); // (..., out)
        return y.add(term);
    }

    /**
     * PEFT's DoRA merge: {@code W' = (m / ||W + ΔW||_row) · (W + ΔW)} with {@code ΔW = (B·A)·s} in the adapter dtype,
     * written into W's dtype in place.
     */
    static void merge(Tensor w, Tensor a, Tensor b, Tensor magnitude, double scaling) { // w (out, in)
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            Tensor delta = torch.mm(b, a).mul(new Scalar(scaling)); // (out, in)
            Tensor norm = weightNorm(w, delta, 1.0); // (out)
            Tensor factor = magnitude.div(norm).view(-1, 1); // (out, 1)
            w.copy_(factor.mul(w.add(delta)));
        }
    }
}
