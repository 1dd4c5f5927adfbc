package io.sftnative.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.bindings.TensorMemory;
import io.sftnative.torch.TorchRuntime;

/**
 * The fused linear cross-entropy against plain libtorch: {@code cross_entropy_loss(hidden W^T, shifted labels,
 * reduction=sum) / numItems} with autograd — loss, d/dhidden and d/dW in fp32 within 1e-5 relative — with -100
 * rows, a fully ignored sequence, several chunk sizes, and the backward into a model graph.
 */
// PointerScope blocks own every tensor created inside them; the scope variable itself is never read
@SuppressWarnings("try")
class FusedLinearCrossEntropyTest {
    private static final long SUM = 2; // at::Reduction::Sum

    @BeforeAll
    static void boot() {
        io.sftnative.bindings.NativeTestSupport.assumeNativeBuilt();
        TorchRuntime.boot();
        torch.manual_seed(1234);
    }

    /** labels (B, T): random targets, some -100, sequence 1 fully ignored. */
    private static Tensor labels(long b, long t, long v) {
        long[] l = new long[(int) (b * t)];
        java.util.Random r = new java.util.Random(7);
        for (int i = 0; i < l.length; i++) {
            l[i] = r.nextDouble() < 0.25 ? -100 : r.nextInt((int) v);
        }
        for (int i = (int) t; i < 2 * t && b > 1; i++) {
            l[i] = -100; // sequence 1: nothing to learn
        }
        Tensor out = torch.empty(new long[] {b, t}, new TensorOptions(ScalarType.Long), new MemoryFormatOptional());
        TensorMemory.segment(out, "labels").copyFrom(MemorySegment.ofArray(l));
        return out;
    }

    /** transformers' ForCausalLMLoss with reduction sum: logits[:, :-1] vs labels[:, 1:]. */
    private static Tensor referenceLossSum(Tensor hidden, Tensor weight, Tensor labels) {
        long b = labels.size(0);
        long t = labels.size(1);
        long v = weight.size(0);
        Tensor logits = torch.matmul(hidden, weight.t()); // (B, T, V)
        Tensor z = logits.narrow(1, 0, t - 1).reshape(-1, v);
        Tensor y = labels.narrow(1, 1, t - 1).reshape(-1);
        return torch.cross_entropy_loss(z, y, new TensorOptional(), SUM, -100, 0.0);
    }

    private static void assertClose(Tensor want, Tensor got, double rtol, String what) {
        Tensor w = want.to(ScalarType.Double);
        Tensor g = got.to(ScalarType.Double);
        double scale = w.abs().max().item_double();
        double err = w.sub(g).abs().max().item_double();
        assertTrue(err <= rtol * scale, what + ": max |diff| " + err + " vs max |value| " + scale);
    }

    @Test
    void matchesLibtorchCrossEntropyWithLabelShift() {
        long b = 3;
        long t = 9;
        long h = 16;
        long v = 101;
        for (int chunk : new int[] {1, 5, 0, 27}) {
            for (double numItems : new double[] {0, 37}) {
                try (PointerScope scope = new PointerScope()) {
                    Tensor hidden = torch.randn(b, t, h).set_requires_grad(true);
                    Tensor weight = torch.randn(v, h).mul(new Scalar(0.5)).set_requires_grad(true);
                    Tensor labels = labels(b, t, v);
                    Tensor sum = referenceLossSum(hidden, weight, labels);
                    long count = labels.narrow(1, 1, t - 1).ne(new Scalar(-100L)).sum().item_long();
                    double divisor = numItems > 0 ? numItems : count;
                    Tensor loss = sum.div(new Scalar(divisor));
                    loss.backward();
                    try (FusedLinearCrossEntropy.Result r = FusedLinearCrossEntropy.causalLm(hidden.detach(),
                            weight.detach(), labels, numItems, chunk, true)) {
                        String ctx = "chunk " + chunk + ", numItems " + numItems;
                        assertEquals(count, r.targetTokens(), ctx);
                        assertEquals(divisor, r.divisor(), ctx);
                        assertEquals(loss.item_double(), r.loss(), 1e-5 * Math.abs(loss.item_double()), ctx);
                        assertEquals(sum.item_double(), r.lossSum(), 1e-5 * Math.abs(sum.item_double()), ctx);
                        assertClose(hidden.grad(), r.gradHidden(), 1e-5, "grad hidden " + ctx);
                        assertClose(weight.grad(), r.gradWeight(), 1e-5, "grad weight " + ctx);
                        // the fully ignored sequence gets exactly zero gradient
                        assertEquals(0.0, r.gradHidden().narrow(0, 1, 1).abs().max().item_double());
                        // and so does the last position of every sequence (it predicts nothing)
                        assertEquals(0.0, r.gradHidden().narrow(1, t - 1, 1).abs().max().item_double());
                    }
                }
            }
        }
    }

