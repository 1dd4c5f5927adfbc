package io.sftnative.lora;

import static io.sftnative.lora.LoraTesting.relErr;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.Tensors;
import io.sftnative.tokenizer.Tokenizer;
import io.sftnative.torch.TorchRuntime;

class ModelExportTest {
    static final Path DEMO = Path.of("src/main/resources/io/sftnative/demo");

    @TempDir
    Path tmp;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    /** A base model directory: a golden checkpoint plus the demo tokenizer and a generation_config.json. */
    static Path baseDir(Path tmp, Path checkpoint) throws Exception {
        Path base = Files.createDirectories(tmp.resolve("base"));
        try (var s = Files.list(checkpoint)) {
            for (Path p : s.toList()) {
                Files.copy(p, base.resolve(p.getFileName()));
            }
        }
        Files.copy(DEMO.resolve("tokenizer.json"), base.resolve("tokenizer.json"));
        Files.copy(DEMO.resolve("tokenizer_config.json"), base.resolve("tokenizer_config.json"));
        Files.writeString(base.resolve("generation_config.json"), "{\"eos_token_id\": 2, \"do_sample\": true}\n");
        return base;
    }

    @Test
    void mergedExportReloadsWithTheAdaptersOutputsShardedWithTokenizer() throws Exception {
        Path base = baseDir(tmp, LoraTesting.LLAMA);
        Path adapter = tmp.resolve("adapter");
        Tensor ids = LoraTesting.sampleIds();
        float[] expected;
        try (DecoderModel model = DecoderModel.load(base, null);
                LoraAdapters lora = LoraAdapters.attach(model, new LoraSpec(4, 8, 0, List.of("all"), false,
                        List.of("lm_head")), 1);
                PointerScope scope = new PointerScope()) {
            LoraTesting.randomize(lora, 7);
            try (var g = new org.bytedeco.pytorch.NoGradGuard()) {
                model.parameter("lm_head.weight").mul_(new org.bytedeco.pytorch.Scalar(0.5));
            }
            expected = Tensors.toFloats(model.forward(ids));
            lora.save(adapter, base.toString());
        }
        Path out = tmp.resolve("export");
        List<String> log = new ArrayList<>();
        ModelExport.Result r = ModelExport.export(base, List.of(adapter), out, 100_000, null, log::add);
        assertTrue(log.isEmpty(), log.toString());
        assertEquals(1, r.adapters());
        assertTrue(r.files().containsAll(List.of("config.json", "generation_config.json", "tokenizer.json",
                "tokenizer_config.json", "model.safetensors.index.json")), r.files().toString());
        long shards = r.files().stream().filter(f -> f.matches("model-\\d{5}-of-\\d{5}\\.safetensors")).count();
        assertTrue(shards >= 4, r.files().toString()); // 119k fp32 parameters in shards of 100 kB
        JsonNode index = new ObjectMapper().readTree(out.resolve("model.safetensors.index.json").toFile());
        assertEquals(119_104 * 4, index.get("metadata").get("total_size").asLong());
        assertFalse(Files.list(tmp).anyMatch(p -> p.getFileName().toString().startsWith(".export")),
                "staging left behind");
        try (DecoderModel merged = DecoderModel.load(out, null); Tokenizer tok = Tokenizer.load(out);
                PointerScope scope = new PointerScope()) {
            assertEquals(ScalarType.Float, merged.dtype().intern());
            float[] got = Tensors.toFloats(merged.forward(ids));
            double err = relErr(Tensors.floats(got, got.length), Tensors.floats(expected, expected.length));
            System.out.println("EXPORT merged fp32 logits vs base + adapter: max rel err " + err);
            assertTrue(err < 1e-6, "merged export differs: " + err);
            assertEquals(751, tok.vocabSize());
        }
        // a second export replaces the first in one step
        ModelExport.export(base, List.of(), out, 10_000_000_000L, null, log::add);
        assertTrue(Files.exists(out.resolve("model.safetensors")));
        assertFalse(Files.exists(out.resolve("model.safetensors.index.json")));
    }

