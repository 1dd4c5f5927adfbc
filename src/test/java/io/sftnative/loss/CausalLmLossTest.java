package io.sftnative.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.model.Tensors;
import io.sftnative.torch.TorchRuntime;

class CausalLmLossTest {
    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @Test
    void meanMatchesAHandComputedShiftedCrossEntropy() {
        try (PointerScope s = new PointerScope()) {
            torch.manual_seed(3);
            Tensor logits = torch.randn(2, 4, 5); // (B, T, V)
            long[] lab = {-100, 1, 4, 0, -100, -100, 2, 3}; // (2, 4)
            Tensor labels = Tensors.longs(lab, 2, 4);
            float[] l = Tensors.toFloats(logits);
            double sum = 0;
            int n = 0;
            for (int b = 0; b < 2; b++) {
                for (int t = 0; t < 3; t++) { // position t predicts label t+1
                    long target = lab[b * 4 + t + 1];
                    if (target == -100) {
                        continue;
                    }
                    double max = Double.NEGATIVE_INFINITY;
                    for (int v = 0; v < 5; v++) {
                        max = Math.max(max, l[(b * 4 + t) * 5 + v]);
                    }
                    double z = 0;
                    for (int v = 0; v < 5; v++) {
                        z += Math.exp(l[(b * 4 + t) * 5 + v] - max);
                    }
                    sum += max + Math.log(z) - l[(b * 4 + t) * 5 + (int) target];
                    n++;
                }
            }
            assertEquals(5, n);
            assertEquals(sum / n, CausalLmLoss.mean(logits, labels).item_double(), 1e-6);
            CausalLmLoss.SumAndCount sc = CausalLmLoss.sum(logits, labels);
            assertEquals(5, sc.count());
            assertEquals(sum, sc.sum().item_double(), 1e-5);
            assertEquals(5, CausalLmLoss.countTargets(labels));
        }
    }

    @Test
    void sumsOfMicroBatchesGiveTheSameGradientAsOneBatch() {
        try (PointerScope s = new PointerScope()) {
            torch.manual_seed(5);
            Tensor logits = torch.randn(4, 6, 7).set_requires_grad(true); // (B, T, V) leaf
            Tensor labels = torch.randint(7, new long[] {4, 6});
            labels.narrow(1, 0, 3).narrow(0, 0, 1).fill_(new org.bytedeco.pytorch.Scalar(-100L)); // uneven counts
            CausalLmLoss.mean(logits, labels).backward();
            Tensor full = logits.grad().clone();
            logits.grad().zero_();
            CausalLmLoss.SumAndCount a = CausalLmLoss.sum(logits.narrow(0, 0, 1), labels.narrow(0, 0, 1));
            CausalLmLoss.SumAndCount b = CausalLmLoss.sum(logits.narrow(0, 1, 3), labels.narrow(0, 1, 3));
            long total = a.count() + b.count();
            a.sum().div(new org.bytedeco.pytorch.Scalar((double) total)).backward();
            b.sum().div(new org.bytedeco.pytorch.Scalar((double) total)).backward();
            assertTrue(logits.grad().allclose(full, 1e-6, 1e-7, false));
        }
    }

    @Test
    void bf16LogitsAreReducedInFp32AndNoTargetsGivesZeroCount() {
        try (PointerScope s = new PointerScope()) {
            Tensor logits = torch.randn(1, 3, 4).to(ScalarType.BFloat16);
            Tensor labels = Tensors.longs(new long[] {1, 2, 3}, 1, 3);
            Tensor loss = CausalLmLoss.mean(logits, labels);
            assertEquals(ScalarType.Float, loss.scalar_type().intern());
            CausalLmLoss.SumAndCount none = CausalLmLoss.sum(logits, Tensors.longs(new long[] {1, -100, -100}, 1, 3));
            assertEquals(0, none.count());
            assertEquals(0.0, none.sum().item_double(), 0.0);
            assertThrows(IllegalArgumentException.class, () -> CausalLmLoss.mean(logits, labels.narrow(1, 0, 2)));
        }
    }
}
