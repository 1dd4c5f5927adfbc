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

import io.sftnative.template.Templates;
import io.sftnative.testing.Shared;
import io.sftnative.tokenizer.Tokenizer;

/**
 * .csv, .parquet, .arrow and save_to_disk directories yield the same examples as the same data in JSON lines. The
 * files under golden/formats were written by pyarrow 25.0.1 and HF datasets 5.0.1
 * (tools/golden/gen_dataset_formats.py), not by the libraries that read them here.
 */
class DatasetFormatsTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/formats").toAbsolutePath();
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

    /** dataset_info.json with one entry per (name, file_name, formatting). */
    private void info(String... entries) throws Exception {
        StringBuilder s = new StringBuilder("{");
        for (int i = 0; i < entries.length; i += 3) {
            s.append(i == 0 ? "" : ",").append('"').append(entries[i]).append("\": {\"file_name\": \"")
                    .append(GOLDEN.resolve(entries[i + 1])).append("\", \"formatting\": \"").append(entries[i + 2])
                    .append('"').append(entries[i + 2].equals("openai") ? ", \"columns\": {\"messages\":"
                            + " \"messages\"}, \"tags\": {\"role_tag\": \"role\", \"content_tag\": \"content\","
                            + " \"user_tag\": \"user\", \"assistant_tag\": \"assistant\", \"system_tag\":"
                            + " \"system\"}" : "")
                    .append(entries[i + 2].equals("sharegpt") ? ", \"columns\": {\"messages\": \"conversations\","
                            + " \"system\": \"system\"}" : "")
                    .append('}');
        }
        Files.writeString(dir.resolve("dataset_info.json"), s.append('}').toString());
    }

    private LoadedData loadData(String name, List<String> log) {
        DatasetLoader.Options o = new DatasetLoader.Options(List.of(name), List.of(), dir, "sft", 256, 0, 0, false,
                false, false, false, 1, false, dir.resolve("cache"), 7, false);
        return DatasetLoader.load(o, qwen, Templates.named("qwen"), log::add);
    }

    private void assertSameExamples(String formatting, String json, String... others) throws Exception {
        List<String> entries = new ArrayList<>(List.of("json", json, formatting));
        for (int i = 0; i < others.length; i++) {
            entries.addAll(List.of("other" + i, others[i], formatting));
        }
        info(entries.toArray(String[]::new));
        try (LoadedData want = loadData("json", new ArrayList<>())) {
            assertTrue(want.train().size() >= 2);
            assertEquals(0, want.trainReport().droppedTotal());
            for (int i = 0; i < others.length; i++) {
                List<String> log = new ArrayList<>();
                try (LoadedData got = loadData("other" + i, log)) {
                    assertEquals(want.train().size(), got.train().size(), others[i] + " " + log);
                    assertEquals(0, got.trainReport().droppedTotal(), others[i] + " " + log);
                    for (int r = 0; r < want.train().size(); r++) {
                        assertArrayEquals(want.train().get(r).inputIds(), got.train().get(r).inputIds(),
                                others[i] + " row " + r);
                        assertArrayEquals(want.train().get(r).labels(), got.train().get(r).labels(),
                                others[i] + " row " + r);
                    }
                }
            }
        }
    }

    @Test
    void alpacaInEveryFormatGivesTheJsonExamples() throws Exception {
        assertSameExamples("alpaca", "alpaca.jsonl", "alpaca.csv", "alpaca.parquet", "alpaca_zstd.parquet",
                "alpaca_gzip.parquet", "alpaca.arrow", "alpaca_file_format.arrow", "alpaca_large_string.arrow",
                "alpaca_disk", "alpaca_dict");
    }

    @Test
    void sharegptConversationsAsListsOfStructsGiveTheJsonExamples() throws Exception {
        assertSameExamples("sharegpt", "sharegpt.jsonl", "sharegpt.parquet", "sharegpt.arrow", "sharegpt_disk");
    }

    @Test
    void openaiMessagesGiveTheJsonExamples() throws Exception {
        assertSameExamples("openai", "openai.jsonl", "openai.parquet", "openai.arrow", "openai_disk");
    }

    private static List<RecordReader.RawRecord> records(Path f) {
        List<RecordReader.RawRecord> out = new ArrayList<>();
        try (RecordSource r = RecordSource.open(f, null)) {
            r.forEachRemaining(out::add);
        }
        return out;
    }

    @Test
    void nestedRecordsAreTheJsonRecords() {
        List<RecordReader.RawRecord> json = records(GOLDEN.resolve("sharegpt.jsonl"));
        for (String f : List.of("sharegpt.parquet", "sharegpt.arrow")) {
            List<RecordReader.RawRecord> got = records(GOLDEN.resolve(f));
            assertEquals(json.size(), got.size(), f);
            for (int i = 0; i < json.size(); i++) {
                assertEquals(json.get(i).node(), got.get(i).node(), f + " row " + (i + 1));
                assertEquals(i + 1, got.get(i).line());
            }
            assertEquals(f + ":row 2", got.get(1).location());
        }
    }

    @Test
    void columnarFilesAreReadBlockByBlock() throws Exception {
        // parquet: 5 rows in row groups of 2; after the first row only the first row group has been read
        Path pq = GOLDEN.resolve("alpaca.parquet");
        try (RecordSource r = RecordSource.open(pq, null)) {
            r.next();
            long first = r.bytesRead();
            assertTrue(first > 0 && first < sizeOf(pq) / 2, first + " of " + sizeOf(pq));
            r.forEachRemaining(x -> { });
            assertTrue(r.bytesRead() > first);
        }
        // arrow: a 4 MB stream of 200 record batches; the first row needs only the first batch (plus read-ahead)
        Path big = dir.resolve("big.arrow");
        int rows = writeArrowStream(big, 200, 100);
        try (RecordSource r = RecordSource.open(big, null)) {
            assertEquals("row 0 text", r.next().node().get("text").asText().substring(0, 10));
            long first = r.bytesRead();
            assertTrue(first < sizeOf(big) / 20, first + " of " + sizeOf(big));
            int n = 1;
            for (; r.hasNext(); n++) {
                r.next();
            }
            assertEquals(rows, n);
            assertEquals(sizeOf(big), r.bytesRead());
        }
    }

    /** An Arrow IPC stream of {@code batches} batches of {@code perBatch} rows with one ~200-byte text column. */
    private static int writeArrowStream(Path file, int batches, int perBatch) throws Exception {
        try (var alloc = new org.apache.arrow.memory.RootAllocator();
                var text = new org.apache.arrow.vector.VarCharVector("text", alloc);
                var root = org.apache.arrow.vector.VectorSchemaRoot.of(text);
                var out = Files.newOutputStream(file);
                var w = new org.apache.arrow.vector.ipc.ArrowStreamWriter(root, null, out)) {
            w.start();
            int row = 0;
            for (int b = 0; b < batches; b++) {
                text.allocateNew(perBatch);
                for (int i = 0; i < perBatch; i++, row++) {
                    text.setSafe(i, ("row " + row + " text " + "x".repeat(200)).getBytes(
                            java.nio.charset.StandardCharsets.UTF_8));
                }
                root.setRowCount(perBatch);
                w.writeBatch();
            }
            w.end();
            return row;
        }
    }

    private static long sizeOf(Path p) {
        try {
            return Files.size(p);
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void csvCellsPandasReadsAsMissingAreNull() throws Exception {
        Path csv = dir.resolve("d.csv");
        Files.writeString(csv, "instruction,input,output\n\nq,NA,a\n\"x, y\",\"he said \"\"hi\"\"\",null\n");
        List<RecordReader.RawRecord> rs = records(csv);
        assertEquals(2, rs.size(), "the blank line is skipped");
        assertTrue(rs.get(0).node().get("input").isNull());
        assertEquals("x, y", rs.get(1).node().get("instruction").asText());
        assertEquals("he said \"hi\"", rs.get(1).node().get("input").asText());
        assertTrue(rs.get(1).node().get("output").isNull());
        Files.writeString(csv, "instruction,input,output\nq,i\n");
        RecordReader.RawRecord bad = records(csv).get(0);
        assertTrue(bad.node() == null && bad.error().contains("2 fields"), bad.error());
    }

    @Test
    void aMappedColumnOfAnUnsupportedTypeIsNamed() throws Exception {
        for (String f : List.of("alpaca_map_column.parquet", "alpaca_map_column.arrow")) {
            info("m", f, "alpaca");
            DataException e = assertThrows(DataException.class, () -> loadData("m", new ArrayList<>()).close());
            assertTrue(e.getMessage().contains(f) && e.getMessage().contains("column 'input'")
                    && e.getMessage().toLowerCase().contains("map"), e.getMessage());
            // the same column unmapped is not read (LLaMA-Factory's converter ignores it too)
            Files.writeString(dir.resolve("dataset_info.json"), "{\"m\": {\"file_name\": \"" + GOLDEN.resolve(f)
                    + "\", \"columns\": {\"prompt\": \"instruction\", \"query\": \"nothing\", \"response\":"
                    + " \"output\"}}}");
            try (LoadedData d = loadData("m", new ArrayList<>())) {
                assertEquals(1, d.train().size(), f);
            }
        }
    }

    @Test
    void aMissingColumnNamesFileRowAndColumn() throws Exception {
        Files.writeString(dir.resolve("dataset_info.json"), "{\"m\": {\"file_name\": \""
                + GOLDEN.resolve("alpaca.parquet") + "\", \"columns\": {\"response\": \"answer\"}}}");
        DataException e = assertThrows(DataException.class, () -> loadData("m", new ArrayList<>()).close());
        assertTrue(e.getMessage().contains("alpaca.parquet:row 1") && e.getMessage().contains("'answer'")
                && e.getMessage().contains("instruction, input, output"), e.getMessage());
    }

    @Test
    void corruptFilesAreErrorsNamingTheFile() throws Exception {
        for (String f : List.of("alpaca.parquet", "alpaca.arrow", "alpaca_file_format.arrow")) {
            byte[] bytes = Files.readAllBytes(GOLDEN.resolve(f));
            Path torn = dir.resolve("torn_" + f);
            Files.write(torn, Arrays.copyOf(bytes, bytes.length * 2 / 3));
            DataException e = assertThrows(DataException.class, () -> records(torn));
            assertTrue(e.getMessage().contains(torn.toString()), e.getMessage());
            Path junk = dir.resolve("junk_" + f);
            Files.writeString(junk, "this is not a columnar file at all, just text\n".repeat(20));
            e = assertThrows(DataException.class, () -> records(junk));
            assertTrue(e.getMessage().contains(junk.toString()), e.getMessage());
        }
    }

    @Test
    void directoriesFollowLlamaFactoryRules() throws Exception {
        Path mixed = dir.resolve("mixed");
        Files.createDirectories(mixed);
        Files.copy(GOLDEN.resolve("alpaca.jsonl"), mixed.resolve("a.jsonl"));
        Files.copy(GOLDEN.resolve("alpaca.parquet"), mixed.resolve("b.parquet"));
        DataException e = assertThrows(DataException.class, () -> DatasetSpec.resolve(mixed.toString(), null));
        assertTrue(e.getMessage().contains("File types should be identical"), e.getMessage());
        Path shards = dir.resolve("shards");
        Files.createDirectories(shards);
        Files.copy(GOLDEN.resolve("alpaca.parquet"), shards.resolve("part-0.parquet"));
        Files.copy(GOLDEN.resolve("alpaca_zstd.parquet"), shards.resolve("part-1.parquet"));
        assertEquals(2, DatasetSpec.resolve(shards.toString(), null).files().size());
        DatasetSpec disk = DatasetSpec.resolve(GOLDEN.resolve("sharegpt_disk").toString(), null);
        assertEquals(List.of("data-00000-of-00002.arrow", "data-00001-of-00002.arrow"),
                disk.files().stream().map(p -> p.getFileName().toString()).toList());
        Path tsv = dir.resolve("d.tsv");
        Files.writeString(tsv, "a\tb\n");
        e = assertThrows(DataException.class, () -> DatasetSpec.resolve(tsv.toString(), null));
        assertTrue(e.getMessage().contains("does not read .tsv"), e.getMessage());
        assertFalse(e.getMessage().contains("not implemented"));
    }
}
