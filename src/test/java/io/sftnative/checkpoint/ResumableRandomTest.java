package io.sftnative.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;

import org.junit.jupiter.api.Test;

class ResumableRandomTest {
    @Test
    void stateResumesTheExactSequence() {
        ResumableRandom r = ResumableRandom.seeded(42);
        for (int i = 0; i < 10; i++) {
            r.nextInt(100);
        }
        long state = r.state();
        long[] rest = {r.nextLong(), r.nextInt(7), Double.doubleToLongBits(r.nextDouble())};
        ResumableRandom back = ResumableRandom.fromState(state);
        assertArrayEquals(rest, new long[] {back.nextLong(), back.nextInt(7), Double.doubleToLongBits(
                back.nextDouble())});
    }

    @Test
    void shuffleIsAPermutationAndUniformEnough() {
        int[] counts = new int[5];
        ResumableRandom r = ResumableRandom.seeded(1);
        for (int t = 0; t < 20000; t++) {
            int[] a = {0, 1, 2, 3, 4};
            r.shuffle(a);
            int[] sorted = a.clone();
            Arrays.sort(sorted);
            assertArrayEquals(new int[] {0, 1, 2, 3, 4}, sorted);
            counts[a[0]]++;
        }
        for (int c : counts) {
            assertTrue(Math.abs(c - 4000) < 300, Arrays.toString(counts)); // ~5 sigma
        }
    }

    @Test
    void epochPermutationIsAPureFunctionOfSeedAndEpoch() {
        int[] e0 = ResumableRandom.epochPermutation(50, 42, 0);
        assertArrayEquals(e0, ResumableRandom.epochPermutation(50, 42, 0));
        assertFalse(Arrays.equals(e0, ResumableRandom.epochPermutation(50, 42, 1)));
        assertFalse(Arrays.equals(e0, ResumableRandom.epochPermutation(50, 43, 0)));
        assertEquals(0, ResumableRandom.epochPermutation(0, 42, 0).length);
    }
}
