package io.sftnative.batch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

import io.sftnative.data.Example;

class CollatorTest {
    static final int X = -100;

    @Test
    void padsToTheLongestRoundedToAMultipleOf8() {
        Example a = Example.of(new int[] {5, 6, 7}, new int[] {X, 6, 7});
        Example b = Example.of(new int[] {8, 9, 10, 11, 12, 13, 14, 15, 16}, new int[] {X, X, X, X, 12, 13, 14, 15,
                16});
        Batch batch = new Collator(0, 8, false).collate(List.of(a, b));
        assertEquals(2, batch.batchSize());
        assertEquals(16, batch.seqLen(), "9 rounded up to 16");
        assertArrayEquals(new long[] {5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                java.util.Arrays.copyOfRange(batch.inputIds(), 0, 16));
        assertArrayEquals(new long[] {X, 6, 7, X, X, X, X, X, X, X, X, X, X, X, X, X},
                java.util.Arrays.copyOfRange(batch.labels(), 0, 16));
        assertArrayEquals(new long[] {1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                java.util.Arrays.copyOfRange(batch.attentionMask(), 0, 16));
        assertArrayEquals(new long[] {0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                java.util.Arrays.copyOfRange(batch.positionIds(), 0, 16));
        assertEquals(2 + 5, batch.targetTokens(), "non-ignored labels at t >= 1 (after the shift)");
        assertEquals(9, new Collator(0, 1, false).collate(List.of(a, b)).seqLen(), "no rounding");
    }

    @Test
    void firstLabelIsNeverATargetAfterTheShift() {
        Example a = Example.of(new int[] {1, 2}, new int[] {1, 2});
        assertEquals(1, new Collator(0, 1, false).collate(List.of(a)).targetTokens());
    }

    @Test
    void segmentIdsGiveBlockDiagonalCausalAttention() {
        // a neat-packed row: sequence 1 = tokens 0-2, sequence 2 = tokens 3-4, padding at 5
        Example packed = new Example(new int[] {1, 2, 3, 4, 5, 0}, new int[] {X, 2, 3, X, 5, X},
                new int[] {1, 1, 1, 2, 2, 0}, new int[] {0, 1, 2, 0, 1, 0});
        Batch b = new Collator(0, 1, true).collate(List.of(packed));
        assertTrue(b.attends(0, 2, 0));
        assertTrue(b.attends(0, 4, 3));
        assertFalse(b.attends(0, 3, 2), "no attention across packed sequences");
        assertFalse(b.attends(0, 0, 1), "causal");
        assertFalse(b.attends(0, 5, 4), "padding attends nowhere it matters, and nothing attends padding");
        assertFalse(b.attends(0, 4, 5));
        Batch plain = new Collator(0, 1, false).collate(List.of(packed));
        assertTrue(plain.attends(0, 3, 2), "plain packing: sequences see each other");
    }
}
