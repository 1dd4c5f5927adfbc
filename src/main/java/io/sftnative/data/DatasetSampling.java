package io.sftnative.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Which records of which dataset a run reads, in which order, as LLaMA-Factory decides it: {@code num_samples} per
 * dataset (numpy's global generator after {@code set_seed(seed)}), then {@code max_samples} (the first records), then
 * the datasets merged by {@code mix_strategy} (HF datasets' {@code concatenate_datasets} / {@code interleave_datasets}
 * with {@code np.random.default_rng(seed)}). Pure index arithmetic: the records themselves are read elsewhere.
 */
final class DatasetSampling {
    private DatasetSampling() {}

    /** LLaMA-Factory's {@code mix_strategy} values and HF datasets' stopping strategy for each. */
    enum MixStrategy {
        CONCAT("concat"), INTERLEAVE_UNDER("interleave_under"), INTERLEAVE_OVER("interleave_over"),
        INTERLEAVE_ONCE("interleave_once");

        final String key;

        MixStrategy(String key) {
            this.key = key;
        }

        static MixStrategy of(String s) {
            for (MixStrategy m : values()) {
                if (m.key.equals(s.toLowerCase(Locale.ROOT))) {
                    return m;
                }
            }
            throw new DataException("mix_strategy '" + s + "' must be concat, interleave_under, interleave_over or"
                    + " interleave_once", null, -1, "mix_strategy");
        }
    }

    /**
     * {@code num_samples}: a random permutation of the n records cut to the target; when the target exceeds n, every
     * record once and then the rest drawn with replacement. Draws from (and advances) the shared state, so datasets
     * listed later see the state the earlier ones left, as in LLaMA-Factory.
     */
    static int[] numSamples(NumpyRandomState rng, int n, int target) {
        if (n == 0 && target > 0) {
            throw new IllegalArgumentException("cannot draw " + target + " samples from an empty dataset");
        }
        int[] perm = rng.permutation(n);
        int[] out = Arrays.copyOf(perm, target);
        if (target > n) {
            int[] extra = rng.choice(n, target - n);
            System.arraycopy(extra, 0, out, n, extra.length);
        }
        return out;
    }

    /**
     * The merged order as indices into the concatenation of the datasets (dataset d's record i is
     * {@code offset(d) + i}).
     *
     * @param probs null for round-robin; else one probability per dataset, summing to 1
     */
    static int[] interleave(int[] lengths, double[] probs, long seed, MixStrategy strategy) {
        int k = lengths.length;
        int[] offsets = new int[k];
        for (int d = 1; d < k; d++) {
            offsets[d] = offsets[d - 1] + lengths[d - 1];
        }
        List<Integer> out = new ArrayList<>();
        if (probs == null) {
            switch (strategy) {
                case INTERLEAVE_UNDER -> { // rows 0..min-1, each row one record of every dataset
                    int min = Arrays.stream(lengths).min().orElse(0);
                    for (int i = 0; i < min; i++) {
                        for (int d = 0; d < k; d++) {
                            out.add(offsets[d] + i);
                        }
                    }
                }
                case INTERLEAVE_OVER -> { // rows 0..max-1, shorter datasets wrap around
                    int max = Arrays.stream(lengths).max().orElse(0);
                    for (int i = 0; i < max; i++) {
                        for (int d = 0; d < k; d++) {
                            out.add(offsets[d] + i % lengths[d]);
                        }
                    }
                }
                case INTERLEAVE_ONCE -> { // round-robin over the datasets not yet used up
                    int max = Arrays.stream(lengths).max().orElse(0);
                    for (int i = 0; i < max; i++) {
                        for (int d = 0; d < k; d++) {
                            if (i < lengths[d]) {
                                out.add(offsets[d] + i);
                            }
                        }
                    }
                }
                default -> throw new IllegalArgumentException(strategy.toString());
            }
            return out.stream().mapToInt(Integer::intValue).toArray();
        }
        NumpyGenerator rng = new NumpyGenerator(seed);
        boolean all = strategy != MixStrategy.INTERLEAVE_UNDER;
        boolean once = strategy == MixStrategy.INTERLEAVE_ONCE;
        boolean[] exhausted = new boolean[k];
        int[] current = new int[k];
        while (true) {
            for (int source : rng.choice(probs, 1000)) {
                if (stop(exhausted, all)) {
                    return out.stream().mapToInt(Integer::intValue).toArray();
                }
                if (!once || !exhausted[source]) {
                    out.add(offsets[source] + current[source]);
                    current[source]++;
                }
                if (current[source] >= lengths[source]) {
                    exhausted[source] = true;
                    if (!once) {
                        current[source] = 0;
                    }
                }
            }
        }
    }

    private static boolean stop(boolean[] exhausted, boolean all) {
        for (boolean e : exhausted) {
            if (e != all) {
                return !all; // any() finds a true; all() finds a false
            }
        }
        return all || exhausted.length == 0;
    }
}