    @Test
    void alignedTargetsNeedNoShift() {
        try (PointerScope scope = new PointerScope()) {
            Tensor hidden = torch.randn(20, 8).set_requires_grad(true);
            Tensor weight = torch.randn(33, 8).set_requires_grad(true);
            Tensor targets = labels(1, 20, 33).reshape(-1);
            Tensor sum = torch.cross_entropy_loss(torch.matmul(hidden, weight.t()), targets, new TensorOptional(), SUM,
                    -100, 0.0);
            sum.backward();
            try (FusedLinearCrossEntropy.Result r = FusedLinearCrossEntropy.forwardBackward(hidden.detach(),
                    weight.detach(), targets, 1.0, 6)) {
                assertEquals(sum.item_double(), r.loss(), 1e-5 * Math.abs(sum.item_double()));
                assertClose(hidden.grad(), r.gradHidden(), 1e-5, "grad hidden");
                assertClose(weight.grad(), r.gradWeight(), 1e-5, "grad weight");
            }
        }
    }

    /** The trainer's step: backward through a small "model" (hidden = x A) with a trainable LM head. */
    @Test
    void backwardReachesTheModelAndTheHead() {
        try (PointerScope scope = new PointerScope()) {
            Tensor x = torch.randn(2, 6, 12);
            Tensor a = torch.randn(12, 10).set_requires_grad(true);
            Tensor head = torch.randn(40, 10).set_requires_grad(true);
            Tensor labels = labels(2, 6, 40);
            Tensor ref = referenceLossSum(torch.matmul(x, a), head, labels).div(new Scalar(9.0));
            ref.backward();
            Tensor wantA = a.grad().clone();
            Tensor wantHead = head.grad().clone();
            a.grad().zero_();
            head.grad().zero_();
            FusedCrossEntropyLoss.Step s = new FusedCrossEntropyLoss(4).backward(torch.matmul(x, a), head, labels, 9.0);
            assertEquals(ref.item_double(), s.loss(), 1e-5 * Math.abs(ref.item_double()));
            assertClose(wantA, a.grad(), 1e-5, "model parameter grad");
            assertClose(wantHead, head.grad(), 1e-5, "LM head grad");
            // a frozen head gets no gradient and none is computed
            Tensor frozen = head.detach();
            FusedCrossEntropyLoss.Step s2 = new FusedCrossEntropyLoss(0).backward(torch.matmul(x, a), frozen, labels, 9.0);
            // chunk 4 vs one chunk: different GEMM shapes, so the BLAS may pick other kernels and summation
            // orders. Each fp32 logit is a K=10 dot product, each token's log-sum-exp runs over V=40 logits and
            // the loss sums N=12 tokens: (K + V + N) roundings of 2^-24 bound the relative difference.
            assertEquals(s.loss(), s2.loss(), (10 + 40 + 12) * 0x1p-24 * Math.abs(s.loss()));
            assertFalse(frozen.grad().defined());
        }
    }

    @Test
    void bf16LogitsStayCloseToTheFp32Reference() {
        try (PointerScope scope = new PointerScope()) {
            Tensor hidden = torch.randn(2, 8, 16).to(ScalarType.BFloat16);
            Tensor weight = torch.randn(64, 16).mul(new Scalar(0.3)).to(ScalarType.BFloat16);
            Tensor labels = labels(2, 8, 64);
            Tensor h32 = hidden.to(ScalarType.Float).set_requires_grad(true);
            Tensor w32 = weight.to(ScalarType.Float).set_requires_grad(true);
            Tensor sum = referenceLossSum(h32, w32, labels);
            sum.backward();
            try (FusedLinearCrossEntropy.Result r = FusedLinearCrossEntropy.causalLm(hidden, weight, labels, 1.0, 3, true)) {
                assertTrue(TensorMemory.same(ScalarType.BFloat16, r.gradHidden().scalar_type()));
                // bf16 logits and gradients: about 3 significant digits
                assertEquals(sum.item_double(), r.lossSum(), 2e-2 * Math.abs(sum.item_double()));
                assertClose(h32.grad(), r.gradHidden(), 3e-2, "bf16 grad hidden");
                assertClose(w32.grad(), r.gradWeight(), 3e-2, "bf16 grad weight");
            }
        }
    }

