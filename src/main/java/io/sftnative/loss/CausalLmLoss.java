package io.sftnative.loss;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.torch.Devices;

/**
 * Causal-LM cross-entropy as transformers computes it ({@code ForCausalLMLoss}): position t predicts label t+1
 * (labels are shifted left, the last position has no target), labels equal to {@value #IGNORE_INDEX} are skipped,
 * log-softmax in fp32 whatever the logits dtype.
 *
 * <p>{@link #mean} is HF's loss for one batch. For gradient accumulation use {@link #sum}: add the sums of all
 * micro-batches and divide by their total target count, so every target token weighs the same however the tokens
 * fall into micro-batches.
 */
public final class CausalLmLoss {
    public static final long IGNORE_INDEX = -100;
    private static final long REDUCTION_SUM = 2; // at::Reduction::Sum

    private CausalLmLoss() {}

    /**
     * @param sum   scalar fp32 tensor: summed negative log-likelihood of the targets (differentiable)
     * @param count number of target tokens (labels != -100 after the shift)
     */
    public record SumAndCount(Tensor sum, long count) {
        /** sum / count (NaN when there is no target, as torch's mean reduction). */
        public Tensor mean() {
            return sum.div(new Scalar((double) count));
        }
    }

    /** Mean over target tokens: logits (B, T, V) any float dtype, labels (B, T) int64. Scalar fp32. */
    public static Tensor mean(Tensor logits, Tensor labels) {
        return sum(logits, labels).mean();
    }

    /** Summed loss and target count: logits (B, T, V), labels (B, T). */
    public static SumAndCount sum(Tensor logits, Tensor labels) {
        checkShapes(logits, labels);
        long v = logits.size(2);
        Tensor targets = shiftLabels(labels); // (B, T)
        long count = targets.ne(new Scalar(IGNORE_INDEX)).sum().item_long();
        Tensor flat = logits.reshape(-1, v).to(ScalarType.Float); // (B*T, V) fp32 (no copy when already fp32)
        Tensor sum = torch.cross_entropy_loss(flat, targets.reshape(-1), new TensorOptional(), REDUCTION_SUM,
                IGNORE_INDEX, 0.0);
        return new SumAndCount(sum, count);
    }

    /** labels (B, T) -> targets (B, T): {@code targets[:, t] = labels[:, t+1]}, the last column -100. */
    public static Tensor shiftLabels(Tensor labels) {
        long b = labels.size(0);
        long t = labels.size(1);
        Tensor tail = torch.full(new long[] {b, 1}, new Scalar(IGNORE_INDEX),
                Devices.options(ScalarType.Long, labels.device())); // (B, 1) next to the labels
        Tensor l = labels.to(ScalarType.Long);
        return torch.cat(new TensorVector(l.narrow(1, 1, t - 1), tail), 1);
    }

    /** Number of target tokens in {@code labels} (B, T) after the shift. */
    public static long countTargets(Tensor labels) {
        return shiftLabels(labels).ne(new Scalar(IGNORE_INDEX)).sum().item_long();
    }

    private static void checkShapes(Tensor logits, Tensor labels) {
        if (logits.dim() != 3 || labels.dim() != 2 || logits.size(0) != labels.size(0)
                || logits.size(1) != labels.size(1)) {
            throw new IllegalArgumentException("causal-LM loss needs logits (B, T, V) and labels (B, T), got "
                    + java.util.Arrays.toString(logits.sizes().vec().get()) + " and "
                    + java.util.Arrays.toString(labels.sizes().vec().get()));
        }
    }
}
