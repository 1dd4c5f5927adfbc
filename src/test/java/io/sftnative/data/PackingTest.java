package io.sftnative.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Greedy knapsack and packed rows (spec section 4), on pre-tokenized data so no tokenizer is needed. */
class PackingTest {
    static final int X = SupervisedEncoder.IGNORE_INDEX;

    @TempDir
    Path dir;

    @Test
    void greedyKnapsackTakesTheLargestFittingLength() {
        List<int[]> bins = Packing.greedyKnapsack(new int[] {5, 3, 8, 2, 7}, 10);
        assertEquals(3, bins.size());
        assertArrayEquals(new int[] {8, 2}, bins.get(0));
        assertArrayEquals(new int[] {7, 3}, bins.get(1));
        assertArrayEquals(new int[] {5}, bins.get(2));
    }

    static DatasetLoader.Options options(Path file, Path cache, int cutoff, boolean packing, boolean neat) {
        return new DatasetLoader.Options(List.of(file.toString()), List.of(), null, "sft", cutoff, 0, 0, packing,
                neat, false, false, 1, false, cache, 42, false);
    }

    private Path pretokenized() throws Exception {
        Path f = dir.resolve("tok.jsonl");
        Files.writeString(f, """
                {"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}
                {"input_ids": [4, 5, 6, 7, 8], "labels": [-100, -100, 6, 7, 8]}
                {"input_ids": [9, 10]}
                {"input_ids": [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]}
                """);
        return f;
    }

    @Test
    void plainPackingRestartsPositionsAndAttendsEverywhere() throws Exception {
        // cutoff 8 -> packing capacity 7, rows of 8. Lengths 3, 5, 2; the 10-token example is too long and dropped.
        try (LoadedData d = DatasetLoader.load(options(pretokenized(), dir.resolve("c"), 8, true, false), null, null,
                m -> {})) {
            assertEquals(1, d.trainReport().dropped().size());
            assertEquals(2, d.train().size());
            // knapsack on [2, 3, 5] capacity 7: bin 1 = 5 + 2, bin 2 = 3
            Example a = d.train().get(0);
            assertArrayEquals(new int[] {4, 5, 6, 7, 8, 9, 10, 0}, a.inputIds());
            assertArrayEquals(new int[] {X, X, 6, 7, 8, 9, 10, X}, a.labels());
            assertArrayEquals(new int[] {0, 1, 2, 3, 4, 0, 1, 0}, a.positionIds());
            assertArrayEquals(new int[] {1, 1, 1, 1, 1, 1, 1, 1}, a.attentionMask(), "plain packing: all 1");
            Example b = d.train().get(1);
            assertArrayEquals(new int[] {1, 2, 3, 0, 0, 0, 0, 0}, b.inputIds());
            assertArrayEquals(new int[] {X, 2, 3, X, X, X, X, X}, b.labels());
            assertArrayEquals(new int[] {0, 1, 2, 0, 0, 0, 0, 0}, b.positionIds());
        }
    }

    @Test
    void neatPackingUsesSegmentIdsAndZeroOnPadding() throws Exception {
        try (LoadedData d = DatasetLoader.load(options(pretokenized(), dir.resolve("c"), 8, false, true), null, null,
                m -> {})) {
            assertEquals(true, d.neatPacking());
            assertArrayEquals(new int[] {1, 1, 1, 1, 1, 2, 2, 0}, d.train().get(0).attentionMask());
            assertArrayEquals(new int[] {1, 1, 1, 0, 0, 0, 0, 0}, d.train().get(1).attentionMask());
        }
    }

    @Test
    void withoutPackingLongExamplesAreTruncatedNotDropped() throws Exception {
        try (LoadedData d = DatasetLoader.load(options(pretokenized(), dir.resolve("c"), 8, false, false), null,
                null, m -> {})) {
            assertEquals(4, d.train().size());
            assertEquals(1, d.trainReport().truncated());
            assertArrayEquals(new int[] {11, 12, 13, 14, 15, 16, 17, 18}, d.train().get(3).inputIds());
            assertArrayEquals(new int[] {9, 10}, d.train().get(2).labels(), "labels default to input_ids");
            assertArrayEquals(new int[] {1, 1}, d.train().get(2).attentionMask());
        }
    }

    @Test
    void packingWorksWithinChunksOf1000RecordsLikeLlamaFactory() throws Exception {
        Path f = dir.resolve("many.jsonl");
        StringBuilder sb = new StringBuilder();
        int n = 2500;
        int[][] lengthsPerChunk = new int[3][];
        for (int c = 0; c < 3; c++) {
            lengthsPerChunk[c] = new int[Math.min(1000, n - c * 1000)];
        }
        for (int i = 0; i < n; i++) {
            int len = i % 7 + 1;
            lengthsPerChunk[i / 1000][i % 1000] = len;
            sb.append("{\"input_ids\": [");
            for (int k = 0; k < len; k++) {
                sb.append(k == 0 ? "" : ", ").append(i);
            }
            sb.append("]}\n");
        }
        Files.writeString(f, sb);
        int expectedRows = 0;
        for (int[] lengths : lengthsPerChunk) {
            expectedRows += Packing.greedyKnapsack(lengths, 15).size();
        }
        try (LoadedData d = DatasetLoader.load(options(f, dir.resolve("c"), 16, true, false), null, null, m -> {})) {
            assertEquals(n, d.trainReport().kept());
            assertEquals(expectedRows, d.train().size());
            long tokens = 0;
            for (int r = 0; r < d.train().size(); r++) {
                Example e = d.train().get(r);
                assertEquals(16, e.length());
                int chunk = -1;
                for (int t = 0; t < e.length(); t++) {
                    if (e.attentionMask()[t] == 0 || e.labels()[t] == X) {
                        continue;
                    }
                    tokens++;
                    int c = e.inputIds()[t] / 1000;
                    if (chunk < 0) {
                        chunk = c;
                    }
                    assertEquals(chunk, c, "a row never mixes records of different chunks");
                }
            }
            assertEquals(d.trainReport().tokens(), tokens);
        }
    }
}
