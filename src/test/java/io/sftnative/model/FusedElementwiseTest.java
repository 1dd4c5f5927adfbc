package io.sftnative.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.torch.TorchRuntime;

/**
 * The fused SwiGLU and RoPE ops through their autograd wiring against the libtorch ops they replace (values and
 * gradients), on the strided views the model hands them (split outputs of fused projections). Tolerances bound the
 * fp32 roundings of each element's terms (u = 2^-24): the kernels and libtorch round differently (exp polynomial vs
 * Sleef, operation order), so neither is exact, and both must be within a few u of the exact value.
 */
class FusedElementwiseTest {
    private static final double U = 5.96e-8; // fp32 unit roundoff

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @Test
    void swigluMatchesSiluTimesUpOnSplitViewsWithGradients() {
        try (PointerScope scope = new PointerScope()) {
            long b = 2;
            long t = 37;
            long inter = 300;
            Tensor y = torch.randn(b, t, 2 * inter).mul(new Scalar(3.0)).set_requires_grad(true); // (B, T, 2I) leaf
            Tensor w = torch.randn(b, t, inter); // (B, T, I) weights of a scalar objective
            Tensor[] gu = split(y, inter);
            assertTrue(FusedElementwise.swigluSupported(gu[0], gu[1]));
            Tensor ref = torch.silu(gu[0]).mul(gu[1]); // (B, T, I)
            ref.mul(w).sum().backward();
            Tensor refGrad = y.grad().clone(); // (B, T, 2I)
            y.grad().zero_();

            gu = split(y, inter);
            Tensor out = FusedElementwise.swiglu(gu[0], gu[1]);
            assertEquals(1, FusedElementwise.pendingBackward());
            out.mul(w).sum().backward();
            assertEquals(0, FusedElementwise.pendingBackward());

            Tensor g = y.detach().narrow(-1, 0, inter).to(ScalarType.Double); // (B, T, I)
            Tensor u = y.detach().narrow(-1, inter, inter).to(ScalarType.Double);
            Tensor s = torch.sigmoid(g);
            Tensor wd = w.to(ScalarType.Double);
            // each side within 16 u of the exact value: 32 u between them, on the magnitude of the terms
            Tensor valueBound = g.mul(s).mul(u).abs().mul(new Scalar(32 * U)).add(new Scalar(1e-30));
            Tensor one = torch.ones_like(g);
            Tensor dgBound = wd.mul(u).mul(s).abs().mul(one.add(g.mul(one.sub(s)).abs()))
                    .mul(new Scalar(32 * U)).add(new Scalar(1e-30));
            Tensor duBound = wd.mul(g).mul(s).abs().mul(new Scalar(32 * U)).add(new Scalar(1e-30));
            within(out.detach(), ref.detach(), valueBound, "SwiGLU value");
            within(y.grad().narrow(-1, 0, inter), refGrad.narrow(-1, 0, inter), dgBound, "SwiGLU d gate");
            within(y.grad().narrow(-1, inter, inter), refGrad.narrow(-1, inter, inter), duBound, "SwiGLU d up");
        }
    }

    @Test
    void ropeMatchesRotateHalfWithGradientsFullAndPartial() {
        for (long rot : new long[] {32, 16}) { // head_dim 32: full rotary, then partial (phi-style factor 0.5)
            for (long tableBatch : new long[] {2, 1}) { // per-row positions, then tables broadcast over the batch
                compareRope(rot, tableBatch);
            }
        }
    }

