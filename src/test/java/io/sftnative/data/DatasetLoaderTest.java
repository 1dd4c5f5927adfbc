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

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.template.Template;
import io.sftnative.template.Templates;
import io.sftnative.testing.Shared;
import io.sftnative.tokenizer.Tokenizer;

/** The pipeline on LLaMA-Factory's demo data with the real Qwen2.5 tokenizer, and every bad-input class. */
class DatasetLoaderTest {
    static Tokenizer qwen;
    static Path demo;

    @TempDir
    Path dir;

    @BeforeAll
    static void load() {
        demo = Shared.require("data/llamafactory-demo");
        qwen = Tokenizer.load(Shared.require("assets/tokenizers/qwen2_5"));
    }

    @AfterAll
    static void close() {
        if (qwen != null) {
            qwen.close();
        }
    }

    DatasetLoader.Options opts(List<String> datasets, String stage, int cutoff, boolean packing, int maxSamples,
            double valSize) {
        return new DatasetLoader.Options(datasets, List.of(), demo, stage, cutoff, maxSamples, valSize, packing,
                false, false, false, 2, false, dir.resolve("cache"), 7, false);
    }

    LoadedData load(DatasetLoader.Options o, Template t, List<String> log) {
        return DatasetLoader.load(o, qwen, t, log::add);
    }

    @Test
    void alpacaDemoWithQwenTemplateMasksEverythingButTheAnswer() throws Exception {
        List<String> log = new ArrayList<>();
        Template qwenT = Templates.named("qwen");
        try (LoadedData d = load(opts(List.of("alpaca_en_demo"), "sft", 1024, false, 0, 0), qwenT, log)) {
            PreprocessReport r = d.trainReport();
            assertEquals(999, r.read());
            assertEquals(999, r.kept());
            assertEquals(0, r.droppedTotal());
            assertEquals(999, d.train().size());
            assertTrue(r.trainableFraction() > 0.3 && r.trainableFraction() < 1, "" + r.trainableFraction());
            Example e = d.train().get(0);
            int firstTrained = 0;
            while (e.labels()[firstTrained] == SupervisedEncoder.IGNORE_INDEX) {
                firstTrained++;
            }
            String prompt = qwen.decode(Arrays.copyOf(e.inputIds(), firstTrained), false);
            assertEquals("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                    + "<|im_end|>\n<|im_start|>user\nDescribe a process of making crepes.<|im_end|>\n"
                    + "<|im_start|>assistant\n", prompt);
            String answer = qwen.decode(Arrays.copyOfRange(e.labels(), firstTrained, e.length()), false);
            assertTrue(answer.startsWith("Making crepes is an easy and delicious process!"), answer);
            assertTrue(answer.endsWith("<|im_end|>\n"), "the end-of-turn token is trained");
            assertArrayEquals(Arrays.copyOfRange(e.inputIds(), firstTrained, e.length()),
                    Arrays.copyOfRange(e.labels(), firstTrained, e.length()), "labels are not shifted");
        }
        // A second load reuses the cache.
        List<String> log2 = new ArrayList<>();
        try (LoadedData d = load(opts(List.of("alpaca_en_demo"), "sft", 1024, false, 0, 0), qwenT, log2)) {
            assertEquals(999, d.train().size());
            assertTrue(log2.stream().anyMatch(m -> m.startsWith("using the tokenized")), log2.toString());
            assertEquals(999, d.trainReport().kept(), "the report comes back from the cache");
        }
    }

    @Test
    void autoTemplateBuildsTheSameExamplesAsTheNamedQwenTemplate() throws Exception {
        // the model's own chat_template (jinjava, 2 threads) and the data-defined template agree id for id
        try (LoadedData named = load(opts(List.of("alpaca_en_demo", "glaive_toolcall_en_demo"), "sft", 1024, false,
                150, 0), Templates.named("qwen"), new ArrayList<>());
                LoadedData auto = load(opts(List.of("alpaca_en_demo", "glaive_toolcall_en_demo"), "sft", 1024,
                        false, 150, 0), Templates.auto(qwen), new ArrayList<>())) {
            assertEquals(300, named.train().size());
            assertEquals(named.train().size(), auto.train().size());
            int differ = 0;
            for (int i = 0; i < named.train().size(); i++) {
                if (!Arrays.equals(named.train().get(i).inputIds(), auto.train().get(i).inputIds())
                        || !Arrays.equals(named.train().get(i).labels(), auto.train().get(i).labels())) {
                    differ++;
                }
            }
            assertEquals(0, differ, "examples that differ");
        }
    }

