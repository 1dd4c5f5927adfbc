package io.sftnative.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.data.DatasetSampling.MixStrategy;

/**
 * dataset_info's num_samples, max_samples, mix_strategy / interleave_probs and eval_on_each_dataset pick the records
 * LLaMA-Factory picks (goldens: tools/golden/gen_numpy_sampling_golden.py). Records are pre-tokenized
 * {@code input_ids = [dataset * 100 + index]} so each row names the record it came from.
 */
class DatasetMixTest {
    static JsonNode golden;

    @TempDir
    Path dir;

    @BeforeAll
    static void load() throws IOException {
        try (InputStream in = DatasetMixTest.class.getResourceAsStream("/golden/data/numpy_sampling.json")) {
            golden = new ObjectMapper().readTree(in);
        }
    }

    /** Dataset d with n records, record i pre-tokenized as [d * 100 + i]. */
    void data(int d, int n) throws IOException {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < n; i++) {
            b.append("{\"input_ids\": [").append(d * 100 + i).append("]}\n");
        }
        Files.writeString(dir.resolve("d" + d + ".jsonl"), b);
    }

    void info(String json) throws IOException {
        Files.writeString(dir.resolve("dataset_info.json"), json);
    }

    DatasetLoader.Options opts(List<String> train, List<String> eval, int maxSamples, DatasetLoader.Mix mix,
            Path cache) {
        return new DatasetLoader.Options(train, eval, dir, "pt", 16, maxSamples, 0, false, false, false, false, 1,
                false, cache, 42, false, mix);
    }

    static int[] ids(ExampleSet s) {
        return IntStream.range(0, s.size()).map(i -> s.get(i).inputIds()[0]).toArray();
    }

    static int[] ints(JsonNode n) {
        return NumpyRandomTest.ints(n);
    }

    @Test
    void roundRobinInterleavesAsHfDatasets() {
        int[] lengths = {3, 4, 5};
        assertArrayEquals(new int[] {0, 3, 7, 1, 4, 8, 2, 5, 9},
                DatasetSampling.interleave(lengths, null, 0, MixStrategy.INTERLEAVE_UNDER));
        assertArrayEquals(new int[] {0, 3, 7, 1, 4, 8, 2, 5, 9, 0, 6, 10, 1, 3, 11},
                DatasetSampling.interleave(lengths, null, 0, MixStrategy.INTERLEAVE_OVER));
        assertArrayEquals(new int[] {0, 3, 7, 1, 4, 8, 2, 5, 9, 6, 10, 11},
                DatasetSampling.interleave(lengths, null, 0, MixStrategy.INTERLEAVE_ONCE));
    }

    @Test
    void probabilisticInterleaveMatchesTheGolden() {
        for (JsonNode c : golden.get("interleave")) {
            double[] p = new double[c.get("probs").size()];
            for (int i = 0; i < p.length; i++) {
                p[i] = c.get("probs").get(i).asDouble();
            }
            MixStrategy m = switch (c.get("strategy").asText()) {
                case "first_exhausted" -> MixStrategy.INTERLEAVE_UNDER;
                case "all_exhausted" -> MixStrategy.INTERLEAVE_OVER;
                default -> MixStrategy.INTERLEAVE_ONCE;
            };
            assertArrayEquals(ints(c.get("indices")),
                    DatasetSampling.interleave(ints(c.get("lengths")), p, c.get("seed").asLong(), m), c.toString());
        }
    }

    @Test
    void numSamplesTakesOrRepeatsWithLlamaFactorysDrawsThenMaxSamplesCuts() throws Exception {
        data(1, 7);
        data(2, 4);
        info("""
                {"a": {"file_name": "d1.jsonl", "num_samples": 3},
                 "b": {"file_name": "d2.jsonl", "num_samples": 10}}
                """);
        JsonNode g = golden.get("num_samples");
        int[] first = ints(g.get("first").get("indices"));
        int[] second = ints(g.get("second").get("indices"));
        List<String> log = new ArrayList<>();
        try (LoadedData d = DatasetLoader.load(opts(List.of("a", "b"), List.of(), 0, DatasetLoader.Mix.CONCAT,
                dir.resolve("c1")), null, null, log::add)) {
            int[] expect = IntStream.concat(IntStream.of(first).map(i -> 100 + i),
                    IntStream.of(second).map(i -> 200 + i)).toArray();
            assertArrayEquals(expect, ids(d.train()));
            assertTrue(log.stream().anyMatch(l -> l.contains("sampled 10 of 4 records from dataset 'b'")), "" + log);
        }
        // max_samples keeps the first records of each sampled dataset
        try (LoadedData d = DatasetLoader.load(opts(List.of("a", "b"), List.of(), 2, DatasetLoader.Mix.CONCAT,
                dir.resolve("c1")), null, null, m -> {})) {
            assertArrayEquals(new int[] {100 + first[0], 100 + first[1], 200 + second[0], 200 + second[1]},
                    ids(d.train()));
        }
    }

    @Test
    void evalDrawsContinueTheTrainDrawsEvenWhenTrainComesFromTheCache() throws Exception {
        data(1, 7);
        data(2, 4);
        info("""
                {"a": {"file_name": "d1.jsonl", "num_samples": 3},
                 "b": {"file_name": "d2.jsonl", "num_samples": 10}}
                """);
        int[] fresh;
        try (LoadedData d = DatasetLoader.load(opts(List.of("a"), List.of("b"), 0, DatasetLoader.Mix.CONCAT,
                dir.resolve("fresh")), null, null, m -> {})) {
            fresh = ids(d.eval());
        }
        assertArrayEquals(IntStream.of(ints(golden.get("num_samples").get("second").get("indices")))
                .map(i -> 200 + i).toArray(), fresh);
        Path cache = dir.resolve("warm");
        try (LoadedData d = DatasetLoader.load(opts(List.of("a"), List.of(), 0, DatasetLoader.Mix.CONCAT, cache),
                null, null, m -> {})) {
            assertEquals(3, d.train().size());
        }
        List<String> log = new ArrayList<>();
        try (LoadedData d = DatasetLoader.load(opts(List.of("a"), List.of("b"), 0, DatasetLoader.Mix.CONCAT, cache),
                null, null, log::add)) {
            assertTrue(log.stream().anyMatch(l -> l.contains("using the tokenized train cache")), "" + log);
            assertArrayEquals(fresh, ids(d.eval()));
        }
    }

    @Test
    void interleaveMixesTheDatasetsAndEvalOnEachKeepsThemApart() throws Exception {
        data(0, 5);
        data(1, 3);
        data(2, 4);
        info("""
                {"x": {"file_name": "d0.jsonl"}, "y": {"file_name": "d1.jsonl"}, "z": {"file_name": "d2.jsonl"}}
                """);
        JsonNode c = golden.get("interleave").get(1); // lengths 5,3,4; all_exhausted; seed 42
        int[] offsets = {0, 5, 8};
        int[] expect = IntStream.of(ints(c.get("indices"))).map(g -> {
            int d = g >= 8 ? 2 : g >= 5 ? 1 : 0;
            return d * 100 + g - offsets[d];
        }).toArray();
        var mix = new DatasetLoader.Mix("interleave_over", List.of(0.2, 0.3, 0.5), true);
        try (LoadedData d = DatasetLoader.load(opts(List.of("x", "y", "z"), List.of("y", "z"), 0, mix,
                dir.resolve("c")), null, null, m -> {})) {
            assertArrayEquals(expect, ids(d.train()));
            assertEquals(List.of("y", "z"), List.copyOf(d.evalSets().keySet()));
            assertArrayEquals(new int[] {100, 101, 102}, ids(d.evalSets().get("y")));
            assertArrayEquals(new int[] {200, 201, 202, 203}, ids(d.evalSets().get("z")));
        }
        var badSum = new DatasetLoader.Mix("interleave_under", List.of(0.2, 0.3, 0.4), false);
        DataException e = assertThrows(DataException.class, () -> DatasetLoader.load(opts(List.of("x", "y", "z"),
                List.of(), 0, badSum, dir.resolve("c")), null, null, m -> {}));
        assertTrue(e.getMessage().contains("sum to 1"), e.getMessage());
        var zero = new DatasetLoader.Mix("interleave_over", List.of(0.5, 0.5, 0.0), false);
        e = assertThrows(DataException.class, () -> DatasetLoader.load(opts(List.of("x", "y", "z"), List.of(), 0,
                zero, dir.resolve("c")), null, null, m -> {}));
        assertTrue(e.getMessage().contains("probability 0"), e.getMessage());
    }

    @Test
    void aPredictConfigNeedsOnlyEvalDataset() throws Exception {
        data(1, 3);
        info("{\"b\": {\"file_name\": \"d1.jsonl\"}}");
        try (LoadedData d = DatasetLoader.load(opts(List.of(), List.of("b"), 0, DatasetLoader.Mix.CONCAT,
                dir.resolve("c")), null, null, m -> {})) {
            assertTrue(d.train().isEmpty());
            assertArrayEquals(new int[] {100, 101, 102}, ids(d.eval()));
        }
    }

    @Test
    void everyDatasetInfoFieldIsUsedOrRefusedByName() throws Exception {
        data(1, 3);
        info("""
                {"typo": {"file_name": "d1.jsonl", "num_sample": 3},
                 "rank": {"file_name": "d1.jsonl", "ranking": true},
                 "kto": {"file_name": "d1.jsonl", "columns": {"kto_tag": "label"}},
                 "val": {"file_name": "d1.jsonl", "split": "validation"},
                 "hub": {"file_name": "d1.jsonl", "hf_hub_url": "org/data"},
                 "ms": {"ms_hub_url": "org/data"},
                 "col": {"file_name": "d1.jsonl", "columns": {"promt": "q"}},
                 "neg": {"file_name": "d1.jsonl", "num_samples": 0},
                 "sub": {"file_name": "d1.jsonl", "subset": "en", "split": "train"}}
                """);
        assertEquals("typo.num_sample", refused("typo", "did you mean 'num_samples'"));
        assertEquals("rank.ranking", refused("rank", "stage rm"));
        assertEquals("kto.columns.kto_tag", refused("kto", "stage kto"));
        assertEquals("val.split", refused("val", "split 'validation'"));
        // surefire sets HF_HUB_OFFLINE=1: no test downloads (HubDownloadTest uses a loopback hub)
        assertEquals("hub.hf_hub_url", refused("hub", "HF_HUB_OFFLINE is set, so sft-native does not download it"));
        assertEquals("ms.ms_hub_url", refused("ms", "not implemented in sft-native: ms_hub_url"));
        assertEquals("col.columns.promt", refused("col", "did you mean 'columns.prompt'"));
        assertEquals("neg.num_samples", refused("neg", ">= 1"));
        Files.writeString(dir.resolve("d.tsv"), "a\tb\n");
        DataException tsv = assertThrows(DataException.class, () -> DatasetSpec.resolve("d.tsv", dir));
        assertTrue(tsv.getMessage().contains("LLaMA-Factory does not read .tsv"), tsv.getMessage());
        List<String> log = new ArrayList<>();
        DatasetSpec.resolve("sub", dir, log::add);
        assertTrue(log.size() == 1 && log.get(0).contains("'subset'") && log.get(0).contains("no effect"), "" + log);
    }

    private String refused(String name, String text) {
        DataException e = assertThrows(DataException.class, () -> DatasetSpec.resolve(name, dir));
        assertTrue(e.getMessage().contains(text), e.getMessage());
        return e.key();
    }
}