    private static void compareRope(long rot, long tableBatch) {
        try (PointerScope scope = new PointerScope()) {
            long b = 2;
            long t = 19;
            long heads = 3;
            long d = 32;
            Tensor qkv = torch.randn(b, t, 3 * heads * d).set_requires_grad(true); // (B, T, 3·H·D) leaf
            Tensor pos = torch.arange(new Scalar(0), new Scalar(tableBatch * t)).reshape(tableBatch, t)
                    .to(ScalarType.Float).mul(new Scalar(0.37)); // (Bt, T)
            Tensor freq = torch.arange(new Scalar(0), new Scalar(rot / 2)).to(ScalarType.Float)
                    .mul(new Scalar(-0.3)).exp(); // (R/2)
            Tensor ang = pos.unsqueeze(-1).mul(freq); // (Bt, T, R/2)
            Tensor cos = torch.cat(new TensorVector(ang.cos(), ang.cos()), -1).unsqueeze(2); // (Bt, T, 1, R)
            Tensor sin = torch.cat(new TensorVector(ang.sin().neg(), ang.sin()), -1).unsqueeze(2);
            Tensor w = torch.randn(b, t, heads, d); // (B, T, H, D)

            Tensor ref = reference(q(qkv, heads, d), cos, sin, rot);
            ref.mul(w).sum().backward();
            Tensor refGrad = qkv.grad().clone();
            qkv.grad().zero_();

            Tensor x = q(qkv, heads, d); // strided view: rows 3·H·D apart
            assertTrue(FusedElementwise.ropeSupported(x, cos, sin));
            Tensor out = FusedElementwise.rope(x, cos, sin);
            out.mul(w).sum().backward();
            assertEquals(0, FusedElementwise.pendingBackward());

            // |out - exact| <= 2u (|x c| + |x' s|) on each side
            Tensor xd = q(qkv, heads, d).detach().to(ScalarType.Double);
            Tensor bound = reference(xd.abs(), cos.abs().to(ScalarType.Double), sin.abs().to(ScalarType.Double), rot)
                    .mul(new Scalar(4 * U)).add(new Scalar(1e-30)); // (B, T, H, D)
            within(out.detach(), ref.detach(), bound, "RoPE value R=" + rot);
            Tensor wBound = reference(w.abs().to(ScalarType.Double), cos.abs().to(ScalarType.Double),
                    sin.abs().to(ScalarType.Double), rot).mul(new Scalar(4 * U)).add(new Scalar(1e-30));
            within(qkv.grad().narrow(-1, 0, heads * d).reshape(b, t, heads, d),
                    refGrad.narrow(-1, 0, heads * d).reshape(b, t, heads, d), wBound, "RoPE grad R=" + rot);
            // k and v parts got no gradient from this objective, on both paths
            assertEquals(0.0, qkv.grad().narrow(-1, heads * d, 2 * heads * d).abs().max().item_double());
        }
    }

    @Test
    void noGradAndUnsupportedInputsAndDiscardedCalls() {
        try (PointerScope scope = new PointerScope()) {
            Tensor gate = torch.randn(4, 10);
            Tensor up = torch.randn(4, 10);
            try (NoGradGuard ng = new NoGradGuard()) {
                Tensor out = FusedElementwise.swiglu(gate, up);
                assertFalse(out.requires_grad());
                within(out, torch.silu(gate).mul(up), torch.full(new long[] {4, 10}, new Scalar(1e-5)), "no grad");
            }
            assertEquals(0, FusedElementwise.pendingBackward());
            assertFalse(FusedElementwise.swigluSupported(gate.to(ScalarType.BFloat16), up.to(ScalarType.BFloat16)));
            assertFalse(FusedElementwise.swigluSupported(gate, torch.randn(4, 11)));
            assertFalse(FusedElementwise.swigluSupported(gate.t(), up.t())); // no unit stride along the row
            // a forward whose backward never runs leaves a pending call until the loss runner discards it
            FusedElementwise.swiglu(gate.clone().set_requires_grad(true), up);
            assertEquals(1, FusedElementwise.pendingBackward());
            assertEquals(1, FusedElementwise.discardPendingBackward());
            assertEquals(0, FusedElementwise.pendingBackward());
        }
    }

    private static Tensor[] split(Tensor y, long inter) {
        TensorVector parts = y.split_with_sizes(new long[] {inter, inter}, -1);
        return new Tensor[] {parts.get(0), parts.get(1)};
    }

    private static Tensor q(Tensor qkv, long heads, long d) {
        TensorVector parts = qkv.split_with_sizes(new long[] {heads * d, 2 * heads * d}, -1);
        return parts.get(0).view(qkv.size(0), qkv.size(1), heads, d); // (B, T, H, D)
    }

    /** transformers' rotate_half formula on the first rot dims, the rest passed through (as RotaryEmbedding). */
    private static Tensor reference(Tensor x, Tensor cos, Tensor sinSigned, long rot) {
        long d = x.size(-1);
        Tensor xr = x.narrow(-1, 0, rot);
        Tensor rotated = xr.mul(cos).add(xr.roll(new long[] {rot / 2}, -1).mul(sinSigned));
        return rot == d ? rotated : torch.cat(new TensorVector(rotated, x.narrow(-1, rot, d - rot)), -1);
    }

    private static void within(Tensor got, Tensor want, Tensor bound, String what) {
        Tensor excess = got.to(ScalarType.Double).sub(want.to(ScalarType.Double)).abs().sub(bound); // <= 0 when within
        double worst = excess.max().item_double();
        assertTrue(worst <= 0, what + ": exceeds its rounding bound by " + worst);
    }
}
