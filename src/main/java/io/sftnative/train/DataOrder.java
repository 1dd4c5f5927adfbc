package io.sftnative.train;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import io.sftnative.checkpoint.ResumableRandom;

/**
 * Which examples make up each optimizer step: every epoch is a fresh seeded permutation of the training examples
 * (HF's RandomSampler; a pure function of seed and epoch, so a resumed run rebuilds it), cut into micro-batches of
 * {@code batchSize} (the last one may be smaller, as with {@code drop_last: false}), {@code accumulation}
 * micro-batches per optimizer step (an epoch's last step may hold fewer, as HF Trainer does since 4.46).
 *
 * <p>A position in training is (epoch, step within the epoch); global step {@code s} is at epoch
 * {@code s / stepsPerEpoch()}, step {@code s % stepsPerEpoch()}.
 *
 * <p>Data parallel over {@code ranks} processes: a step takes {@code accumulation × ranks} micro-batches of the
 * permutation (global batch = batch × accumulation × ranks, as HF) and micro-batch {@code j} of the step goes to rank
 * {@code j mod ranks}. The step's examples therefore depend only on batch size and {@code accumulation × ranks}: the
 * same as one process with {@code accumulation × ranks} accumulation steps. In an epoch's short last step a rank
 * may get fewer micro-batches, or none; no example is repeated or dropped.
 */
public final class DataOrder {
    private final int examples;
    private final int batchSize;
    private final int accumulation;
    private final long seed;
    private final boolean shuffle;
    private final int ranks;
    private final int rank;
    private int[] cachedOrder;
    private long cachedEpoch = -1;

    /**
     * @param examples     training examples (rows)
     * @param batchSize    per_device_train_batch_size
     * @param accumulation gradient_accumulation_steps
     * @param seed         the run's seed
     * @param shuffle      false keeps file order (tests, curriculum data)
     */
    public DataOrder(int examples, int batchSize, int accumulation, long seed, boolean shuffle) {
        this(examples, batchSize, accumulation, seed, shuffle, 1, 0);
    }

    /** The share of {@code rank} in a run over {@code ranks} data-parallel processes. */
    public DataOrder(int examples, int batchSize, int accumulation, long seed, boolean shuffle, int ranks, int rank) {
        if (ranks < 1 || rank < 0 || rank >= ranks) {
            throw new IllegalArgumentException("rank " + rank + " of " + ranks);
        }
        this.ranks = ranks;
        this.rank = rank;
        if (examples < 1) {
            throw new IllegalArgumentException("no training examples");
        }
        this.examples = examples;
        this.batchSize = batchSize;
        this.accumulation = accumulation;
        this.seed = seed;
        this.shuffle = shuffle;
    }

    public int examples() {
        return examples;
    }

    public int batchSize() {
        return batchSize;
    }

    public int accumulation() {
        return accumulation;
    }

    /** Micro-batches of one optimizer step over all ranks: accumulation × ranks. */
    public int microBatchesPerStep() {
        return accumulation * ranks;
    }

    /** Micro-batches per epoch: ceil(examples / batchSize). */
    public int microBatchesPerEpoch() {
        return (examples + batchSize - 1) / batchSize;
    }

    /** Optimizer steps per epoch: ceil(micro-batches / (accumulation × ranks)). */
    public long stepsPerEpoch() {
        return (microBatchesPerEpoch() + microBatchesPerStep() - 1) / microBatchesPerStep();
    }

    /** HF's max_steps: {@code maxSteps} when positive, else ceil(epochs * stepsPerEpoch). */
    public long totalSteps(double epochs, long maxSteps) {
        return maxSteps > 0 ? maxSteps : Math.max(1, (long) Math.ceil(epochs * stepsPerEpoch()));
    }

    public long epochOf(long globalStep) {
        return globalStep / stepsPerEpoch();
    }

    /** The fractional epoch reached after {@code completedSteps} updates (what logs show). */
    public double epochAfter(long completedSteps) {
        return (double) completedSteps / stepsPerEpoch();
    }

    /** The example indices of each of this rank's micro-batches of update {@code globalStep} (0-based). */
    public List<int[]> microBatches(long globalStep) {
        long epoch = epochOf(globalStep);
        int stepInEpoch = (int) (globalStep % stepsPerEpoch());
        int[] order = order(epoch);
        List<int[]> out = new ArrayList<>();
        int firstMicro = stepInEpoch * microBatchesPerStep();
        int lastMicro = Math.min(firstMicro + microBatchesPerStep(), microBatchesPerEpoch());
        for (int m = firstMicro + rank; m < lastMicro; m += ranks) {
            int from = m * batchSize;
            int to = Math.min(from + batchSize, examples);
            out.add(Arrays.copyOfRange(order, from, to));
        }
        return out;
    }

    private int[] order(long epoch) {
        if (epoch != cachedEpoch) {
            if (shuffle) {
                cachedOrder = ResumableRandom.epochPermutation(examples, seed, epoch);
            } else {
                cachedOrder = new int[examples];
                Arrays.setAll(cachedOrder, i -> i);
            }
            cachedEpoch = epoch;
        }
        return cachedOrder;
    }
}
