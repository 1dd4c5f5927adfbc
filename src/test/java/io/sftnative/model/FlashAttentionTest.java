package io.sftnative.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.torch.TorchRuntime;

/**
 * Our attention kernel through its autograd wiring against libtorch's SDPA with the boolean masks the SDPA path
 * builds ({@link AttentionMasks}), values and gradients, for every mask kind; soft-capping (which SDPA cannot do)
 * against an eager matmul/tanh/softmax reference.
 */
class FlashAttentionTest {
    private static final long B = 2;
    private static final long H = 4;
    private static final long D = 32;
    private static final double U = 5.96e-8; // fp32 unit roundoff
    private static final Device CPU = new Device("cpu");

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    /** fp32 sums of at most T + D terms (dot products, sums over keys): 8·K·u relative to the largest value. */
    private static double tol(long t) {
        return 8.0 * (t + D) * U;
    }

    @Test
    void causalWithAndWithoutGqaMatchesSdpa() {
        for (long kvHeads : new long[] {H, 2}) {
            compare(130, kvHeads, KeyRanges.CAUSAL, null, 0.0);
        }
    }

    @Test
    void rightPaddingMatchesSdpaWithThePaddingMask() {
        long t = 97;
        long[] lengths = {97, 30};
        Tensor keys = torch.arange(new Scalar(0), new Scalar(t)).unsqueeze(0).expand(B, t)
                .lt(Tensors.longs(lengths, CPU, B, 1)).to(ScalarType.Long); // (B, T) 1 = real token
        compare(t, 2, FlashAttention.ranges(B, t, null, lengths, null),
                AttentionMasks.build(B, t, 0, keys, null, null, CPU), 0.0);
    }

    @Test
    void packedSegmentsAndSlidingWindowMatchSdpaWithTheBlockDiagonalMask() {
        long t = 150;
        long[] ids = new long[(int) (B * t)];
        for (int i = 0; i < ids.length; i++) {
            int c = i % (int) t;
            ids[i] = c >= t - 6 ? 0 : 1 + c / (i < t ? 40 : 23); // segment runs, then padding (id 0)
        }
        Tensor seg = Tensors.longs(ids, CPU, B, t); // (B, T)
        compare(t, 2, FlashAttention.ranges(B, t, seg, null, null), AttentionMasks.build(B, t, 0, null, seg, null, CPU),
                0.0);
        compare(t, H, FlashAttention.ranges(B, t, seg, null, 17), AttentionMasks.build(B, t, 0, null, seg, 17, CPU),
                0.0);
        compare(t, 1, FlashAttention.ranges(B, t, null, null, 33), AttentionMasks.build(B, t, 0, null, null, 33, CPU),
                0.0);
    }

    @Test
    void softCappingMatchesAnEagerReference() {
        long t = 75;
        compare(t, 2, FlashAttention.ranges(B, t, null, null, 20), AttentionMasks.build(B, t, 0, null, null, 20, CPU),
                3.0);
    }

    @Test
    void keyRangesGiveTheSameMaskAsTheMaskBuilderAndSplitSegmentsAreRejected() {
        try (PointerScope s = new PointerScope()) {
            long t = 40;
            long[] lengths = {40, 13};
            Tensor keys = torch.arange(new Scalar(0), new Scalar(t)).unsqueeze(0).expand(B, t)
                    .lt(Tensors.longs(lengths, CPU, B, 1)).to(ScalarType.Long);
            Tensor built = AttentionMasks.build(B, t, 0, keys, null, 7, CPU); // (B, 1, T, T)
            Tensor fromRanges = FlashAttention.ranges(B, t, null, lengths, 7).mask(B, t, CPU);
            assertTrue(built.equal(fromRanges), "padding + window");
            Tensor split = Tensors.longs(new long[] {1, 1, 2, 2, 1, 1}, CPU, 1, 6); // id 1 in two runs
            assertNull(FlashAttention.ranges(1, 6, split, null, null), "falls back to a mask");
        }
    }

