package io.sftnative.lora;

import static io.sftnative.lora.LoraTesting.relErr;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.torch.TorchRuntime;

class PeftFormatTest {
    @TempDir
    Path tmp;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @Test
    void savesPeftKeyNamesAndConfigFields() throws Exception {
        try (DecoderModel model = LoraTesting.tiny("llama", 32, 2, false);
                LoraAdapters lora = LoraAdapters.attach(model, new LoraSpec(4, 16, 0.05, List.of("all"), true,
                        List.of("lm_head")), 1)) {
            Path dir = tmp.resolve("adapter");
            lora.save(dir, "/models/base");
            try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("adapter_model.safetensors"))) {
                TreeSet<String> names = new TreeSet<>(f.names());
                assertEquals(2 * 7 * 2 + 1, names.size(), names.toString());
                assertTrue(names.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
                assertTrue(names.contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
                assertTrue(names.contains("base_model.model.lm_head.weight"), names.toString());
                assertFalse(names.stream().anyMatch(n -> n.contains("default") || n.contains("modules_to_save")));
                assertEquals(Map.of("format", "pt"), f.metadata());
                assertEquals("F32", f.entry("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").dtype()
                        .name());
                assertEquals(List.of(4L, 32L), boxed(f.entry(
                        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").shape()));
                assertEquals(List.of(48L, 4L), boxed(f.entry(
                        "base_model.model.model.layers.0.mlp.up_proj.lora_B.weight").shape()));
            }
            String text = Files.readString(dir.resolve("adapter_config.json"));
            assertTrue(text.startsWith("{\n  \"alpha_pattern\": {},\n  \"auto_mapping\": null,"), text);
            JsonNode c = new ObjectMapper().readTree(text);
            assertEquals("LORA", c.get("peft_type").asText());
            assertEquals("CAUSAL_LM", c.get("task_type").asText());
            assertEquals(4, c.get("r").asInt());
            assertTrue(c.get("lora_alpha").isIntegralNumber());
            assertEquals(16, c.get("lora_alpha").asInt());
            assertEquals(0.05, c.get("lora_dropout").asDouble());
            assertTrue(c.get("use_rslora").asBoolean());
            assertEquals("/models/base", c.get("base_model_name_or_path").asText());
            assertEquals("none", c.get("bias").asText());
            assertFalse(c.get("fan_in_fan_out").asBoolean());
            assertTrue(c.get("init_lora_weights").asBoolean());
            assertTrue(c.get("inference_mode").asBoolean());
            assertTrue(c.get("revision").isNull());
            assertTrue(c.get("layers_to_transform").isNull());
            assertFalse(c.get("use_dora").asBoolean());
            List<String> targets = new ArrayList<>();
            c.get("target_modules").forEach(n -> targets.add(n.asText()));
            assertEquals(List.of("down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"), targets);
            assertEquals("lm_head", c.get("modules_to_save").get(0).asText());
        }
    }

    @Test
    void allPlusLmHeadSavesTheResolvedLeafNames() throws Exception {
        try (DecoderModel model = LoraTesting.tiny("llama", 32, 2, false);
                LoraAdapters lora = LoraAdapters.attach(model, LoraTesting.spec(2, List.of("all", "lm_head")), 1)) {
            assertEquals(15, lora.modulePaths().size());
            assertEquals("lm_head", lora.modulePaths().get(14));
            Path dir = tmp.resolve("a");
            lora.save(dir, "x");
            JsonNode c = new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
            assertEquals("[\"down_proj\",\"gate_proj\",\"k_proj\",\"lm_head\",\"o_proj\",\"q_proj\",\"up_proj\","
                    + "\"v_proj\"]", c.get("target_modules").toString());
        }
    }

    private static List<Long> boxed(long[] a) {
        List<Long> out = new ArrayList<>();
        for (long x : a) {
            out.add(x);
        }
        return out;
    }

    @Test
    void saveThenLoadGivesIdenticalOutputs() throws Exception {
        Path dir = tmp.resolve("adapter");
        Tensor ids = LoraTesting.sampleIds();
        float[] before;
        try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                LoraAdapters lora = LoraAdapters.attach(model, new LoraSpec(4, 8, 0.1, List.of("q_proj", "v_proj",
                        "down_proj"), false, List.of("embed_tokens")), 9);
                PointerScope scope = new PointerScope()) {
            LoraTesting.randomize(lora, 4);
            try (var g = new org.bytedeco.pytorch.NoGradGuard()) {
                model.parameter("model.embed_tokens.weight").mul_(new org.bytedeco.pytorch.Scalar(1.5));
            }
            before = io.sftnative.model.Tensors.toFloats(model.forward(ids));
            lora.save(dir, LoraTesting.LLAMA.toString());
        }
        try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                LoraAdapters lora = LoraAdapters.load(model, dir, false);
                PointerScope scope = new PointerScope()) {
            assertEquals(List.of("q_proj", "v_proj", "down_proj"), lora.spec().targets());
            assertEquals(List.of("embed_tokens"), lora.spec().additionalTarget());
            assertEquals(0.1, lora.spec().dropout());
            assertFalse(lora.trainableParameters().values().iterator().next().requires_grad());
            float[] after = io.sftnative.model.Tensors.toFloats(model.forward(ids));
            assertEquals(0.0, relErr(io.sftnative.model.Tensors.floats(after, after.length),
                    io.sftnative.model.Tensors.floats(before, before.length)), "round trip must be exact");
        }
        try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                LoraAdapters lora = LoraAdapters.load(model, dir, true)) {
            assertTrue(lora.trainableParameters().values().stream().allMatch(Tensor::requires_grad));
            assertTrue(model.parameter("model.embed_tokens.weight").requires_grad());
            assertFalse(model.parameter("model.norm.weight").requires_grad());
        }
    }

