package io.sftnative.eval;

/**
 * LLaMA-Factory's {@code ComputeAccuracy} (eval with {@code compute_accuracy: true}): per example, the share of
 * target positions where the argmax prediction equals the label, with the causal shift (prediction at t scores the
 * label at t + 1) and positions labelled -100 ignored; {@link #result()} averages the per-example shares.
 * An example without any target gives NaN, as numpy's mean of an empty selection does.
 */
public final class TokenAccuracy {
    public static final long IGNORE_INDEX = -100;

    private double sum;
    private long count;

    /**
     * @param predictedIds argmax of the logits for one example, length T
     * @param labels       the example's labels (unshifted, -100 where ignored), length T
     */
    public double add(long[] predictedIds, long[] labels) {
        if (predictedIds.length != labels.length) {
            throw new IllegalArgumentException("predictions (" + predictedIds.length + ") and labels ("
                    + labels.length + ") must have the same length");
        }
        long hits = 0;
        long targets = 0;
        for (int t = 0; t + 1 < labels.length; t++) {
            if (labels[t + 1] != IGNORE_INDEX) {
                targets++;
                if (predictedIds[t] == labels[t + 1]) {
                    hits++;
                }
            }
        }
        double acc = targets == 0 ? Double.NaN : (double) hits / targets;
        sum += acc;
        count++;
        return acc;
    }

    /** (sum of the per-example accuracies, examples): what ranks that evaluated parts of a set add up. */
    public double[] parts() {
        return new double[] {sum, count};
    }

    /** The mean of per-example accuracies summed over several parts ({@link #parts()}). */
    public static double result(double sum, double count) {
        return count == 0 ? Double.NaN : sum / count;
    }

    /** The mean accuracy over the examples added (NaN when none). */
    public double result() {
        return count == 0 ? Double.NaN : sum / count;
    }
}