    @Test
    void corruptCacheIsRebuiltNotTrusted() throws Exception {
        Template t = Templates.named("qwen");
        DatasetLoader.Options o = opts(List.of("identity"), "sft", 256, false, 0, 0);
        int[] first;
        try (LoadedData d = load(o, t, new ArrayList<>())) {
            first = d.train().get(5).inputIds();
        }
        Path cache;
        try (var s = Files.list(dir.resolve("cache"))) {
            cache = s.filter(p -> p.toString().endsWith(".sftds")).findFirst().orElseThrow();
        }
        byte[] bytes = Files.readAllBytes(cache);
        bytes[bytes.length / 2] ^= 0x5a; // flip bits in the middle of the examples
        Files.write(cache, bytes);
        List<String> log = new ArrayList<>();
        try (LoadedData d = load(o, t, log)) {
            assertTrue(log.stream().anyMatch(m -> m.contains("unusable") && m.contains("checksum")), log.toString());
            assertArrayEquals(first, d.train().get(5).inputIds());
        }
        Files.write(cache, Arrays.copyOf(bytes, 100)); // torn file
        try (LoadedData d = load(o, t, log)) {
            assertArrayEquals(first, d.train().get(5).inputIds());
        }
    }

    @Test
    void severalDatasetsMaxSamplesAndValSize() throws Exception {
        Template t = Templates.named("qwen");
        try (LoadedData d = load(opts(List.of("alpaca_en_demo", "identity"), "sft", 512, false, 50, 0.1), t,
                new ArrayList<>())) {
            assertEquals(100, d.trainReport().read(), "max_samples applies per dataset");
            assertEquals(10, d.eval().size(), "ceil(0.1 * 100)");
            assertEquals(90, d.train().size());
            java.util.Set<Integer> seen = new java.util.HashSet<>();
            for (int i = 0; i < d.train().size(); i++) {
                seen.add(d.train().storeIndex(i));
            }
            for (int i = 0; i < d.eval().size(); i++) {
                assertTrue(seen.add(d.eval().storeIndex(i)), "train and eval are disjoint");
            }
        }
        try (LoadedData d = load(opts(List.of("identity"), "sft", 512, false, 0, 20), t, new ArrayList<>())) {
            assertEquals(20, d.eval().size(), "val_size >= 1 is a count");
            assertEquals(71, d.train().size());
        }
    }

    @Test
    void sharegptToolDataWithQwenAndLlama3ToolFormats() throws Exception {
        try (LoadedData d = load(opts(List.of("glaive_toolcall_en_demo"), "sft", 2048, false, 0, 0),
                Templates.named("qwen"), new ArrayList<>())) {
            assertEquals(300, d.trainReport().read());
            assertEquals(300, d.trainReport().kept(), d.trainReport().summary());
        }
        try (Tokenizer llama3 = Tokenizer.load(Shared.require("assets/tokenizers/llama3"));
                LoadedData d = DatasetLoader.load(opts(List.of("glaive_toolcall_en_demo"), "sft", 2048, false, 0, 0),
                        llama3, Templates.named("llama3"), m -> {})) {
            PreprocessReport r = d.trainReport();
            assertEquals(300, r.kept(), "llama3's tool format (LLaMA-Factory's) renders every record: " + r.summary());
            boolean sawCall = false;
            for (int i = 0; i < d.train().size() && !sawCall; i++) {
                sawCall = llama3.decode(d.train().get(i).inputIds(), false).contains("{\"name\": \"");
            }
            assertTrue(sawCall, "function calls are written as llama3 JSON calls");
        }
    }