    @Test
    void repeatedCallsOnTheSameLeavesAndStackedLayersBackpropagateCorrectly() {
        try (PointerScope s = new PointerScope()) {
            torch.manual_seed(5);
            long t = 70;
            double scale = 1.0 / Math.sqrt(D);
            Tensor q = torch.randn(B, H, t, D).set_requires_grad(true); // (B, nH, T, D) leaves
            Tensor k = torch.randn(B, H, t, D).set_requires_grad(true);
            Tensor v = torch.randn(B, H, t, D).set_requires_grad(true);
            Tensor w = torch.randn(B, H, t, D);
            // two stacked "layers": the second attends over the first's output (backward runs in reverse order)
            Tensor ref = sdpaCausal(sdpaCausal(q, k, v, scale), k, v, scale);
            ref.mul(w).sum().backward();
            Tensor gq = q.grad().clone();
            Tensor gk = k.grad().clone();
            for (int rep = 0; rep < 3; rep++) {
                q.grad().zero_();
                k.grad().zero_();
                v.grad().zero_();
                Tensor h = FlashAttention.attention(q, k, v, KeyRanges.CAUSAL, scale, 0.0);
                Tensor out = FlashAttention.attention(h, k, v, KeyRanges.CAUSAL, scale, 0.0);
                out.mul(w).sum().backward();
                assertTrue(GoldenParityTest.relErr(q.grad(), gq) <= 2 * tol(t), "grad q, call " + rep);
                assertTrue(GoldenParityTest.relErr(k.grad(), gk) <= 2 * tol(t), "grad k, call " + rep);
            }
        }
    }

    private static Tensor sdpaCausal(Tensor q, Tensor k, Tensor v, double scale) {
        return torch.scaled_dot_product_attention(q, k, v, new TensorOptional(), 0.0, true, new DoubleOptional(scale),
                false);
    }

    /** Values and gradients of ours vs the reference (SDPA with mask, or eager when soft-capped). */
    private static void compare(long t, long kvHeads, KeyRanges ranges, Tensor mask, double softcap) {
        try (PointerScope s = new PointerScope()) {
            torch.manual_seed(t * 7 + kvHeads);
            double scale = 1.0 / Math.sqrt(D);
            Tensor q = torch.randn(B, t, H, D).set_requires_grad(true); // (B, T, nH, D) as the model lays it out
            Tensor k = torch.randn(B, t, kvHeads, D).set_requires_grad(true); // (B, T, nKV, D)
            Tensor v = torch.randn(B, t, kvHeads, D).set_requires_grad(true);
            Tensor w = torch.randn(B, H, t, D); // weights of a scalar objective
            Tensor qh = q.transpose(1, 2); // (B, nH, T, D)
            Tensor kh = k.transpose(1, 2); // (B, nKV, T, D)
            Tensor vh = v.transpose(1, 2);
            Tensor ref = softcap > 0 ? eager(qh, kh, vh, mask, scale, softcap)
                    : torch.scaled_dot_product_attention(qh, kh, vh,
                            mask == null ? new TensorOptional() : new TensorOptional(mask), 0.0, mask == null,
                            new DoubleOptional(scale), kvHeads != H);
            ref.mul(w).sum().backward();
            Tensor[] want = {ref.detach().clone(), q.grad().clone(), k.grad().clone(), v.grad().clone()};
            q.grad().zero_();
            k.grad().zero_();
            v.grad().zero_();
            assertTrue(FlashAttention.supports(qh, kh, vh));
            Tensor out = FlashAttention.attention(qh, kh, vh, ranges, scale, softcap); // (B, nH, T, D)
            assertTrue(out.transpose(1, 2).is_contiguous(), "laid out as (B, T, nH, D) like SDPA's output");
            out.mul(w).sum().backward();
            Tensor[] got = {out.detach(), q.grad(), k.grad(), v.grad()};
            String[] what = {"values", "grad q", "grad k", "grad v"};
            for (int i = 0; i < 4; i++) {
                double err = GoldenParityTest.relErr(got[i], want[i]);
                assertTrue(err <= tol(t), what[i] + " (T " + t + ", nKV " + kvHeads + ", softcap " + softcap
                        + "): relative error " + err + " > " + tol(t));
            }
        }
    }

