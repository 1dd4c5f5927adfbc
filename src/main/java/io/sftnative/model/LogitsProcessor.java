package io.sftnative.model;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * HF generate's logits processing for one row on the host, in HF's order: repetition penalty, then (sampling only)
 * temperature, top-k, top-p; then argmax or a draw. Ties in argmax go to the lowest id, as {@code torch.argmax}.
 */
final class LogitsProcessor {
    private final GenerationOptions opts;
    private final SplittableRandom random;

    LogitsProcessor(GenerationOptions opts) {
        this.opts = opts;
        this.random = new SplittableRandom(opts.seed());
    }

    /** Picks the next token from {@code logits} (V, modified in place) given the row's ids so far. */
    long next(float[] logits, long[] previous, int previousLength) {
        if (opts.repetitionPenalty() != 1.0) {
            repetitionPenalty(logits, previous, previousLength, (float) opts.repetitionPenalty());
        }
        if (!opts.doSample()) {
            return argmax(logits);
        }
        if (opts.temperature() != 1.0) {
            float t = (float) opts.temperature();
            for (int i = 0; i < logits.length; i++) {
                logits[i] /= t;
            }
        }
        if (opts.topK() > 0 && opts.topK() < logits.length) {
            topK(logits, opts.topK());
        }
        if (opts.topP() < 1.0) {
            topP(logits, opts.topP());
        }
        return sample(logits);
    }

    /** CTRL penalty as transformers: logit < 0 ? logit * p : logit / p, once per distinct previous token. */
    static void repetitionPenalty(float[] logits, long[] previous, int n, float p) {
        boolean[] seen = new boolean[logits.length];
        for (int i = 0; i < n; i++) {
            int id = (int) previous[i];
            if (id >= 0 && id < logits.length && !seen[id]) {
                seen[id] = true;
                logits[id] = logits[id] < 0 ? logits[id] * p : logits[id] / p;
            }
        }
    }

    static long argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    /** Removes everything strictly below the k-th largest value (ties at the k-th value stay, as HF). */
    static void topK(float[] logits, int k) {
        float[] sorted = logits.clone();
        Arrays.sort(sorted);
        float kth = sorted[sorted.length - k];
        for (int i = 0; i < logits.length; i++) {
            if (logits[i] < kth) {
                logits[i] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    /**
     * HF TopPLogitsWarper: sort ascending, remove tokens whose cumulative probability is <= 1 - top_p, always keep
     * the most likely one.
     */
    static void topP(float[] logits, double topP) {
        int n = logits.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Float.compare(logits[a], logits[b]));
        double[] probs = softmax(logits);
        double cum = 0;
        for (int r = 0; r < n - 1; r++) { // the last (most likely) token is always kept
            int i = order[r];
            cum += probs[i];
            if (cum <= 1 - topP) {
                logits[i] = Float.NEGATIVE_INFINITY;
            } else {
                break;
            }
        }
    }

    private long sample(float[] logits) {
        double[] p = softmax(logits);
        double u = random.nextDouble();
        double cum = 0;
        int last = 0;
        for (int i = 0; i < p.length; i++) {
            if (p[i] > 0) {
                cum += p[i];
                last = i;
                if (u < cum) {
                    return i;
                }
            }
        }
        return last; // rounding left u just above the total
    }

    static double[] softmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        double[] p = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            p[i] = logits[i] == Float.NEGATIVE_INFINITY ? 0 : Math.exp(logits[i] - max);
            sum += p[i];
        }
        for (int i = 0; i < p.length; i++) {
            p[i] /= sum;
        }
        return p;
    }
}