    @Test
    void pretrainingCutsBlocksAndAppendsEos() throws Exception {
        try (LoadedData d = load(opts(List.of("wiki_demo", "c4_demo"), "pt", 256, true, 0, 0), null,
                new ArrayList<>())) {
            PreprocessReport r = d.trainReport();
            assertEquals(30 + 300, r.read(), r.summary());
            assertTrue(d.train().size() > 100);
            for (int i = 0; i < d.train().size(); i++) {
                assertEquals(256, d.train().length(i));
            }
            Example e = d.train().get(0);
            assertArrayEquals(e.inputIds(), e.labels());
            assertTrue(r.remainderTokens() > 0 && r.remainderTokens() < 256, "one chunk: remainder < a block");
            long eos = Arrays.stream(e.inputIds()).filter(x -> x == qwen.eosId()).count();
            assertTrue(r.tokens() >= (long) d.train().size() * 256);
            assertTrue(eos >= 0);
        }
        try (LoadedData d = load(opts(List.of("wiki_demo"), "pt", 64, false, 0, 0), null, new ArrayList<>())) {
            assertEquals(30, d.train().size(), "packing: false keeps one truncated row per text");
            assertTrue(d.train().length(0) <= 64);
        }
    }

    // ---- bad input: clear errors with file/line/key, or drops that are counted with their reason ----

    @Test
    void malformedJsonLinesAreDroppedAndReportedWithTheirLine() throws Exception {
        Path f = dir.resolve("bad.jsonl");
        Files.writeString(f, """
                {"instruction": "a", "output": "b"}
                {"instruction": "c", "output": oops}
                {"instruction": "d", "output": "e"}
                {"instruction": "f"}
                """);
        try (LoadedData d = load(opts(List.of(f.toString()), "sft", 64, false, 0, 0), Templates.named("qwen"),
                new ArrayList<>())) {
            PreprocessReport r = d.trainReport();
            assertEquals(4, r.read());
            assertEquals(2, r.kept());
            assertEquals(List.of("bad.jsonl:2"), r.dropped().get("malformed JSON").firstAt());
            assertEquals(List.of("bad.jsonl:4"), r.dropped().get("missing column 'output'").firstAt());
            assertTrue(r.summary().contains("bad.jsonl:2"), r.summary());
        }
    }

    @Test
    void malformedJsonArrayFailsWithLineAndColumn() throws Exception {
        Path f = dir.resolve("bad.json");
        Files.writeString(f, "[\n {\"instruction\": \"a\", \"output\": \"b\"},\n {\"instruction\": \"c\" \"x\"}\n]\n");
        DataException e = assertThrows(DataException.class, () -> load(opts(List.of(f.toString()), "sft", 64, false,
                0, 0), Templates.named("qwen"), new ArrayList<>()));
        assertTrue(e.getMessage().contains("bad.json:3"), e.getMessage());
        assertEquals(3, e.line());
    }

    @Test
    void wrongColumnsFailOnTheFirstRecordNamingTheKey() throws Exception {
        Path f = dir.resolve("cols.json");
        Files.writeString(f, "[{\"question\": \"a\", \"answer\": \"b\"}]");
        DataException e = assertThrows(DataException.class, () -> load(opts(List.of(f.toString()), "sft", 64, false,
                0, 0), Templates.named("qwen"), new ArrayList<>()));
        assertEquals("output", e.key());
        assertTrue(e.getMessage().contains("question, answer"), e.getMessage());
    }

    @Test
    void nonAlternatingRolesAreDroppedWithTheReason() throws Exception {
        Path f = dir.resolve("chat.jsonl");
        Files.writeString(f, """
                {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
                {"conversations": [{"from": "human", "value": "hi"}, {"from": "human", "value": "again"}]}
                {"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "q"}]}
                """);
        Files.writeString(dir.resolve("dataset_info.json"), """
                {"chat": {"file_name": "chat.jsonl", "formatting": "sharegpt"}}
                """);
        var o = new DatasetLoader.Options(List.of("chat"), List.of(), dir, "sft", 64, 0, 0, false, false, false,
                false, 1, false, dir.resolve("cache"), 1, false);
        try (LoadedData d = DatasetLoader.load(o, qwen, Templates.named("qwen"), m -> {})) {
            PreprocessReport r = d.trainReport();
            assertEquals(1, r.kept());
            assertEquals(2, r.droppedTotal());
            assertTrue(r.dropped().keySet().stream().anyMatch(k -> k.contains("do not alternate")), r.summary());
            assertTrue(r.dropped().keySet().stream().anyMatch(k -> k.contains("odd message count")), r.summary());
        }
    }