    /**
     * LLaMA-Factory's rope_scaling key on export: as its export (configure_rope at inference, no model_max_length),
     * factor 2 and twice max_position_embeddings in the exported config.json, in the form transformers reads
     * (rope_type, factor, original_max_position_embeddings); the weights are the merge alone.
     */
    @Test
    void ropeScalingIsWrittenAsLlamaFactorysExportDoes() throws Exception {
        Path base = baseDir(tmp, LoraTesting.LLAMA);
        int old = new ObjectMapper().readTree(base.resolve("config.json").toFile()).get("max_position_embeddings")
                .asInt();
        Path out = tmp.resolve("yarn");
        List<String> log = new java.util.ArrayList<>();
        ModelExport.export(base, List.of(), out, 10_000_000_000L, null, null, io.sftnative.torch.TorchRuntime.device(),
                "yarn", log::add);
        JsonNode cfg = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        assertEquals(2 * old, cfg.get("max_position_embeddings").asInt());
        JsonNode rs = cfg.get("rope_scaling");
        assertEquals("yarn", rs.get("rope_type").asText());
        assertEquals(2.0, rs.get("factor").asDouble());
        assertEquals(old, rs.get("original_max_position_embeddings").asInt());
        assertTrue(log.stream().anyMatch(l -> l.contains("yarn scaling with factor 2.0")), log.toString());
        try (DecoderModel exported = DecoderModel.load(out, null);
                var a = io.sftnative.model.safetensors.SafetensorsFile.open(out.resolve("model.safetensors"));
                var b = io.sftnative.model.safetensors.SafetensorsFile.open(base.resolve("model.safetensors"));
                PointerScope scope = new PointerScope()) {
            assertEquals("yarn", exported.config().ropeScaling().type());
            for (String n : b.names()) {
                assertTrue(a.view(n).equal(b.view(n)), n + " unchanged by the config change");
            }
        }
    }

    @Test
    void bf16TiedBaseKeepsItsDtypeAndTying() throws Exception {
        Path base = baseDir(tmp, LoraTesting.QWEN2);
        Path adapter = tmp.resolve("adapter");
        try (DecoderModel model = DecoderModel.load(base, null);
                LoraAdapters lora = LoraAdapters.attach(model, LoraTesting.spec(2, List.of("q_proj", "v_proj")), 1)) {
            LoraTesting.randomize(lora, 1);
            lora.save(adapter, "qwen2");
        }
        Path out = tmp.resolve("export");
        ModelExport.export(base, List.of(adapter), out, 10_000_000_000L, null, m -> { });
        JsonNode cfg = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        assertEquals("bfloat16", cfg.get("torch_dtype").asText());
        assertTrue(cfg.get("tie_word_embeddings").asBoolean());
        try (var f = io.sftnative.model.safetensors.SafetensorsFile.open(out.resolve("model.safetensors"))) {
            assertFalse(f.contains("lm_head.weight"));
            assertEquals("BF16", f.entry("model.layers.0.self_attn.q_proj.weight").dtype().name());
        }
    }

    @Test
    void refusesToOverwriteSourcesOrUnrelatedDirectories() throws Exception {
        Path base = baseDir(tmp, LoraTesting.LLAMA);
        var e = assertThrows(IllegalArgumentException.class,
                () -> ModelExport.export(base, List.of(), base, 1_000_000, null, m -> { }));
        assertTrue(e.getMessage().contains("would replace"), e.getMessage());
        Path notes = Files.createDirectories(tmp.resolve("notes"));
        Files.writeString(notes.resolve("todo.txt"), "mine");
        e = assertThrows(IllegalArgumentException.class,
                () -> ModelExport.export(base, List.of(), notes, 1_000_000, null, m -> { }));
        assertTrue(e.getMessage().contains("not a model directory"), e.getMessage());
        assertEquals("mine", Files.readString(notes.resolve("todo.txt")));
        // a bad adapter fails before anything is published
        Path out = tmp.resolve("out");
        assertThrows(java.nio.file.NoSuchFileException.class,
                () -> ModelExport.export(base, List.of(tmp.resolve("missing")), out, 1_000_000, null, m -> { }));
        assertFalse(Files.exists(out));
        assertFalse(Files.list(tmp).anyMatch(p -> p.getFileName().toString().startsWith(".out")));
    }

    @Test
    void refusesToReplaceTheBaseThroughASymbolicLink() throws Exception {
        Path base = baseDir(tmp, LoraTesting.LLAMA);
        Path link = Files.createSymbolicLink(tmp.resolve("base_link"), base);
        byte[] before = Files.readAllBytes(base.resolve("config.json"));
        var e = assertThrows(IllegalArgumentException.class,
                () -> ModelExport.export(link, List.of(), base, 1_000_000, null, m -> { }));
        assertTrue(e.getMessage().contains("would replace") && e.getMessage().contains("symbolic link"),
                e.getMessage());
        // and the other way round: the export target is the link, the source the real directory
        assertThrows(IllegalArgumentException.class,
                () -> ModelExport.export(base, List.of(), link, 1_000_000, null, m -> { }));
        assertArrayEquals(before, Files.readAllBytes(base.resolve("config.json")));
    }
}
