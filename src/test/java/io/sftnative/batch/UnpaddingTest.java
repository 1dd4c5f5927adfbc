package io.sftnative.batch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

import io.sftnative.data.Example;

/** The host layout of a padding-free batch: tokens, labels, segments, positions and target count. */
class UnpaddingTest {

    static Example example(int[] ids, int[] labels) {
        int[] mask = new int[ids.length];
        int[] pos = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            mask[i] = 1;
            pos[i] = i;
        }
        return new Example(ids, labels, mask, pos);
    }

    /** Three rows of lengths 3, 5, 2, right-padded to 8 with pad id 0. */
    static Batch padded() {
        return new Collator(0, 8, false).collate(List.of(
                example(new int[] {11, 12, 13}, new int[] {-100, 12, 13}),
                example(new int[] {21, 22, 23, 24, 25}, new int[] {21, -100, 23, 24, 25}),
                example(new int[] {31, 32}, new int[] {-100, 32})));
    }

    @Test
    void oneRowHoldsTheRealTokensAsSegmentsWithTheirPositions() {
        Batch b = padded();
        assertEquals(8, b.seqLen());
        Batch u = Unpadding.unpad(b, 1);
        assertEquals(1, u.batchSize());
        assertEquals(10, u.seqLen());
        assertTrue(u.segmentIds());
        assertArrayEquals(new long[] {11, 12, 13, 21, 22, 23, 24, 25, 31, 32}, u.inputIds());
        // every row's first label becomes -100: it was never a target, and would now be the previous row's
        assertArrayEquals(new long[] {-100, 12, 13, -100, -100, 23, 24, 25, -100, 32}, u.labels());
        assertArrayEquals(new long[] {1, 1, 1, 2, 2, 2, 2, 2, 3, 3}, u.attentionMask());
        assertArrayEquals(new long[] {0, 1, 2, 0, 1, 2, 3, 4, 0, 1}, u.positionIds());
        assertEquals(b.targetTokens(), u.targetTokens());
        assertEquals(targets(b), targets(u));
    }

    @Test
    void moreRowsBalanceTheLongestFirstAndPadTheShorterRow() {
        Batch u = Unpadding.unpad(padded(), 2);
        assertEquals(2, u.batchSize());
        assertEquals(5, u.seqLen()); // LPT: [5] and [3, 2]
        assertArrayEquals(new long[] {21, 22, 23, 24, 25, 11, 12, 13, 31, 32}, u.inputIds());
        assertArrayEquals(new long[] {1, 1, 1, 1, 1, 1, 1, 1, 2, 2}, u.attentionMask());
        assertEquals(padded().targetTokens(), targets(u));
        Batch v = Unpadding.unpad(padded(), 5); // never more rows than there are sequences
        assertEquals(3, v.batchSize());
        assertEquals(5, v.seqLen());
        assertEquals(0, v.attentionMask()[2 * 5 + 4]); // padding of a shorter row: segment 0, label -100
        assertEquals(-100, v.labels()[2 * 5 + 4]);
        assertEquals(padded().targetTokens(), targets(v));
    }

    @Test
    void neatPackedRowsKeepTheirSegmentsWithDistinctIds() {
        // row 0: segments 1 (2 tokens), 2 (2 tokens), padding; row 1: segment 1 (3 tokens), padding
        long[] ids = {1, 2, 3, 4, 0, 0, 5, 6, 7, 0, 0, 0};
        long[] labels = {-100, 2, -100, 4, -100, -100, -100, 6, 7, -100, -100, -100};
        long[] mask = {1, 1, 2, 2, 0, 0, 1, 1, 1, 0, 0, 0};
        long[] pos = {0, 1, 0, 1, 0, 0, 0, 1, 2, 0, 0, 0};
        Batch b = new Batch(2, 6, ids, labels, mask, pos, 4, true);
        Batch u = Unpadding.unpad(b, 1);
        assertArrayEquals(new long[] {1, 2, 3, 4, 5, 6, 7}, u.inputIds());
        assertArrayEquals(new long[] {1, 1, 2, 2, 3, 3, 3}, u.attentionMask());
        assertArrayEquals(new long[] {0, 1, 0, 1, 0, 1, 2}, u.positionIds());
        assertArrayEquals(new long[] {-100, 2, -100, 4, -100, 6, 7}, u.labels());
        assertEquals(4, targets(u));
    }

    @Test
    void nothingToDropOrNotRightPaddedKeepsTheBatch() {
        long[] ones = {1, 1, 1, 1};
        long[] ids = {1, 2, 3, 4};
        long[] pos = {0, 1, 0, 1};
        assertNull(Unpadding.unpad(new Batch(2, 2, ids, ids, ones, pos, 2, false), 1));
        long[] left = {0, 1, 1, 1};
        assertNull(Unpadding.unpad(new Batch(2, 2, ids, ids, left, pos, 2, false), 1));
        long[] hole = {1, 0, 1, 1, 1, 0}; // row 0: 1 0 1
        assertNull(Unpadding.unpad(new Batch(2, 3, new long[6], new long[6], hole, new long[6], 0, false), 1));
        assertThrows(IllegalArgumentException.class, () -> Unpadding.unpad(padded(), 0));
    }

    /** labels[r, t] != -100 for t >= 1, counted as the collator does. */
    static long targets(Batch b) {
        long n = 0;
        for (int r = 0; r < b.batchSize(); r++) {
            for (int t = 1; t < b.seqLen(); t++) {
                n += b.labels()[r * b.seqLen() + t] != -100 ? 1 : 0;
            }
        }
        return n;
    }
}