    @Test
    void adapterForAnotherModelFailsNamingTheTensor() throws Exception {
        Path dir = tmp.resolve("adapter");
        try (DecoderModel model = LoraTesting.tiny("llama", 32, 2, false);
                LoraAdapters lora = LoraAdapters.attach(model, LoraTesting.spec(4, List.of("q_proj")), 1)) {
            lora.save(dir, "tiny-32");
        }
        try (DecoderModel other = LoraTesting.tiny("llama", 48, 2, false)) {
            var e = assertThrows(AdapterFormatException.class, () -> LoraAdapters.load(other, dir, false));
            assertTrue(e.getMessage().contains("'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'")
                    && e.getMessage().contains("[4, 32]") && e.getMessage().contains("[4, 48]")
                    && e.getMessage().contains("tiny-32"), e.getMessage());
            for (String p : other.linearPaths()) {
                assertTrue(other.linear(p) instanceof io.sftnative.model.DenseLinear, "failed load left a slot");
            }
        }
        try (DecoderModel deeper = LoraTesting.tiny("llama", 32, 1, false)) {
            var e = assertThrows(AdapterFormatException.class, () -> LoraAdapters.load(deeper, dir, false));
            assertTrue(e.getMessage().contains("unexpected tensors base_model.model.model.layers.1.self_attn.q_proj"),
                    e.getMessage());
        }
        // target_modules naming a module the file lacks
        ObjectNode cfg = (ObjectNode) new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
        cfg.putArray("target_modules").add("q_proj").add("k_proj");
        Files.writeString(dir.resolve("adapter_config.json"), cfg.toString());
        try (DecoderModel model = LoraTesting.tiny("llama", 32, 2, false)) {
            var e = assertThrows(AdapterFormatException.class, () -> LoraAdapters.load(model, dir, false));
            assertTrue(e.getMessage().contains("missing tensors base_model.model.model.layers.0.self_attn.k_proj"
                    + ".lora_A.weight"), e.getMessage());
            cfg.putArray("target_modules").add("query_key_value");
            Files.writeString(dir.resolve("adapter_config.json"), cfg.toString());
            var e2 = assertThrows(IllegalArgumentException.class, () -> LoraAdapters.load(model, dir, false));
            assertTrue(e2.getMessage().contains("query_key_value") && e2.getMessage().contains("q_proj"),
                    e2.getMessage());
        }
    }