    @Test
    void bf16KernelIsAsAccurateAsBf16SdpaForEveryRangeKind() {
        compareBf16(130, H, KeyRanges.CAUSAL, null, false);
        compareBf16(130, 2, KeyRanges.CAUSAL, null, false);
        long t = 97;
        long[] lengths = {97, 30};
        Tensor keys = torch.arange(new Scalar(0), new Scalar(t)).unsqueeze(0).expand(B, t)
                .lt(Tensors.longs(lengths, CPU, B, 1)).to(ScalarType.Long); // (B, T) 1 = real token
        compareBf16(t, 2, FlashAttention.ranges(B, t, null, lengths, null),
                AttentionMasks.build(B, t, 0, keys, null, null, CPU), false);
        long tp = 150;
        long[] ids = new long[(int) (B * tp)];
        for (int i = 0; i < ids.length; i++) {
            int c = i % (int) tp;
            ids[i] = c >= tp - 6 ? 0 : 1 + c / (i < tp ? 40 : 23); // segment runs, then padding (id 0)
        }
        Tensor seg = Tensors.longs(ids, CPU, B, tp); // (B, T)
        compareBf16(tp, 2, FlashAttention.ranges(B, tp, seg, null, 17),
                AttentionMasks.build(B, tp, 0, null, seg, 17, CPU), false);
    }

    @Test
    void fp32InputsUnderBf16AutocastRunTheBf16KernelAndGetFp32Gradients() {
        compareBf16(120, 2, KeyRanges.CAUSAL, null, true);
    }

    /**
     * bf16 q, k, v (or fp32 ones under bf16 autocast): ours and libtorch's SDPA in bf16 are both compared with the
     * fp32 result on the same (bf16-valued) inputs. Ours rounds each output once (relative 2^-8) after fp32
     * arithmetic, so its values must be within 2^-8 + the fp32 bound; and values and gradients may be no further from
     * the fp32 result than 1.5x SDPA's own bf16 error (the rule of GoldenParityTest's bf16 cases).
     */
    private static void compareBf16(long t, long kvHeads, KeyRanges ranges, Tensor mask, boolean autocast) {
        try (PointerScope s = new PointerScope()) {
            torch.manual_seed(t * 11 + kvHeads);
            double scale = 1.0 / Math.sqrt(D);
            // bf16-valued leaves, (B, T, heads, D) as the model lays them out
            Tensor q = torch.randn(B, t, H).unsqueeze(3).expand(B, t, H, D).add(torch.randn(B, t, H, D))
                    .to(ScalarType.BFloat16).to(ScalarType.Float);
            Tensor k = torch.randn(B, t, kvHeads, D).to(ScalarType.BFloat16).to(ScalarType.Float);
            Tensor v = torch.randn(B, t, kvHeads, D).to(ScalarType.BFloat16).to(ScalarType.Float);
            Tensor w = torch.randn(B, H, t, D); // weights of a scalar objective
            Tensor[] exact = run(q, k, v, w, mask, scale, kvHeads, null, null, false); // fp32 SDPA
            Tensor[] sdpa = run(q, k, v, w, mask, scale, kvHeads, ScalarType.BFloat16, null, false);
            Tensor[] ours = run(q, k, v, w, mask, scale, kvHeads, autocast ? null : ScalarType.BFloat16, ranges,
                    autocast);
            String[] what = {"values", "grad q", "grad k", "grad v"};
            String where = " (T " + t + ", nKV " + kvHeads + (autocast ? ", autocast" : "") + ")";
            for (int i = 0; i < 4; i++) {
                assertEquals(i == 0 || !autocast ? ScalarType.BFloat16 : ScalarType.Float,
                        ours[i].scalar_type().intern(), what[i] + " dtype" + where);
                double err = GoldenParityTest.relErr(ours[i], exact[i]);
                double sdpaErr = GoldenParityTest.relErr(sdpa[i], exact[i]);
                assertTrue(err <= 1.5 * sdpaErr, what[i] + where + ": ours " + err + " vs fp32, SDPA bf16 " + sdpaErr);
                if (i == 0) {
                    assertTrue(err <= 0x1p-8 + tol(t), "values" + where + ": " + err + " > one bf16 rounding");
                }
            }
        }
    }