    @Test
    void nothingToLearnGivesZeroLossAndGradients() {
        try (PointerScope scope = new PointerScope()) {
            Tensor labels = torch.full(new long[] {2, 5}, new Scalar(-100L), new TensorOptions(ScalarType.Long));
            try (FusedLinearCrossEntropy.Result r = FusedLinearCrossEntropy.causalLm(torch.randn(2, 5, 4),
                    torch.randn(9, 4), labels, 0, 0, true)) {
                assertEquals(0.0, r.loss());
                assertEquals(0, r.targetTokens());
                assertEquals(0.0, r.gradHidden().abs().max().item_double());
                assertEquals(0.0, r.gradWeight().abs().max().item_double());
            }
        }
    }

    @Test
    void badInputsAreRejectedBeforeAnyWork() {
        try (PointerScope scope = new PointerScope()) {
            Tensor labels = labels(2, 5, 9);
            long[] l = TensorMemory.segment(labels, "l").toArray(ValueLayout.JAVA_LONG);
            l[7] = 9; // == V
            TensorMemory.segment(labels, "l").copyFrom(MemorySegment.ofArray(l));
            var e = assertThrows(IllegalArgumentException.class,
                    () -> FusedLinearCrossEntropy.causalLm(torch.randn(2, 5, 4), torch.randn(9, 4), labels, 0, 0, true));
            assertTrue(e.getMessage().contains("label 9 at position 7 (sequence 1, token 2) is outside [0, 9)"),
                    e.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> FusedLinearCrossEntropy.causalLm(torch.randn(2, 5, 4), torch.randn(9, 3), labels, 0, 0, true));
            assertThrows(IllegalArgumentException.class,
                    () -> FusedLinearCrossEntropy.causalLm(torch.randn(2, 5, 4), torch.randn(9, 4), labels, Double.NaN, 0, true));
        }
    }

    @Test
    void countsTargetsShiftedOrAsTransformers() {
        try (PointerScope scope = new PointerScope()) {
            Tensor labels = labels(3, 9, 50);
            long shifted = FusedLinearCrossEntropy.countTargets(labels, true);
            try (FusedLinearCrossEntropy.Result r = FusedLinearCrossEntropy.causalLm(torch.randn(3, 9, 4),
                    torch.randn(50, 4), labels, 0, 0, false)) {
                assertEquals(shifted, r.targetTokens());
            }
            long hf = FusedLinearCrossEntropy.countTargets(labels, false);
            long firstValid = labels.narrow(1, 0, 1).ne(new Scalar(-100L)).sum().item_long();
            assertEquals(shifted + firstValid, hf);
        }
    }

    @Test
    void defaultChunkFollowsLigersRule() {
        // budget: 256 MiB / (151936 * 4 B) = 441 rows -> 256 (Liger's rule gives 128 and 32 here)
        assertEquals(256, FusedLinearCrossEntropy.defaultChunkRows(4096, 151936, 3584));
        assertEquals(256, FusedLinearCrossEntropy.defaultChunkRows(4096, 151936, 896));
        assertEquals(2048, FusedLinearCrossEntropy.defaultChunkRows(4096, 32000, 4096)); // budget 2097 -> 2048
        assertEquals(8192, FusedLinearCrossEntropy.defaultChunkRows(65536, 32000, 4096)); // Liger: chunk ~ hidden size
        assertEquals(8192, FusedLinearCrossEntropy.defaultChunkRows(8192, 256, 4096)); // V < H: one chunk (Liger)
        assertEquals(10, FusedLinearCrossEntropy.defaultChunkRows(10, 151936, 896)); // never more than the rows
    }
}