    @Test
    void missingOrUnsupportedAdapterFilesAreClearErrors() throws Exception {
        try (DecoderModel model = LoraTesting.tiny("llama", 32, 2, false)) {
            var e = assertThrows(NoSuchFileException.class,
                    () -> LoraAdapters.load(model, tmp.resolve("nope"), false));
            assertTrue(e.getMessage().contains("adapter directory not found"), e.getMessage());
            Path dir = Files.createDirectories(tmp.resolve("empty"));
            e = assertThrows(NoSuchFileException.class, () -> LoraAdapters.load(model, dir, false));
            assertTrue(e.getMessage().contains("adapter_config.json"), e.getMessage());
            try (LoraAdapters lora = LoraAdapters.attach(model, LoraTesting.spec(2, List.of("q_proj")), 1)) {
                lora.save(dir, "x");
            }
            Files.move(dir.resolve("adapter_model.safetensors"), dir.resolve("adapter_model.bin"));
            var f = assertThrows(AdapterFormatException.class, () -> LoraAdapters.load(model, dir, false));
            assertTrue(f.getMessage().contains("adapter_model.bin"), f.getMessage());
            Files.delete(dir.resolve("adapter_model.bin"));
            e = assertThrows(NoSuchFileException.class, () -> LoraAdapters.load(model, dir, false));
            assertTrue(e.getMessage().contains("adapter_model.safetensors"), e.getMessage());
            ObjectNode cfg = (ObjectNode) new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
            cfg.put("fan_in_fan_out", true); // DoRA loads now (DoraTest); GPT-2 style Conv1D weights still do not
            Files.writeString(dir.resolve("adapter_config.json"), cfg.toString());
            f = assertThrows(AdapterFormatException.class, () -> LoraAdapters.load(model, dir, false));
            assertTrue(f.getMessage().contains("fan_in_fan_out"), f.getMessage());
            cfg.put("fan_in_fan_out", false).put("peft_type", "IA3");
            Files.writeString(dir.resolve("adapter_config.json"), cfg.toString());
            f = assertThrows(AdapterFormatException.class, () -> LoraAdapters.load(model, dir, false));
            assertTrue(f.getMessage().contains("'IA3'"), f.getMessage());
            Files.writeString(dir.resolve("adapter_config.json"), "{ not json");
            f = assertThrows(AdapterFormatException.class, () -> LoraAdapters.load(model, dir, false));
            assertTrue(f.getMessage().contains("not valid JSON"), f.getMessage());
        }
    }

    @Test
    void tiedEmbeddingIsSavedAsBothModulesToSaveCopiesThatPeftReadsAsOneMatrix() throws Exception {
        // PEFT wraps embed_tokens and lm_head separately; both copies must be written (measured with PEFT 0.21 by
        // tools/interop/hf_peft_check.py: with only embed_tokens, PEFT's loss was 4.85 against our 2.05).
        Path dir = tmp.resolve("tied");
        Tensor ids = LoraTesting.sampleIds();
        float[] before;
        try (DecoderModel model = LoraTesting.tiny("qwen2", 32, 2, true);
                LoraAdapters lora = LoraAdapters.attach(model, new LoraSpec(2, 4, 0.0, List.of("q_proj"), false,
                        List.of("embed_tokens")), 3);
                PointerScope scope = new PointerScope()) {
            LoraTesting.randomize(lora, 2);
            try (var g = new org.bytedeco.pytorch.NoGradGuard()) {
                model.parameter("model.embed_tokens.weight").mul_(new org.bytedeco.pytorch.Scalar(1.5));
            }
            before = io.sftnative.model.Tensors.toFloats(model.forward(ids));
            lora.save(dir, "tiny");
        }
        JsonNode cfg = new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
        assertEquals("[\"embed_tokens\",\"lm_head\"]", cfg.get("modules_to_save").toString());
        Path weights = dir.resolve("adapter_model.safetensors");
        Map<String, Tensor> copies = new java.util.LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(weights); PointerScope scope = new PointerScope()) {
            Tensor embed = f.load("base_model.model.model.embed_tokens.weight", ScalarType.Float); // (V, H)
            Tensor head = f.load("base_model.model.lm_head.weight", ScalarType.Float); // (V, H)
            assertTrue(embed.equal(head), "both copies hold the one tied matrix");
            for (String n : f.names()) {
                Tensor t = f.load(n, ScalarType.Float);
                t.retainReference();
                copies.put(n, t);
            }
        }
        try (DecoderModel model = LoraTesting.tiny("qwen2", 32, 2, true);
                LoraAdapters lora = LoraAdapters.load(model, dir, false);
                PointerScope scope = new PointerScope()) {
            float[] after = io.sftnative.model.Tensors.toFloats(model.forward(ids));
            assertEquals(0.0, relErr(io.sftnative.model.Tensors.floats(after, after.length),
                    io.sftnative.model.Tensors.floats(before, before.length)), "round trip must be exact");
        }
        // copies trained apart (PEFT without weight tying) cannot be represented: a clear error, not a silent pick
        try (PointerScope scope = new PointerScope()) {
            copies.get("base_model.model.lm_head.weight").add_(new org.bytedeco.pytorch.Scalar(0.25));
            io.sftnative.model.safetensors.SafetensorsWriter.write(weights, copies, Map.of("format", "pt"));
        } finally {
            copies.values().forEach(Tensor::releaseReference);
        }
        try (DecoderModel model = LoraTesting.tiny("qwen2", 32, 2, true)) {
            var e = assertThrows(AdapterFormatException.class, () -> LoraAdapters.load(model, dir, false));
            assertTrue(e.getMessage().contains("different values") && e.getMessage().contains("tied"),
                    e.getMessage());
        }
    }
}
