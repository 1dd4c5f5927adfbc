package io.sftnative.batch;

import java.util.Arrays;

/**
 * Padding-free layout of a right-padded batch: the real tokens of its B rows, concatenated into at most
 * {@code maxRows} rows as packed segments (one segment per original row, or the row's own segments for neat
 * packing), with the original position ids. A model whose attention runs on segment boundaries (our attention
 * kernel: the keys of each segment only) computes exactly the same loss and gradients on it as on the padded batch
 * (up to fp32 rounding from other GEMM shapes), without the work on padding positions that the padded batch pays.
 *
 * <p>Labels: the first token of every original row gets -100. Its label is never a target in the padded batch (the
 * causal-LM loss shifts labels left within a row), while in the concatenated row it would become the target of the
 * previous row's last token. Padding keeps -100, so the target tokens are the same ones, in the same count.
 *
 * <p>Output rows: with more than one, original rows go to the currently shortest output row, longest first (LPT),
 * so the rows come out nearly equal and pad little. More rows only serve the attention backward's parallelism (one
 * task per row and key/value head); the caller picks {@code maxRows}.
 */
public final class Unpadding {
    private Unpadding() {}

    /**
     * {@code b} without its padding, in {@code maxRows} rows or fewer; null when {@code b} has no padding to drop or
     * is not right-padded (a row whose tokens are not a prefix: left padding or holes).
     *
     * @param maxRows the most output rows (&ge; 1)
     */
    public static Batch unpad(Batch b, int maxRows) {
        if (maxRows < 1) {
            throw new IllegalArgumentException("maxRows must be >= 1, got " + maxRows);
        }
        int rows = b.batchSize();
        int t = b.seqLen();
        long[] mask = b.attentionMask(); // (B, T)
        int[] lengths = new int[rows];
        long padId = -1;
        int nonEmpty = 0;
        for (int r = 0; r < rows; r++) {
            int len = 0;
            while (len < t && mask[r * t + len] != 0) {
                len++;
            }
            for (int c = len; c < t; c++) {
                if (mask[r * t + c] != 0) {
                    return null; // a hole or left padding
                }
            }
            if (len < t && padId < 0) {
                padId = b.inputIds()[r * t + len];
            }
            lengths[r] = len;
            nonEmpty += len > 0 ? 1 : 0;
        }
        if (padId < 0 || nonEmpty == 0) {
            return null; // nothing to drop (or nothing left)
        }
        int[][] assignment = assign(lengths, Math.min(maxRows, nonEmpty));
        int outRows = assignment.length;
        int outLen = 0;
        for (int[] group : assignment) {
            int sum = 0;
            for (int r : group) {
                sum += lengths[r];
            }
            outLen = Math.max(outLen, sum);
        }
        long n = (long) outRows * outLen;
        long[] ids = new long[(int) n]; // (R, L)
        long[] labels = new long[(int) n]; // (R, L)
        long[] segments = new long[(int) n]; // (R, L) 1, 2, ... per original row's segment; 0 = padding
        long[] positions = new long[(int) n]; // (R, L)
        Arrays.fill(ids, padId);
        Arrays.fill(labels, -100L);
        for (int o = 0; o < outRows; o++) {
            int at = o * outLen;
            long segmentBase = 0; // segment ids used so far in this output row
            for (int r : assignment[o]) {
                int src = r * t;
                long maxSegment = 0;
                for (int c = 0; c < lengths[r]; c++) {
                    ids[at + c] = b.inputIds()[src + c];
                    labels[at + c] = c == 0 ? -100L : b.labels()[src + c];
                    long seg = b.segmentIds() ? mask[src + c] : 1; // neat packing: the row's own segments
                    segments[at + c] = segmentBase + seg;
                    maxSegment = Math.max(maxSegment, seg);
                    positions[at + c] = b.positionIds()[src + c];
                }
                segmentBase += maxSegment;
                at += lengths[r];
            }
        }
        return new Batch(outRows, outLen, ids, labels, segments, positions, b.targetTokens(), true);
    }

    /** Original rows (indices) per output row: LPT over the non-empty rows, each group in original row order. */
    private static int[][] assign(int[] lengths, int outRows) {
        Integer[] order = new Integer[lengths.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (x, y) -> lengths[y] != lengths[x] ? Integer.compare(lengths[y], lengths[x])
                : Integer.compare(x, y));
        long[] load = new long[outRows];
        int[] owner = new int[lengths.length];
        int[] count = new int[outRows];
        for (int i : order) {
            if (lengths[i] == 0) {
                owner[i] = -1; // an empty row: nothing to carry
                continue;
            }
            int best = 0;
            for (int o = 1; o < outRows; o++) {
                if (load[o] < load[best]) {
                    best = o;
                }
            }
            owner[i] = best;
            load[best] += lengths[i];
            count[best]++;
        }
        int[][] groups = new int[outRows][];
        int[] fill = new int[outRows];
        for (int o = 0; o < outRows; o++) {
            groups[o] = new int[count[o]];
        }
        for (int i = 0; i < lengths.length; i++) {
            if (owner[i] >= 0) {
                groups[owner[i]][fill[owner[i]]++] = i;
            }
        }
        return groups;
    }
}
