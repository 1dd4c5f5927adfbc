package io.sftnative.distributed;

/**
 * What data parallelism adds to a training step, as two calls the loop makes (a no-op in a single process):
 * <pre>
 *   totals = sync.totals(targets, tokens)          before the forward passes: the WHOLE step's target tokens
 *   ... every micro-batch: sync.beforeBackward(last), backward of (loss sum / totals.targets()) ...
 *   lossSum = sync.afterBackward(lossSum)          gradients and loss summed over the ranks
 * </pre>
 * Dividing every rank's loss by the global target count (HF's {@code num_items_in_batch} across devices) and
 * summing the gradients makes the step the same as one process training on all ranks' micro-batches.
 */
public interface GradientSync {

    /**
     * Target and non-padding tokens of a whole optimizer step (all ranks), and whether any rank was asked to stop
     * (Ctrl-C): every rank then stops before the same step.
     */
    record StepTotals(long targets, long tokens, boolean stop) {}

    /** This rank's counts summed over all ranks; {@code stop} is true on every rank when it is on any. */
    StepTotals totals(long targets, long tokens, boolean stop);

    /**
     * As {@link #totals(long, long, boolean)}; {@code microBatches}: how many this rank runs in the step (ZeRO-3 and
     * layer-wise ZeRO-2 make collectives in every micro-batch, so a rank with fewer takes part without data).
     */
    default StepTotals totals(long targets, long tokens, int microBatches, boolean stop) {
        return totals(targets, tokens, stop);
    }

    /**
     * Before each micro-batch's forward and backward on this rank; {@code last}: the step's last one, after whose
     * backward the gradients are final (the synchronisation may start during that backward; the earlier ones only
     * accumulate, DDP's {@code no_sync}).
     */
    default void beforeBackward(boolean last) {}

    /**
     * After the step's last backward: sums every trainable parameter's gradient over the ranks (in place) and
     * returns the loss summed over the ranks. Every rank then holds identical gradients.
     */
    double afterBackward(double lossSum);

    /**
     * Clips the gradients the optimizer will apply to total L2 norm {@code maxNorm} (0 or less: no clipping) and
     * returns their norm before clipping (HF's grad_norm). Default: the parameters' own (summed) gradients; ZeRO-2
     * keeps them sharded ({@link ShardedGradients}).
     */
    default double clipGradNorm(java.util.Collection<org.bytedeco.pytorch.Tensor> trainable, double maxNorm) {
        return maxNorm > 0 ? io.sftnative.optim.GradClip.clipGradNorm(trainable, maxNorm)
                : io.sftnative.optim.GradClip.totalNorm(trainable);
    }

    /**
     * Sums {@code values} over the ranks (a float64 all-reduce every rank must call; the values themselves in one
     * process): per-step metrics each rank holds only its part of, e.g. a mixture-of-experts model's aux loss.
     */
    default double[] sumOverRanks(double[] values) {
        return values;
    }

    /** One process: nothing to synchronise. */
    GradientSync LOCAL = new GradientSync() {
        @Override
        public StepTotals totals(long targets, long tokens, boolean stop) {
            return new StepTotals(targets, tokens, stop);
        }

        @Override
        public double afterBackward(double lossSum) {
            return lossSum;
        }
    };
}
