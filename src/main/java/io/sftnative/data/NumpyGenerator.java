package io.sftnative.data;

import java.math.BigInteger;

/**
 * numpy's {@code np.random.default_rng(seed)}: PCG64 (128-bit LCG, XSL-RR output) seeded through SeedSequence.
 * HF datasets' {@code interleave_datasets} picks each example's source with {@code rng.choice(k, size=1000, p=...)}
 * from it, so LLaMA-Factory's {@code interleave_probs} mixes reproduce exactly. Checked against numpy 2.4 in
 * {@code NumpyRandomTest}.
 */
final class NumpyGenerator {
    private static final BigInteger MASK128 = BigInteger.ONE.shiftLeft(128).subtract(BigInteger.ONE);
    private static final BigInteger MULT = new BigInteger("2549297995355413924").shiftLeft(64)
            .add(new BigInteger("4865540595714422341"));
    // 128-bit state and increment as (hi, lo) words; BigInteger only at seeding, plain longs per draw
    private long stateHi;
    private long stateLo;
    private final long incHi;
    private final long incLo;
    private static final long MULT_HI = MULT.shiftRight(64).longValue();
    private static final long MULT_LO = MULT.longValue();

    NumpyGenerator(long seed) {
        if (seed < 0) {
            throw new IllegalArgumentException("numpy seeds must be non-negative, got " + seed);
        }
        long[] words = seedSequenceState(seed);
        BigInteger initState = u64(words[0]).shiftLeft(64).or(u64(words[1]));
        BigInteger initSeq = u64(words[2]).shiftLeft(64).or(u64(words[3]));
        BigInteger inc = initSeq.shiftLeft(1).or(BigInteger.ONE).and(MASK128);
        incHi = inc.shiftRight(64).longValue();
        incLo = inc.longValue();
        stateHi = 0;
        stateLo = 0;
        step();
        BigInteger s = u64(stateHi).shiftLeft(64).or(u64(stateLo)).add(initState).and(MASK128);
        stateHi = s.shiftRight(64).longValue();
        stateLo = s.longValue();
        step();
    }

    private static BigInteger u64(long v) {
        return new BigInteger(Long.toUnsignedString(v));
    }

    /** state = state * MULT + inc (mod 2^128). */
    private void step() {
        long lo = stateLo * MULT_LO;
        long hi = Math.unsignedMultiplyHigh(stateLo, MULT_LO) + stateHi * MULT_LO + stateLo * MULT_HI;
        long newLo = lo + incLo;
        long carry = Long.compareUnsigned(newLo, lo) < 0 ? 1 : 0;
        stateHi = hi + incHi + carry;
        stateLo = newLo;
    }

    long nextLong() {
        step();
        long xored = stateHi ^ stateLo;
        int rot = (int) (stateHi >>> 58);
        return Long.rotateRight(xored, rot);
    }

    private boolean hasUint32;
    private int uint32;

    /** PCG64's next_uint32: the low half of a 64-bit draw, then (next call) its high half. */
    int nextInt() {
        if (hasUint32) {
            hasUint32 = false;
            return uint32;
        }
        long next = nextLong();
        hasUint32 = true;
        uint32 = (int) (next >>> 32);
        return (int) next;
    }

    /**
     * {@code rng.integers(0, n, size)} for {@code 1 <= n <= 2^32} (int64 output): numpy's 32-bit Lemire method
     * (a draw times n, rejecting the low word below {@code (2^32 - n) % n}).
     */
    int[] integers(long n, int size) {
        if (n < 1 || n > 1L << 32) {
            throw new IllegalArgumentException("integers(0, " + n + ")");
        }
        int[] out = new int[size];
        if (n == 1) {
            return out;
        }
        long rngExcl = n; // numpy's rng + 1
        for (int i = 0; i < size; i++) {
            if (n == 1L << 32) {
                out[i] = nextInt();
                continue;
            }
            long m = Integer.toUnsignedLong(nextInt()) * rngExcl;
            long leftover = m & 0xFFFFFFFFL;
            if (leftover < rngExcl) {
                long threshold = (0xFFFFFFFFL - (n - 1)) % rngExcl;
                while (leftover < threshold) {
                    m = Integer.toUnsignedLong(nextInt()) * rngExcl;
                    leftover = m & 0xFFFFFFFFL;
                }
            }
            out[i] = (int) (m >>> 32);
        }
        return out;
    }