    @Test
    void emptyDatasetIsAnError() throws Exception {
        Path f = dir.resolve("empty.jsonl");
        Files.writeString(f, "\n");
        DataException e = assertThrows(DataException.class, () -> load(opts(List.of(f.toString()), "sft", 64, false,
                0, 0), Templates.named("qwen"), new ArrayList<>()));
        assertTrue(e.getMessage().contains("gives no examples"), e.getMessage());
        Path g = dir.resolve("dropped.jsonl");
        Files.writeString(g, "{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \"a\"}\n");
        Files.writeString(g, "{\"instruction\": \"a\", \"output\": 5}\n");
        DataException e2 = assertThrows(DataException.class, () -> load(opts(List.of(g.toString()), "sft", 64,
                false, 0, 0), Templates.named("qwen"), new ArrayList<>()));
        assertTrue(e2.getMessage().contains("every record was dropped") && e2.getMessage().contains("dropped.jsonl:1"),
                e2.getMessage());
    }

    @Test
    void unknownDatasetNameSuggestsTheNearest() {
        DataException e = assertThrows(DataException.class, () -> DatasetSpec.resolve("alpaca_en_dmo", demo));
        assertTrue(e.getMessage().contains("did you mean 'alpaca_en_demo'"), e.getMessage());
        assertEquals("alpaca_en_dmo", e.key());
        DataException hub = assertThrows(DataException.class, () -> DatasetSpec.resolve("alpaca_en", demo));
        assertTrue(hub.getMessage().contains("hf_hub_url"), hub.getMessage());
        assertThrows(DataException.class, () -> DatasetSpec.resolve("dpo_en_demo", demo), "preference data");
        DataException mm = assertThrows(DataException.class, () -> DatasetSpec.resolve("mllm_demo", demo));
        assertEquals("mllm_demo.columns.images", mm.key());
    }

    @Test
    void valSizeWithEvalDatasetAndNoDatasetAreErrors() {
        var both = new DatasetLoader.Options(List.of("identity"), List.of("identity"), demo, "sft", 64, 0, 0.1,
                false, false, false, false, 1, false, dir, 1, false);
        assertThrows(DataException.class, () -> DatasetLoader.load(both, qwen, Templates.named("qwen"), m -> {}));
        var none = new DatasetLoader.Options(List.of(), List.of(), demo, "sft", 64, 0, 0, false, false, false, false,
                1, false, dir, 1, false);
        assertThrows(DataException.class, () -> DatasetLoader.load(none, qwen, Templates.named("qwen"), m -> {}));
    }

    @Test
    void templateOfAnotherModelIsAClearError() {
        var e = assertThrows(io.sftnative.tokenizer.TokenizerException.class, () -> load(opts(List.of("identity"),
                "sft", 64, false, 0, 0), Templates.named("llama3"), new ArrayList<>()));
        assertTrue(e.getMessage().contains("<|eot_id|>"), e.getMessage());
        var unknown = assertThrows(io.sftnative.template.TemplateException.class, () -> Templates.named("qwen9"));
        assertTrue(unknown.getMessage().contains("known templates"), unknown.getMessage());
    }

    @Test
    void textDataWithoutTokenizerIsAnError() {
        var o = opts(List.of("identity"), "sft", 64, false, 0, 0);
        DataException e = assertThrows(DataException.class, () -> DatasetLoader.load(o, null, null, m -> {}));
        assertTrue(e.getMessage().contains("needs a tokenizer"), e.getMessage());
        assertFalse(e.getMessage().isBlank());
    }
}