    /**
     * Output and input gradients of attention over copies of q, k, v in {@code dtype} (null: as given): SDPA when
     * {@code ranges} is null, else ours (under CPU bf16 autocast when {@code autocast}).
     */
    private static Tensor[] run(Tensor q0, Tensor k0, Tensor v0, Tensor w, Tensor mask, double scale, long kvHeads,
            ScalarType dtype, KeyRanges ranges, boolean autocast) {
        Tensor[] leaves = new Tensor[3];
        Tensor[] in = {q0, k0, v0};
        for (int i = 0; i < 3; i++) {
            leaves[i] = (dtype == null ? in[i].clone() : in[i].to(dtype)).set_requires_grad(true);
        }
        Tensor qh = leaves[0].transpose(1, 2); // (B, nH, T, D)
        Tensor kh = leaves[1].transpose(1, 2); // (B, nKV, T, D)
        Tensor vh = leaves[2].transpose(1, 2);
        Tensor out;
        if (ranges == null) {
            out = torch.scaled_dot_product_attention(qh, kh, vh,
                    mask == null ? new TensorOptional() : new TensorOptional(mask), 0.0, mask == null,
                    new DoubleOptional(scale), kvHeads != H);
        } else {
            try (io.sftnative.torch.Autocast.Scope a = (autocast ? io.sftnative.torch.Autocast.BF16
                    : io.sftnative.torch.Autocast.OFF).enter()) {
                assertTrue(FlashAttention.supports(qh, kh, vh));
                out = FlashAttention.attention(qh, kh, vh, ranges, scale, 0.0); // (B, nH, T, D)
            }
        }
        out.to(ScalarType.Float).mul(w).sum().backward();
        return new Tensor[] {out.detach(), leaves[0].grad(), leaves[1].grad(), leaves[2].grad()};
    }

    /** Gemma 2's eager attention: scores * scale, softcap * tanh(scores / softcap), mask, fp32 softmax, @ v. */
    private static Tensor eager(Tensor q, Tensor k, Tensor v, Tensor mask, double scale, double softcap) {
        long rep = q.size(1) / k.size(1);
        long[] shape = {q.size(0), k.size(1), rep, k.size(2), k.size(3)}; // (B, nKV, rep, T, D)
        Tensor kr = k.unsqueeze(2).expand(shape).reshape(q.size(0), q.size(1), k.size(2), k.size(3)); // (B, nH, T, D)
        Tensor vr = v.unsqueeze(2).expand(shape).reshape(q.size(0), q.size(1), k.size(2), k.size(3));
        Tensor sc = torch.matmul(q, kr.transpose(2, 3)).mul(new Scalar(scale)); // (B, nH, T, S)
        sc = torch.tanh(sc.div(new Scalar(softcap))).mul(new Scalar(softcap));
        sc = sc.masked_fill(mask.logical_not(), new Scalar(Double.NEGATIVE_INFINITY));
        Tensor p = torch.softmax(sc, -1, new ScalarTypeOptional(ScalarType.Float));
        assertEquals(4, p.dim());
        return torch.matmul(p, vr); // (B, nH, T, D)
    }
}
