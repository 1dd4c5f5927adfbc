package io.sftnative.lora;

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

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.Tensors;
import io.sftnative.model.safetensors.SafetensorsCheckpoint;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.model.safetensors.SafetensorsWriter;
import io.sftnative.torch.TorchRuntime;

/**
 * Gemma 3 multimodal checkpoints (Gemma3ForConditionalGeneration) keep their layout through training: adapters use
 * the module paths PEFT has on that model for the checkpoint's layout, full saves and exports keep the vision tower,
 * and adapters of any of the three namings load on every form of the model.
 */
class MultimodalAdapterTest {
    static final Path LEGACY = LoraTesting.GOLDEN.resolve("gemma3_mm_legacy/checkpoint"); // language_model.model.*
    static final Path NESTED = LoraTesting.GOLDEN.resolve("gemma3_mm_nested/checkpoint"); // model.language_model.*
    static final Path TEXT = LoraTesting.GOLDEN.resolve("gemma3_text_local/checkpoint"); // the same text weights
    static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    static Tensor ids() {
        return Tensors.longs(new long[] {5, 9, 30, 3, 77, 12, 8, 200}, 1, 8); // (B, T)
    }

    /** A rank-4 adapter with random B on every linear layer and embed_tokens fully trained, saved to {@code dir}. */
    static Tensor trainAdapter(Path base, Path dir) throws IOException {
        try (DecoderModel m = DecoderModel.load(base, ScalarType.Float)) {
            LoraAdapters lora = LoraAdapters.attach(m, new LoraSpec(4, 8.0, 0.0, List.of("all"), false,
                    List.of("embed_tokens")), 11);
            LoraTesting.randomize(lora, 5);
            try (org.bytedeco.pytorch.NoGradGuard g = new org.bytedeco.pytorch.NoGradGuard()) {
                m.embedWeight().add_(new org.bytedeco.pytorch.Scalar(0.01)); // the trained copy differs from the base
            }
            lora.save(dir, base.toString());
            return m.forward(ids()).detach().clone(); // (B, T, V) with the adapter
        }
    }

    static Tensor logitsWith(Path base, Path adapter) throws IOException {
        try (DecoderModel m = DecoderModel.load(base, ScalarType.Float)) {
            LoraAdapters.load(m, adapter, false);
            return m.forward(ids()).detach().clone();
        }
    }

    @Test
    void adaptersUseTheCheckpointsModulePathsAndLoadOnEveryForm(@TempDir Path tmp) throws IOException {
        try (PointerScope scope = new PointerScope()) {
            Path legacy = tmp.resolve("legacy");
            Tensor expected = trainAdapter(LEGACY, legacy);
            try (SafetensorsFile f = SafetensorsFile.open(legacy.resolve(PeftConfig.WEIGHTS_FILE))) {
                // transformers 4.50/4.51's module paths, which PEFT on 4.52+ and 5.x maps to its own (PEFT #2574)
                assertTrue(f.contains("base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_A.weight"),
                        f.names().toString());
                assertTrue(f.contains("base_model.model.language_model.model.embed_tokens.weight"));
                assertTrue(f.contains("base_model.model.language_model.lm_head.weight")); // tied: both copies
                assertFalse(f.names().stream().anyMatch(n -> n.startsWith("base_model.model.model.")));
            }
            JsonNode cfg = JSON.readTree(legacy.resolve(PeftConfig.CONFIG_FILE).toFile());
            String regex = cfg.get("target_modules").asText(); // the language model's modules only, not SigLIP's
            assertTrue(regex.startsWith("^(language_model\\.model\\.layers\\.0\\.self_attn\\.q_proj|"), regex);
            assertTrue(regex.matches(".*\\|language_model\\\\.model\\\\.layers\\\\.2\\\\.mlp\\\\.down_proj\\)\\$"),
                    regex);
            assertFalse(java.util.regex.Pattern.compile(regex)
                    .matcher("vision_tower.vision_model.encoder.layers.0.self_attn.q_proj").matches());

            Path nested = tmp.resolve("nested");
            Tensor expectedNested = trainAdapter(NESTED, nested);
            assertTrue(torch.equal(expected, expectedNested), "same text weights, same adapter seed");
            try (SafetensorsFile f = SafetensorsFile.open(nested.resolve(PeftConfig.WEIGHTS_FILE))) {
                // transformers 4.52+ / 5.x module paths (Gemma3ForConditionalGeneration.model.language_model)
                assertTrue(f.contains("base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight"),
                        f.names().toString());
                assertTrue(f.contains("base_model.model.lm_head.weight"));
            }
            // each adapter loads on both layouts and on the text-only model, giving the same logits
            for (Path adapter : List.of(legacy, nested)) {
                for (Path base : List.of(LEGACY, NESTED, TEXT)) {
                    double err = LoraTesting.relErr(logitsWith(base, adapter), expected);
                    assertTrue(err < 1e-6, adapter + " on " + base + ": " + err);
                }
            }
        }
    }

