package io.sftnative.data;

/**
 * numpy's legacy global generator ({@code np.random.seed}, {@code permutation}, {@code choice} without
 * probabilities): MT19937 seeded with one 32-bit integer, bounded integers by masked rejection. LLaMA-Factory draws
 * {@code num_samples} with it after transformers' {@code set_seed(seed)}, so the same seed selects the same records.
 * Checked against numpy 2.4 in {@code NumpyRandomTest}.
 */
final class NumpyRandomState {
    private static final int N = 624;
    private static final int M = 397;
    private final int[] mt = new int[N];
    private int mti;

    /** {@code np.random.seed(seed)}: seed must fit in 32 bits unsigned, as numpy requires. */
    NumpyRandomState(long seed) {
        if (seed < 0 || seed > 0xFFFFFFFFL) {
            throw new IllegalArgumentException("numpy seeds must be between 0 and 2**32 - 1, got " + seed);
        }
        mt[0] = (int) seed;
        for (int i = 1; i < N; i++) {
            mt[i] = 1812433253 * (mt[i - 1] ^ (mt[i - 1] >>> 30)) + i;
        }
        mti = N;
    }

    /** The next 32 random bits (MT19937 genrand_int32). */
    int nextInt32() {
        if (mti >= N) {
            for (int k = 0; k < N; k++) {
                int y = (mt[k] & 0x80000000) | (mt[(k + 1) % N] & 0x7fffffff);
                mt[k] = mt[(k + M) % N] ^ (y >>> 1) ^ ((y & 1) == 0 ? 0 : 0x9908b0df);
            }
            mti = 0;
        }
        int y = mt[mti++];
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >>> 18;
        return y;
    }

    /** A uniform integer in [0, max] by rejection on the smallest covering bit mask (numpy's random_interval). */
    long interval(long max) {
        if (max == 0) {
            return 0;
        }
        long mask = max;
        mask |= mask >>> 1;
        mask |= mask >>> 2;
        mask |= mask >>> 4;
        mask |= mask >>> 8;
        mask |= mask >>> 16;
        mask |= mask >>> 32;
        if (max <= 0xFFFFFFFFL) {
            long v;
            do {
                v = Integer.toUnsignedLong(nextInt32()) & mask;
            } while (v > max);
            return v;
        }
        long v;
        do {
            v = ((Integer.toUnsignedLong(nextInt32()) << 32) | Integer.toUnsignedLong(nextInt32())) & mask;
        } while (Long.compareUnsigned(v, max) > 0);
        return v;
    }

    /** {@code np.random.permutation(n)}: a Fisher-Yates shuffle of 0..n-1 from the last position down. */
    int[] permutation(int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = (int) interval(i);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    /** {@code np.random.choice(n, size)}: size draws from 0..n-1 with replacement (legacy randint). */
    int[] choice(int n, int size) {
        int[] out = new int[size];
        for (int i = 0; i < size; i++) {
            out[i] = (int) interval(n - 1L);
        }
        return out;
    }
}
