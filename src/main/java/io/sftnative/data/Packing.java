package io.sftnative.data;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * LLaMA-Factory's packing: a greedy knapsack over the example lengths of one preprocessing chunk, each bin becoming
 * one row of exactly {@code capacity + 1} tokens (the packing cutoff is cutoff_len - 1, rows are cutoff_len long).
 */
public final class Packing {
    private Packing() {}

    /** A stored row: ids, labels and the lengths of the sequences in it (padding follows their sum). */
    record Row(int[] ids, int[] labels, int[] segLens) {}

    /**
     * Bins of lengths: sort ascending; for each new bin repeatedly take the largest length that still fits (binary
     * search); a new bin when none fits. Every length must be at most {@code capacity}.
     */
    public static List<int[]> greedyKnapsack(int[] lengths, int capacity) {
        int[] sorted = lengths.clone();
        Arrays.sort(sorted);
        List<Integer> numbers = new ArrayList<>(sorted.length);
        for (int l : sorted) {
            if (l > capacity) {
                throw new IllegalArgumentException("length " + l + " exceeds the packing capacity " + capacity);
            }
            numbers.add(l);
        }
        List<int[]> bins = new ArrayList<>();
        while (!numbers.isEmpty()) {
            List<Integer> bin = new ArrayList<>();
            int remaining = capacity;
            while (true) {
                int index = upperBound(numbers, remaining) - 1; // Python bisect.bisect (right) - 1
                if (index < 0) {
                    break;
                }
                remaining -= numbers.get(index);
                bin.add(numbers.remove(index));
            }
            bins.add(bin.stream().mapToInt(Integer::intValue).toArray());
        }
        return bins;
    }

    private static int upperBound(List<Integer> a, int x) {
        int lo = 0;
        int hi = a.size();
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (a.get(mid) <= x) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /**
     * Packs examples (ids, labels) into rows of {@code capacity + 1} tokens: right-padded with {@code padId}, label
     * -100. Examples with the same length are taken last-in first (LLaMA-Factory's {@code length2indexes.pop()}).
     */
    static List<Row> pack(List<int[][]> examples, int capacity, int padId) {
        int[] lengths = new int[examples.size()];
        Map<Integer, Deque<Integer>> byLength = new HashMap<>();
        for (int i = 0; i < lengths.length; i++) {
            lengths[i] = examples.get(i)[0].length;
            byLength.computeIfAbsent(lengths[i], k -> new ArrayDeque<>()).addLast(i);
        }
        List<Row> rows = new ArrayList<>();
        for (int[] bin : greedyKnapsack(lengths, capacity)) {
            int[] ids = new int[capacity + 1];
            int[] labels = new int[capacity + 1];
            Arrays.fill(ids, padId);
            Arrays.fill(labels, SupervisedEncoder.IGNORE_INDEX);
            int[] segLens = new int[bin.length];
            int at = 0;
            for (int k = 0; k < bin.length; k++) {
                int[][] ex = examples.get(byLength.get(bin[k]).removeLast());
                System.arraycopy(ex[0], 0, ids, at, ex[0].length);
                System.arraycopy(ex[1], 0, labels, at, ex[1].length);
                segLens[k] = ex[0].length;
                at += ex[0].length;
            }
            rows.add(new Row(ids, labels, segLens));
        }
        return rows;
    }
}
