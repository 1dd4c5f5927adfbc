package io.sftnative.checkpoint;

/**
 * A small random generator (SplitMix64) whose whole state is one {@code long}, so that data shuffling can be saved
 * in a checkpoint and resumed exactly ({@link java.util.Random} and {@link java.util.SplittableRandom} hide their
 * state). Not thread-safe: one per data loader.
 */
public final class ResumableRandom {
    private static final long GOLDEN_GAMMA = 0x9E3779B97F4A7C15L;
    private long state;

    private ResumableRandom(long state) {
        this.state = state;
    }

    /** A generator seeded with {@code seed} (the config's {@code seed}). */
    public static ResumableRandom seeded(long seed) {
        return new ResumableRandom(mix64(seed));
    }

    /** The generator exactly as it was when {@link #state()} returned {@code state}. */
    public static ResumableRandom fromState(long state) {
        return new ResumableRandom(state);
    }

    /** Everything needed to continue this sequence: store it with the checkpoint. */
    public long state() {
        return state;
    }

    public long nextLong() {
        state += GOLDEN_GAMMA;
        return mix64(state);
    }

    /** Uniform in {@code [0, bound)} without modulo bias. */
    public int nextInt(int bound) {
        if (bound <= 0) {
            throw new IllegalArgumentException("bound must be positive, got " + bound);
        }
        while (true) {
            long u = nextLong() >>> 1; // 63 uniform bits
            long r = u % bound;
            if (u - r + (bound - 1) >= 0) { // reject the incomplete last block
                return (int) r;
            }
        }
    }

    /** Uniform in {@code [0, 1)}. */
    public double nextDouble() {
        return (nextLong() >>> 11) * 0x1.0p-53;
    }

    /** Shuffles {@code a} in place (Fisher-Yates). */
    public void shuffle(int[] a) {
        for (int i = a.length - 1; i > 0; i--) {
            int j = nextInt(i + 1);
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }

    /**
     * The order of {@code n} examples in epoch {@code epoch}: a pure function of (seed, epoch), so a resumed run can
     * rebuild the current epoch's order and skip the batches already done, without any saved state.
     */
    public static int[] epochPermutation(int n, long seed, long epoch) {
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        seeded(seed ^ mix64(epoch + 0x632BE59BD9B4E019L)).shuffle(order);
        return order;
    }

    private static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
