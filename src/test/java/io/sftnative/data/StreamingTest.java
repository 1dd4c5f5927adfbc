package io.sftnative.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.config.ConfigException;
import io.sftnative.config.SftConfig;
import io.sftnative.template.Templates;
import io.sftnative.testing.Shared;
import io.sftnative.tokenizer.Tokenizer;

/** streaming: true — HF's shuffle buffer order, training before the file is read, seeded reproducibility. */
class StreamingTest {
    static final int RECORDS = 3000;
    static Tokenizer qwen;

    @TempDir
    Path dir;

    @BeforeAll
    static void load() {
        qwen = Tokenizer.load(Shared.require("assets/tokenizers/qwen2_5"));
    }

    @AfterAll
    static void close() {
        if (qwen != null) {
            qwen.close();
        }
    }

    private Path data() throws Exception {
        Path f = dir.resolve("big.jsonl");
        if (!Files.exists(f)) {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < RECORDS; i++) {
                b.append("{\"instruction\": \"question ").append(i).append("\", \"output\": \"answer ").append(i)
                        .append("\"}\n");
            }
            Files.writeString(f, b);
        }
        return f;
    }

    private DatasetLoader.Options options(long seed, int buffer) throws Exception {
        return new DatasetLoader.Options(List.of(data().toString()), List.of(), null, "sft", 64, 0, 0, false, false,
                false, false, 2, false, dir.resolve("cache"), seed, false).withStreaming(buffer);
    }

    private LoadedData load(DatasetLoader.Options o, List<String> log) {
        return DatasetLoader.load(o, qwen, Templates.named("qwen"), log::add);
    }

    @Test
    void trainingStartsBeforeTheFileIsReadInHfShuffleOrder() throws Exception {
        List<int[]> fileOrder = new ArrayList<>();
        try (LoadedData whole = load(options(7, 0), new ArrayList<>())) {
            for (int i = 0; i < whole.train().size(); i++) {
                fileOrder.add(whole.train().get(i).inputIds());
            }
        }
        assertEquals(RECORDS, fileOrder.size());
        // what HF's IterableDataset.shuffle(seed=7, buffer_size=50) makes of the processed rows, two passes
        List<int[]> want = new ArrayList<>();
        for (int epoch = 0; epoch < 2; epoch++) {
            ShuffleBuffer<int[]> buf = new ShuffleBuffer<>(50, 7, epoch);
            fileOrder.forEach(x -> buf.add(x, want::add));
            buf.finish(want::add);
        }
        List<String> log = new ArrayList<>();
        try (LoadedData d = load(options(7, 50), log)) {
            assertTrue(d.train().streaming());
            Example first = d.train().get(0);
            long read = d.train().recordsRead();
            assertTrue(read >= 50 && read < RECORDS, "records read when the first row is served: " + read);
            assertArrayEquals(want.get(0), first.inputIds());
            for (int i = 1; i < want.size(); i++) {
                assertArrayEquals(want.get(i), d.train().get(i).inputIds(), "stream position " + i);
            }
            assertTrue(d.train().recordsRead() >= 2L * RECORDS, "the second pass re-reads the file");
            assertThrows(IllegalStateException.class, () -> d.train().get(5), "positions are read in order");
        }
        assertTrue(log.stream().anyMatch(m -> m.startsWith("streamed train data, first pass: ")), "" + log);
    }

    @Test
    void seededStreamsAreReproducible() throws Exception {
        int[][] a = new int[300][];
        try (LoadedData d = load(options(11, 200), new ArrayList<>())) {
            for (int i = 0; i < a.length; i++) {
                a[i] = d.train().get(i).inputIds();
            }
        }
        boolean differs = false;
        try (LoadedData same = load(options(11, 200), new ArrayList<>());
                LoadedData other = load(options(12, 200), new ArrayList<>())) {
            for (int i = 0; i < a.length; i++) {
                assertArrayEquals(a[i], same.train().get(i).inputIds(), "position " + i);
                differs |= !Arrays.equals(a[i], other.train().get(i).inputIds());
            }
            // a resumed run skips the positions its steps used: position 1000 directly
            int[] skipped = same.train().get(1000).inputIds();
            try (LoadedData again = load(options(11, 200), new ArrayList<>())) {
                for (int i = 0; i < 1000; i++) {
                    again.train().get(i);
                }
                assertArrayEquals(again.train().get(1000).inputIds(), skipped);
            }
        }
        assertTrue(differs, "another seed gives another order");
    }

    @Test
    void unsupportedCombinationsAreRefusedByKey() throws Exception {
        DatasetLoader.Options o = options(1, 10);
        assertEquals("max_samples", refused(new DatasetLoader.Options(o.datasets(), List.of(), null, "sft", 64, 5, 0,
                false, false, false, false, 1, false, o.cacheDir(), 1, false).withStreaming(10)));
        assertEquals("val_size", refused(new DatasetLoader.Options(o.datasets(), List.of(), null, "sft", 64, 0, 0.1,
                false, false, false, false, 1, false, o.cacheDir(), 1, false).withStreaming(10)));
        assertEquals("mix_strategy", refused(new DatasetLoader.Options(List.of(data().toString(), data().toString()),
                List.of(), null, "sft", 64, 0, 0, false, false, false, false, 1, false, o.cacheDir(), 1, false,
                new DatasetLoader.Mix("interleave_under", List.of(), false)).withStreaming(10)));
        Files.writeString(dir.resolve("dataset_info.json"), "{\"s\": {\"file_name\": \"big.jsonl\","
                + " \"num_samples\": 10}}");
        assertEquals("s.num_samples", refused(new DatasetLoader.Options(List.of("s"), List.of(), dir, "sft", 64, 0, 0,
                false, false, false, false, 1, false, o.cacheDir(), 1, false).withStreaming(10)));
        // LLaMA-Factory requires max_steps with streaming
        Path yaml = dir.resolve("c.yaml");
        Files.writeString(yaml, "model_name_or_path: m\ndataset: d\nstreaming: true\noutput_dir: o\n");
        ConfigException e = assertThrows(ConfigException.class, () -> SftConfig.load(yaml, List.of(), w -> { }));
        assertTrue(e.getMessage().contains("max_steps") && e.getMessage().contains("streaming"), e.getMessage());
        SftConfig ok = SftConfig.load(yaml, List.of("max_steps=5", "buffer_size=7"), w -> { });
        assertTrue(ok.data().streaming());
        assertEquals(7, ok.data().bufferSize());
    }

    private String refused(DatasetLoader.Options o) {
        DataException e = assertThrows(DataException.class, () -> load(o, new ArrayList<>()).close());
        assertTrue(e.getMessage().contains("stream"), e.getMessage());
        assertFalse(e.getMessage().isBlank());
        return e.key();
    }

    @Test
    void shuffleBufferOrderIsHfDatasets() throws Exception {
        JsonNode golden = new ObjectMapper().readTree(Path.of("src/test/resources/golden/formats/stream_shuffle.json")
                .toFile());
        for (JsonNode c : golden.get("cases")) {
            for (int epoch = 0; epoch < 2; epoch++) {
                ShuffleBuffer<Integer> buf = new ShuffleBuffer<>(c.get("buffer_size").asInt(), c.get("seed").asLong(),
                        epoch);
                List<Integer> out = new ArrayList<>();
                for (int i = 0; i < c.get("n").asInt(); i++) {
                    buf.add(i, out::add);
                }
                buf.finish(out::add);
                List<Integer> want = new ArrayList<>();
                c.get("epoch" + epoch).forEach(x -> want.add(x.asInt()));
                assertEquals(want, out, "n " + c.get("n") + " buffer " + c.get("buffer_size") + " seed "
                        + c.get("seed") + " epoch " + epoch);
            }
        }
    }
}