    /** Adapters written before (text-model keys base_model.model.model.layers...) still load on the multimodal base. */
    @Test
    void textModelKeysStillLoadOnAMultimodalBase(@TempDir Path tmp) throws IOException {
        try (PointerScope scope = new PointerScope()) {
            Path text = tmp.resolve("text");
            Tensor expected = trainAdapter(TEXT, text);
            try (SafetensorsFile f = SafetensorsFile.open(text.resolve(PeftConfig.WEIGHTS_FILE))) {
                assertTrue(f.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
            }
            assertTrue(LoraTesting.relErr(logitsWith(LEGACY, text), expected) < 1e-6);
            assertTrue(LoraTesting.relErr(logitsWith(NESTED, text), expected) < 1e-6);

            // one module named in two layouts is refused, naming both keys
            Path mixed = tmp.resolve("mixed");
            Files.createDirectories(mixed);
            Files.copy(text.resolve(PeftConfig.CONFIG_FILE), mixed.resolve(PeftConfig.CONFIG_FILE));
            try (SafetensorsFile f = SafetensorsFile.open(text.resolve(PeftConfig.WEIGHTS_FILE))) {
                Map<String, Tensor> t = new LinkedHashMap<>();
                for (String n : f.names()) {
                    t.put(n, f.view(n));
                }
                String k = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
                t.put("base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_A.weight", f.view(k));
                SafetensorsWriter.write(mixed.resolve(PeftConfig.WEIGHTS_FILE), t, Map.of());
            }
            try (DecoderModel m = DecoderModel.load(LEGACY, ScalarType.Float)) {
                var e = assertThrows(AdapterFormatException.class, () -> LoraAdapters.load(m, mixed, false));
                assertTrue(e.getMessage().contains("language_model.model.layers.0.self_attn.q_proj.lora_A.weight")
                        && e.getMessage().contains("two layouts"), e.getMessage());
            }
        }
    }

    /**
     * A merged export of a multimodal base is the multimodal checkpoint again: its layout, the vision tower and
     * projector bit for bit, config.json with text_config (and, with LLaMA-Factory's rope_scaling key, text_config's
     * rope_scaling and max_position_embeddings as LLaMA-Factory's export writes them).
     */
    @Test
    void exportKeepsTheVisionTowerAndLayout(@TempDir Path tmp) throws IOException {
        for (Path base : List.of(LEGACY, NESTED)) {
            try (PointerScope scope = new PointerScope()) {
                Path adapter = tmp.resolve("a-" + base.getParent().getFileName());
                Tensor expected = trainAdapter(base, adapter);
                Path out = tmp.resolve("export-" + base.getParent().getFileName());
                ModelExport.export(base, List.of(adapter), out, Long.MAX_VALUE, null, null,
                        TorchRuntime.device(), "linear", m -> { });
                try (SafetensorsCheckpoint src = SafetensorsCheckpoint.open(base);
                        SafetensorsCheckpoint got = SafetensorsCheckpoint.open(out)) {
                    assertEquals(src.names(), got.names(), "the base's tensor names, vision included");
                    for (String n : src.names()) {
                        if (n.contains("vision_tower") || n.contains("multi_modal_projector")) {
                            assertTrue(torch.equal(src.view(n), got.view(n)), n + " kept bit for bit");
                        }
                    }
                }
                JsonNode top = JSON.readTree(out.resolve("config.json").toFile());
                assertEquals("gemma3", top.get("model_type").asText());
                assertEquals("Gemma3ForConditionalGeneration", top.get("architectures").get(0).asText());
                assertTrue(top.has("vision_config") && top.get("image_token_index").asInt() == 252);
                JsonNode tc = top.get("text_config");
                assertEquals("gemma3_text", tc.get("model_type").asText());
                assertEquals(512, tc.get("max_position_embeddings").asInt(), "256 x LLaMA-Factory's export factor 2");
                assertEquals("linear", tc.get("rope_scaling").get("rope_type").asText());
                assertEquals(2.0, tc.get("rope_scaling").get("factor").asDouble());
                assertFalse(tc.has("rms_norm_eps"), "Gemma3TextConfig's defaults are not written into text_config");
                try (DecoderModel merged = DecoderModel.load(out, ScalarType.Float)) {
                    assertTrue(merged.savesMultimodal());
                    assertEquals(2.0, merged.config().ropeScaling().factor());
                }
                // the merged weights are base + adapter: same logits as the adapter, under the base's own RoPE
                Path plain = tmp.resolve("plain-" + base.getParent().getFileName());
                ModelExport.export(base, List.of(adapter), plain, Long.MAX_VALUE, null, m -> { });
                try (DecoderModel merged = DecoderModel.load(plain, ScalarType.Float)) {
                    double err = LoraTesting.relErr(merged.forward(ids()), expected);
                    assertTrue(err < 1e-5, "merged vs adapter: " + err);
                }
            }
        }
    }

    /** Saving into the checkpoint the model was loaded from is refused (its vision files would be replaced). */
    @Test
    void savingOverTheSourceIsRefused(@TempDir Path tmp) throws IOException {
        Path copy = tmp.resolve("base");
        Files.createDirectories(copy);
        for (String f : List.of("config.json", "model.safetensors")) {
            Files.copy(LEGACY.resolve(f), copy.resolve(f));
        }
        try (DecoderModel m = DecoderModel.load(copy, ScalarType.Float)) {
            var e = assertThrows(IllegalArgumentException.class, () -> m.save(copy));
            assertTrue(e.getMessage().contains("it is the gemma3 checkpoint it was loaded from"), e.getMessage());
        }
    }
}
