package io.sftnative.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.model.safetensors.SafetensorsCheckpoint;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.model.safetensors.SafetensorsWriter;
import io.sftnative.torch.TorchRuntime;

/** gemma3 (multimodal) configs and checkpoints read through their text part (GoldenParityTest checks the math). */
class MultimodalTextTest {
    static final Path LEGACY = GoldenParityTest.ROOT.resolve("gemma3_mm_legacy/checkpoint");
    static final Path NESTED = GoldenParityTest.ROOT.resolve("gemma3_mm_nested/checkpoint");

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @Test
    void textConfigWithGemma3TextDefaults() throws IOException {
        ModelConfig c = ModelConfig.read(LEGACY);
        assertEquals("gemma3_text", c.modelType());
        assertEquals("gemma3", c.textTowerOf());
        assertEquals("Gemma3ForCausalLM", c.architecture());
        assertEquals(List.of(1, 106), c.eosTokenIds()); // the top level's
        assertEquals(1e-6, c.rmsNormEps()); // Gemma3TextConfig's default (text_config leaves it out)
        assertEquals(10000.0, c.arch().localRopeTheta());
        assertTrue(c.tieWordEmbeddings());
        assertEquals(3, c.numHiddenLayers());
    }

    /**
     * Both layouts load the same text weights; saving writes the multimodal checkpoint back in the layout it was
     * read in (vision tower included, text_config keeping only its own keys), and it reloads to the same model.
     */
    @Test
    void bothLayoutsLoadTheSameModelAndSaveInTheirLayout(@TempDir Path tmp) throws IOException {
        try (DecoderModel legacy = DecoderModel.load(LEGACY, ScalarType.Float);
                DecoderModel nested = DecoderModel.load(NESTED, ScalarType.Float);
                PointerScope scope = new PointerScope()) {
            Tensor ids = Tensors.longs(new long[] {5, 9, 30, 3, 77, 12}, 1, 6); // (B, T)
            Tensor logits = legacy.forward(ids); // (B, T, V)
            assertTrue(torch.equal(logits, nested.forward(ids)));
            legacy.save(tmp.resolve("legacy"));
            nested.save(tmp.resolve("nested"));
            String json = Files.readString(tmp.resolve("legacy/config.json"));
            assertTrue(json.contains("\"model_type\" : \"gemma3\"") && json.contains("vision_config")
                    && json.contains("\"model_type\" : \"gemma3_text\""), json);
            assertFalse(json.contains("rms_norm_eps"), "defaults stay out of text_config: " + json);
            for (String layout : List.of("legacy", "nested")) {
                Path src = layout.equals("legacy") ? LEGACY : NESTED;
                try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(tmp.resolve(layout));
                        SafetensorsCheckpoint orig = SafetensorsCheckpoint.open(src)) {
                    assertEquals(orig.names(), ck.names(), layout);
                }
                try (DecoderModel reloaded = DecoderModel.load(tmp.resolve(layout), ScalarType.Float)) {
                    assertEquals("gemma3", reloaded.config().textTowerOf());
                    assertTrue(torch.equal(logits, reloaded.forward(ids)));
                }
            }
            assertEquals("language_model.model.layers.1.mlp.up_proj.weight",
                    legacy.storedName("model.layers.1.mlp.up_proj.weight"));
            assertEquals("language_model.lm_head", legacy.storedName("lm_head"));
            assertEquals("model.language_model.norm.weight", nested.storedName("model.norm.weight"));
            assertEquals("lm_head.weight", nested.storedName("lm_head.weight"));
        }
    }

    /** A bf16 save of an fp32 multimodal checkpoint says so at the top level and in text_config when it has the key. */
    @Test
    void savedConfigCarriesTheSavedDtype(@TempDir Path tmp) throws IOException {
        try (DecoderModel m = DecoderModel.load(NESTED, ScalarType.BFloat16)) {
            m.save(tmp.resolve("bf16"));
            String json = Files.readString(tmp.resolve("bf16/config.json"));
            assertTrue(json.contains("\"torch_dtype\" : \"bfloat16\""), json);
            assertFalse(json.contains("float32"), json);
        }
    }

    @Test
    void badMultimodalInputsNameTheKeyOrTensors(@TempDir Path tmp) throws IOException {
        Map<String, Object> k = new LinkedHashMap<>();
        k.put("model_type", "gemma3");
        k.put("vision_config", Map.of());
        var e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k));
        assertTrue(e.getMessage().contains("'text_config' is missing"), e.getMessage());
        k.put("text_config", Map.of("model_type", "llama"));
        e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k));
        assertTrue(e.getMessage().contains("'text_config.model_type' is 'llama'"), e.getMessage());
        k.put("text_config", Map.of("partial_rotary_factor", 0.5)); // a phi3/glm4 key in a Gemma 3 text config
        e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k));
        assertTrue(e.getMessage().contains("(text_config): key 'partial_rotary_factor' belongs to phi3/glm4"),
                e.getMessage());

        // a gemma3 config over a text-only checkpoint (model.layers.* names): neither multimodal layout
        Path dir = tmp.resolve("textonly");
        Files.createDirectories(dir);
        Files.copy(LEGACY.resolve("config.json"), dir.resolve("config.json"));
        Files.copy(GoldenParityTest.ROOT.resolve("gemma3_text_local/checkpoint/model.safetensors"),
                dir.resolve("model.safetensors"));
        e = assertThrows(ModelFormatException.class, () -> DecoderModel.load(dir, ScalarType.Float).close());
        assertTrue(e.getMessage().contains("no language_model.model.* or model.language_model.*")
                && e.getMessage().contains("gemma3_text"), e.getMessage());

        // both layouts in one checkpoint
        Path mixed = tmp.resolve("mixed");
        Files.createDirectories(mixed);
        Files.copy(LEGACY.resolve("config.json"), mixed.resolve("config.json"));
        try (SafetensorsFile a = SafetensorsFile.open(LEGACY.resolve("model.safetensors"));
                PointerScope scope = new PointerScope()) {
            Map<String, Tensor> t = new LinkedHashMap<>();
            for (String n : a.names()) {
                t.put(n, a.view(n));
            }
            t.put("model.language_model.norm.weight", a.view("language_model.model.norm.weight"));
            SafetensorsWriter.write(mixed.resolve("model.safetensors"), t, Map.of());
        }
        e = assertThrows(ModelFormatException.class, () -> DecoderModel.load(mixed, ScalarType.Float).close());
        assertTrue(e.getMessage().contains("mixes language_model.model.* and model.language_model.*"),
                e.getMessage());
    }
}