    /** {@code rng.integers(0, 1 << 63)}: Lemire with a power-of-two range never rejects, so the top 63 bits. */
    long integersBelow2To63() {
        return nextLong() >>> 1;
    }

    /** numpy's random_interval(max): masked rejection sampling in [0, max] (32-bit draws for a 32-bit max). */
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
        long value;
        if (max <= 0xFFFFFFFFL) {
            while ((value = Integer.toUnsignedLong(nextInt()) & mask) > max) {
                // rejected: draw again
            }
        } else {
            while (Long.compareUnsigned(value = nextLong() & mask, max) > 0) {
                // rejected: draw again
            }
        }
        return value;
    }

    /** {@code rng.shuffle(a_python_list)}: Fisher-Yates from the end with {@link #interval}. */
    <T> void shuffle(java.util.List<T> x) {
        for (int i = x.size() - 1; i >= 1; i--) {
            int j = (int) interval(i);
            T t = x.get(i);
            x.set(i, x.get(j));
            x.set(j, t);
        }
    }

    /** {@code rng.random()}: 53 random bits in [0, 1). */
    double nextDouble() {
        return (nextLong() >>> 11) * (1.0 / 9007199254740992.0);
    }

    /**
     * {@code rng.choice(p.length, size, p=p)}: inverse-CDF draws (cumulative sum normalised by its last entry,
     * then the right-side search of each uniform draw). p must be non-negative and sum to 1 within numpy's tolerance.
     */
    int[] choice(double[] p, int size) {
        double[] cdf = new double[p.length];
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            sum += p[i];
            cdf[i] = sum;
        }
        double last = cdf[p.length - 1];
        for (int i = 0; i < cdf.length; i++) {
            cdf[i] /= last;
        }
        int[] out = new int[size];
        for (int i = 0; i < size; i++) {
            double u = nextDouble();
            int lo = 0;
            int hi = cdf.length; // first index with cdf > u
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (cdf[mid] <= u) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            out[i] = lo;
        }
        return out;
    }

    /** SeedSequence(seed).generate_state(4, uint64): the entropy hashed into a 4-word pool, then 8 output words. */
    static long[] seedSequenceState(long seed) {
        int[] entropy = seed <= 0xFFFFFFFFL ? new int[] {(int) seed} : new int[] {(int) seed, (int) (seed >>> 32)};
        int[] pool = new int[4];
        int[] hashConst = {0x43b0d7e5};
        for (int i = 0; i < pool.length; i++) {
            pool[i] = hashmix(i < entropy.length ? entropy[i] : 0, hashConst);
        }
        for (int src = 0; src < pool.length; src++) {
            for (int dst = 0; dst < pool.length; dst++) {
                if (src != dst) {
                    pool[dst] = mix(pool[dst], hashmix(pool[src], hashConst));
                }
            }
        }
        for (int src = pool.length; src < entropy.length; src++) {
            for (int dst = 0; dst < pool.length; dst++) {
                pool[dst] = mix(pool[dst], hashmix(entropy[src], hashConst));
            }
        }
        int[] words = new int[8];
        int h = 0x8b51f9dd;
        for (int i = 0; i < words.length; i++) {
            int v = pool[i % pool.length];
            v ^= h;
            h *= 0x58f38ded;
            v *= h;
            v ^= v >>> 16;
            words[i] = v;
        }
        long[] out = new long[4];
        for (int i = 0; i < 4; i++) { // little-endian pairs of 32-bit words
            out[i] = Integer.toUnsignedLong(words[2 * i]) | ((long) words[2 * i + 1] << 32);
        }
        return out;
    }

    private static int hashmix(int value, int[] hashConst) {
        value ^= hashConst[0];
        hashConst[0] *= 0x931e8875;
        value *= hashConst[0];
        value ^= value >>> 16;
        return value;
    }

    private static int mix(int x, int y) {
        int r = 0xca01f9dd * x - 0x4973f715 * y;
        r ^= r >>> 16;
        return r;
    }
}
