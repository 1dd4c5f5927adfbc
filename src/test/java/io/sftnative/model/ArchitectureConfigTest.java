package io.sftnative.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.torch.TorchRuntime;

/**
 * How config.json keys become an {@link Architecture} (defaults of each family's transformers config class), and the
 * errors for configs that mix families, unknown rope types and weights that do not fit the config.
 */
class ArchitectureConfigTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/model");

    @TempDir
    Path dir;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    static Map<String, Object> config(String type) {
        Map<String, Object> k = new LinkedHashMap<>();
        k.put("model_type", type);
        k.put("vocab_size", 64);
        k.put("hidden_size", 32);
        k.put("intermediate_size", 48);
        k.put("num_hidden_layers", 4);
        k.put("num_attention_heads", 4);
        k.put("num_key_value_heads", 2);
        return k;
    }

    @Test
    void familyDefaultsFollowTheirConfigClasses() {
        Architecture g2 = ModelConfig.fromMap(config("gemma2")).arch();
        assertEquals(50.0, g2.attnSoftcap()); // Gemma2Config defaults when the keys are absent
        assertEquals(30.0, g2.finalSoftcap());
        assertEquals(List.of(true, false, true, false), g2.slidingLayers());
        assertEquals(1 / Math.sqrt(256), g2.attentionScale(), 1e-15); // query_pre_attn_scalar 256
        ModelConfig g2c = ModelConfig.fromMap(config("gemma2"));
        assertEquals(256, g2c.headDim());
        assertTrue(g2c.tieWordEmbeddings());

        Map<String, Object> k = config("gemma3_text");
        k.put("sliding_window_pattern", 2);
        Architecture g3 = ModelConfig.fromMap(k).arch();
        assertNull(g3.attnSoftcap());
        assertEquals(List.of(true, false, true, false), g3.slidingLayers());
        assertEquals(10000.0, g3.localRopeTheta());
        assertEquals(Architecture.QkNorm.PER_HEAD, g3.qkNorm());

        Map<String, Object> q = config("qwen2");
        q.put("use_sliding_window", true);
        q.put("sliding_window", 8);
        q.put("max_window_layers", 3);
        assertEquals(List.of(false, false, false, true), ModelConfig.fromMap(q).arch().slidingLayers());
        q.put("layer_types", List.of("sliding_attention", "full_attention", "full_attention", "full_attention"));
        assertEquals(List.of(true, false, false, false), ModelConfig.fromMap(q).arch().slidingLayers());

        Map<String, Object> p = config("phi3");
        p.put("partial_rotary_factor", 0.75);
        ModelConfig phi = ModelConfig.fromMap(p);
        assertEquals(6, phi.arch().rotaryDims()); // int(8 * 0.75)
        assertEquals("qkv_proj", phi.arch().qkvFused());
        assertTrue(ParameterLayout.linearModules(phi).contains("model.layers.0.mlp.gate_up_proj"));
        assertEquals(8, ModelConfig.fromMap(config("glm4")).arch().rotaryDims() * 2); // glm4 default 0.5
    }

    @Test
    void keysOfAnotherFamilyAreRefusedByName() {
        Map<String, Object> k = config("llama");
        k.put("attn_logit_softcapping", 50.0);
        var e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k));
        assertTrue(e.getMessage().contains("'attn_logit_softcapping'") && e.getMessage().contains("gemma2")
                && e.getMessage().contains("'llama'"), e.getMessage());
        Map<String, Object> k2 = config("qwen3");
        k2.put("logits_scaling", 8.0);
        e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k2));
        assertTrue(e.getMessage().contains("'logits_scaling'") && e.getMessage().contains("granite"), e.getMessage());
        Map<String, Object> k3 = config("llama");
        k3.put("partial_rotary_factor", 1.0); // at its neutral value it changes nothing: accepted
        ModelConfig.fromMap(k3);
        Map<String, Object> k4 = config("gemma2");
        k4.put("hidden_activation", "relu");
        e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k4));
        assertTrue(e.getMessage().contains("'hidden_activation'") && e.getMessage().contains("relu"), e.getMessage());
        Map<String, Object> k5 = config("gemma3_text");
        k5.put("layer_types", List.of("sliding_attention", "full_attention"));
        e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k5));
        assertTrue(e.getMessage().contains("'layer_types' has 2 entries for 4 layers"), e.getMessage());
    }

    @Test
    void ropeScalingErrorsNameTheKey() {
        Map<String, Object> k = config("llama");
        k.put("rope_scaling", Map.of("rope_type", "su", "factor", 2.0));
        var e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k));
        assertTrue(e.getMessage().contains("'rope_scaling'") && e.getMessage().contains("'su'")
                && e.getMessage().contains("longrope"), e.getMessage());
        Map<String, Object> p = config("phi3");
        p.put("rope_scaling", Map.of("type", "longrope", "short_factor", List.of(1.0, 1.0),
                "long_factor", List.of(1.0, 2.0, 3.0, 4.0)));
        e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(p));
        assertTrue(e.getMessage().contains("'rope_scaling.short_factor' has 2 entries") && e.getMessage()
                .contains("need 4"), e.getMessage());
    }

    @Test
    void baichuanVariantsFollowTheRemoteCodeByTheirNumbers() {
        Map<String, Object> k = config("baichuan");
        k.put("num_key_value_heads", 4);
        k.put("architectures", List.of("BaichuanForCausalLM")); // hidden_size != 4096: the 13B code (ALiBi)
        assertTrue(ModelConfig.fromMap(k).arch().alibi());
        assertTrue(!ModelConfig.fromMap(k).arch().normHead());
        k.put("z_loss_weight", 0); // Baichuan2's configuration key: NormHead
        assertTrue(ModelConfig.fromMap(k).arch().normHead());
        k.put("z_loss_weight", 0.5);
        var e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k));
        assertTrue(e.getMessage().contains("'z_loss_weight'"), e.getMessage());
        k.remove("z_loss_weight");
        k.put("architectures", List.of("BaiChuanForCausalLM"));
        assertTrue(!ModelConfig.fromMap(k).arch().alibi());
        assertEquals("W_pack", ModelConfig.fromMap(k).arch().qkvFused());
        assertTrue(!ModelConfig.fromMap(k).arch().normHead());
        k.put("vocab_size", 125696); // Baichuan2's vocabulary: NormHead
        k.put("num_hidden_layers", 1);
        k.put("hidden_size", 8);
        k.put("intermediate_size", 8);
        k.put("num_attention_heads", 2);
        k.put("num_key_value_heads", 2);
        ModelConfig c = ModelConfig.fromMap(k);
        assertTrue(c.arch().normHead());
        try (DecoderModel m = RandomInit.create(c, 3, ScalarType.Float);
                org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
            m.setRequiresGrad(true);
            org.bytedeco.pytorch.Tensor h = org.bytedeco.pytorch.global.torch.randn(2, 3, 8); // (B, T, H)
            org.bytedeco.pytorch.Tensor w = m.parameter("lm_head.weight"); // (V, H)
            org.bytedeco.pytorch.Tensor got = m.lmHead(h); // (B, T, V)
            // F.normalize(W) computed independently: each row over its own L2 norm
            org.bytedeco.pytorch.Tensor rows = w.detach().pow(new org.bytedeco.pytorch.Scalar(2.0))
                    .sum(new long[] {1}, true, new org.bytedeco.pytorch.ScalarTypeOptional()).sqrt();
            org.bytedeco.pytorch.Tensor want = org.bytedeco.pytorch.global.torch.linear(h, w.detach().div(rows));
            double err = got.detach().sub(want).abs().max().item_double() / want.abs().max().item_double();
            assertTrue(err < 1e-6, "NormHead logits relative error " + err);
            got.sum().backward();
            assertTrue(w.grad().defined() && w.grad().abs().sum().item_double() > 0, "gradient reaches lm_head");
        }
    }

    @Test
    void weightsThatDoNotFitTheConfigNameTheTensors() throws IOException {
        Path ck = dir.resolve("relabelled");
        Files.createDirectories(ck);
        Path src = GOLDEN.resolve("gemma2_softcap/checkpoint");
        Files.copy(src.resolve("model.safetensors"), ck.resolve("model.safetensors"));
        // a gemma2 checkpoint labelled gemma3_text: the q/k norms gemma3 needs are not there
        Files.writeString(ck.resolve("config.json"), Files.readString(src.resolve("config.json"))
                .replace("\"gemma2\"", "\"gemma3_text\""));
        var e = assertThrows(ModelFormatException.class, () -> DecoderModel.load(ck, ScalarType.Float));
        assertTrue(e.getMessage().contains("missing tensors model.layers.0.self_attn.q_norm.weight"),
                e.getMessage());
        // a phi3 checkpoint with the wrong head count: the fused qkv_proj does not fit
        Path ph = dir.resolve("phi3");
        Files.createDirectories(ph);
        Path p3 = GOLDEN.resolve("phi3_longrope/checkpoint");
        Files.copy(p3.resolve("model.safetensors"), ph.resolve("model.safetensors"));
        Files.writeString(ph.resolve("config.json"), Files.readString(p3.resolve("config.json"))
                .replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 4"));
        e = assertThrows(ModelFormatException.class, () -> DecoderModel.load(ph, ScalarType.Float));
        assertTrue(e.getMessage().contains("'model.layers.0.self_attn.qkv_proj.weight'")
                && e.getMessage().contains("[128, 64]"), e.getMessage());
    }
}
