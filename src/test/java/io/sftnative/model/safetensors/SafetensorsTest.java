package io.sftnative.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.torch.TorchRuntime;

class SafetensorsTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/model");

    @TempDir
    Path tmp;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @Test
    void readsFilesWrittenByTheReferenceWriter() throws IOException {
        try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(GOLDEN.resolve("llama_gqa/checkpoint"));
                PointerScope scope = new PointerScope()) {
            assertEquals("pt", ck.metadata().get("format"));
            TensorEntry e = ck.entry("model.layers.0.self_attn.k_proj.weight");
            assertEquals(DType.F32, e.dtype());
            assertArrayEquals(new long[] {32, 64}, e.shape());
            Tensor v = ck.view("model.embed_tokens.weight"); // (256, 64)
            assertArrayEquals(new long[] {256, 64}, v.sizes().vec().get());
            assertTrue(Double.isFinite(v.sum().item_double()));
        }
        try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(GOLDEN.resolve("qwen2_tied_bf16/checkpoint"));
                PointerScope scope = new PointerScope()) {
            Tensor v = ck.view("model.norm.weight"); // (64) bf16, ~1 + N(0, 0.1)
            assertEquals(ScalarType.BFloat16, v.scalar_type().intern());
            double mean = v.to(ScalarType.Float).mean().item_double();
            assertTrue(mean > 0.9 && mean < 1.1, "mean " + mean);
        }
    }

    @Test
    void readsShardedCheckpointThroughItsIndex() throws IOException {
        try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(GOLDEN.resolve("mistral_swa/checkpoint"))) {
            assertTrue(ck.source().endsWith("model.safetensors.index.json"));
            assertTrue(ck.contains("lm_head.weight"));
            assertTrue(ck.contains("model.embed_tokens.weight"));
            assertFalse(ck.fileOf("lm_head.weight").equals(ck.fileOf("model.embed_tokens.weight"))
                    && ck.fileOf("model.norm.weight").equals(ck.fileOf("model.layers.0.mlp.up_proj.weight")),
                    "the golden mistral checkpoint spans two shards");
        }
    }

    @Test
    void roundTripsEveryDtypeWithMetadataInReferenceLayout() throws IOException {
        Path f = tmp.resolve("all.safetensors");
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> in = new LinkedHashMap<>();
            Tensor base = torch.arange(new Scalar(-6), new Scalar(6)).reshape(3, 4); // (3, 4) int64
            for (DType d : DType.values()) {
                in.put("t_" + d.name().toLowerCase(), base.to(d.scalarType()));
            }
            in.put("scalar", torch.ones(new long[0], new TensorOptions(ScalarType.Float)));
            in.put("empty", torch.zeros(new long[] {0, 5}, new TensorOptions(ScalarType.Float)));
            in.put("strided", base.to(ScalarType.Float).t()); // non-contiguous input (4, 3)
            SafetensorsWriter.write(f, in, Map.of("format", "pt", "note", "ü"));

            byte[] bytes = Files.readAllBytes(f);
            long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
            assertEquals(0, n % 8, "header padded to 8 bytes");
            String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
            assertTrue(header.startsWith("{"));
            JsonNode root = new ObjectMapper().readTree(header);
            assertEquals("ü", root.get("__metadata__").get("note").asText());
            // back to back, largest dtype first (as huggingface/safetensors lays them out)
            long expectBegin = 0;
            int lastSize = Integer.MAX_VALUE;
            List<Map.Entry<String, JsonNode>> entries = root.properties().stream()
                    .filter(e -> !e.getKey().equals("__metadata__")).toList();
            for (Map.Entry<String, JsonNode> e : entries) {
                long b = e.getValue().get("data_offsets").get(0).asLong();
                assertEquals(expectBegin, b, e.getKey());
                expectBegin = e.getValue().get("data_offsets").get(1).asLong();
                int size = DType.parse(e.getValue().get("dtype").asText()).bytes();
                assertTrue(size <= lastSize);
                lastSize = size;
            }
            assertEquals(bytes.length - 8 - n, expectBegin, "data area has no trailing bytes");

            try (SafetensorsFile r = SafetensorsFile.open(f)) {
                assertEquals("pt", r.metadata().get("format"));
                for (Map.Entry<String, Tensor> e : in.entrySet()) {
                    Tensor got = r.view(e.getKey());
                    assertEquals(e.getValue().scalar_type().intern(), got.scalar_type().intern(), e.getKey());
                    assertArrayEquals(e.getValue().sizes().vec().get(), got.sizes().vec().get(), e.getKey());
                    assertTrue(got.equal(e.getValue()), e.getKey());
                }
            }
        }
    }

    @Test
    void viewsAreZeroCopyAndCopyOnWriteLoadsOutliveTheFile() throws IOException {
        Path f = tmp.resolve("w.safetensors");
        byte[] before;
        Tensor owned;
        try (PointerScope scope = new PointerScope()) {
            SafetensorsWriter.write(f, Map.of("w", torch.ones(4, 4)), Map.of());
            before = Files.readAllBytes(f);
            try (SafetensorsFile r = SafetensorsFile.open(f)) {
                Tensor a = r.view("w");
                Tensor b = r.view("w");
                assertEquals(a.data_ptr().address(), b.data_ptr().address(), "two views share the mapping");
                a.mul_(new Scalar(3.0)); // an in-place op on a view: private pages, the file is untouched
                owned = r.load("w", ScalarType.BFloat16);
                owned.retainReference();
                assertThrows(SafetensorsException.class, () -> r.view("nope"));
            }
        }
        assertArrayEquals(before, Files.readAllBytes(f));
        try (PointerScope scope = new PointerScope()) {
            assertEquals(ScalarType.BFloat16, owned.scalar_type().intern());
            assertEquals(16 * 3.0, owned.to(ScalarType.Float).sum().item_double(), 0.0);
        } finally {
            owned.releaseReference();
        }
        SafetensorsFile closed = SafetensorsFile.open(f);
        closed.close();
        assertThrows(IllegalStateException.class, () -> closed.view("w"));
    }

    @Test
    void shardedWriterSplitsWritesIndexAndRemovesStaleFiles() throws IOException {
        Path dir = tmp.resolve("ck");
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> in = new LinkedHashMap<>();
            for (int i = 0; i < 5; i++) {
                in.put("layer." + i + ".weight", torch.full(new long[] {16, 16}, new Scalar((double) i))); // 1 KiB each
            }
            List<Path> files = ShardedSafetensorsWriter.write(dir, in, Map.of("format", "pt"), 2100);
            assertEquals(4, files.size(), "3 shards of <= 2 tensors + index: " + files);
            assertTrue(Files.exists(dir.resolve("model-00003-of-00003.safetensors")));
            JsonNode idx = new ObjectMapper().readTree(dir.resolve("model.safetensors.index.json").toFile());
            assertEquals(5 * 1024, idx.get("metadata").get("total_size").asLong());
            assertEquals("model-00001-of-00003.safetensors", idx.get("weight_map").get("layer.1.weight").asText());
            try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(dir)) {
                assertEquals(in.keySet(), new java.util.TreeSet<>(ck.names()));
                for (int i = 0; i < 5; i++) {
                    assertEquals(i * 256.0, ck.view("layer." + i + ".weight").sum().item_double(), 0.0);
                }
            }
            // saving again into one file removes the old shards and index
            ShardedSafetensorsWriter.write(dir, in, Map.of(), ShardedSafetensorsWriter.DEFAULT_MAX_SHARD_BYTES);
            try (var s = Files.list(dir)) {
                assertEquals(List.of("model.safetensors"), s.map(p -> p.getFileName().toString()).toList());
            }
        }
    }

    @Test
    void inconsistentIndexIsReportedWithFileAndTensor() throws IOException {
        Path dir = tmp.resolve("bad");
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> in = new LinkedHashMap<>();
            in.put("a", torch.ones(8, 8));
            in.put("b", torch.ones(8, 8));
            ShardedSafetensorsWriter.write(dir, in, Map.of(), 300);
        }
        Path index = dir.resolve("model.safetensors.index.json");
        String good = Files.readString(index);
        Files.writeString(index, good.replace("\"b\" : \"model-00002-of-00002", "\"b\" : \"model-00001-of-00002"));
        var e = assertThrows(SafetensorsException.class, () -> SafetensorsCheckpoint.open(dir));
        assertTrue(e.getMessage().contains("'b'") && e.getMessage().contains("model-00001-of-00002"), e.getMessage());
        Files.delete(dir.resolve("model-00002-of-00002.safetensors"));
        Files.writeString(index, good);
        e = assertThrows(SafetensorsException.class, () -> SafetensorsCheckpoint.open(dir));
        assertTrue(e.getMessage().contains("model-00002-of-00002.safetensors") && e.getMessage().contains("missing"),
                e.getMessage());
    }

    // ---- corrupt files: each error names the file and, where there is one, the tensor

    @Test
    void rejectsHeaderLengthBeyondFile() throws IOException {
        Path f = tmp.resolve("long.safetensors");
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1000);
        Files.write(f, b.array());
        assertMessage(f, "header length 1000 runs beyond the end of the file");
        Files.write(f, new byte[] {1, 2, 3});
        assertMessage(f, "too short");
    }

    @Test
    void rejectsOffsetsOutsideDataArea() throws IOException {
        Path f = raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
        assertMessage(f, "tensor 'w'", "outside the data area of 8 bytes");
    }

    @Test
    void rejectsOverlappingRanges() throws IOException {
        Path f = raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        assertMessage(f, "'a'", "'b'", "overlap");
    }

    @Test
    void rejectsByteLengthThatDoesNotMatchShape() throws IOException {
        Path f = raw("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", 8);
        assertMessage(f, "tensor 'w'", "holds 8 bytes", "needs 12 bytes");
    }

    @Test
    void rejectsDuplicateNames() throws IOException {
        Path f = raw("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                + "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2);
        assertMessage(f, "names a tensor twice", "'w'");
    }

    @Test
    void rejectsUnknownDtype() throws IOException {
        Path f = raw("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
        assertMessage(f, "tensor 'w'", "unknown dtype 'F8_E4M3'", "BF16");
    }

    @Test
    void rejectsHeaderThatIsNotJson() throws IOException {
        Path f = raw("not json at all", 0);
        assertMessage(f, "not valid JSON");
    }

    private Path raw(String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path f = Files.createTempFile(tmp, "raw", ".safetensors");
        Files.write(f, b.array());
        return f;
    }

    private static void assertMessage(Path f, String... parts) {
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(f).close());
        assertTrue(e.getMessage().contains(f.toString()), "names the file: " + e.getMessage());
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), "'" + p + "' in: " + e.getMessage());
        }
    }
}
