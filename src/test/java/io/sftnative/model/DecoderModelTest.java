package io.sftnative.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.model.safetensors.SafetensorsCheckpoint;
import io.sftnative.model.safetensors.SafetensorsWriter;
import io.sftnative.torch.TorchRuntime;

class DecoderModelTest {
    static final Path LLAMA = GoldenParityTest.ROOT.resolve("llama_gqa/checkpoint");

    @TempDir
    Path tmp;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    static Map<String, Object> tinyConfig(String type, boolean tied) {
        Map<String, Object> k = new LinkedHashMap<>();
        k.put("model_type", type);
        k.put("vocab_size", 64);
        k.put("hidden_size", 32);
        k.put("intermediate_size", 48);
        k.put("num_hidden_layers", 2);
        k.put("num_attention_heads", 4);
        k.put("num_key_value_heads", 2);
        k.put("tie_word_embeddings", tied);
        k.put("pad_token_id", 0);
        return k;
    }

    @Test
    void unsupportedArchitecturesAndBadConfigsAreClearErrors() {
        Map<String, Object> k = tinyConfig("gpt2", false);
        var e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k));
        assertTrue(e.getMessage().contains("'gpt2'") && e.getMessage().contains("llama, mistral, qwen2, qwen3"),
                e.getMessage());
        Map<String, Object> k2 = tinyConfig("llama", false);
        k2.put("num_key_value_heads", 3);
        e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k2));
        assertTrue(e.getMessage().contains("num_key_value_heads"), e.getMessage());
        Map<String, Object> k3 = tinyConfig("llama", false);
        k3.put("rope_scaling", Map.of("rope_type", "ntk-by-parts", "factor", 4.0));
        e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k3));
        assertTrue(e.getMessage().contains("'rope_scaling'") && e.getMessage().contains("ntk-by-parts")
                && e.getMessage().contains("yarn, dynamic"), e.getMessage());
        Map<String, Object> k4 = tinyConfig("qwen2", false);
        k4.remove("hidden_size");
        e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k4));
        assertTrue(e.getMessage().contains("'hidden_size' is missing"), e.getMessage());
    }

    @Test
    void configReadsHfFieldsPerArchitecture() throws IOException {
        ModelConfig llama = ModelConfig.read(LLAMA);
        assertEquals("llama3", llama.ropeScaling().type());
        assertEquals(16, llama.headDim());
        assertEquals(2, llama.groupSize());
        ModelConfig qwen2 = ModelConfig.read(GoldenParityTest.ROOT.resolve("qwen2_tied_bf16/checkpoint"));
        assertTrue(qwen2.attentionBias() && !qwen2.outputBias() && qwen2.tieWordEmbeddings());
        ModelConfig qwen3 = ModelConfig.read(GoldenParityTest.ROOT.resolve("qwen3_qknorm/checkpoint"));
        assertTrue(qwen3.qkNorm());
        assertEquals(32, qwen3.headDim());
        ModelConfig mistral = ModelConfig.read(GoldenParityTest.ROOT.resolve("mistral_swa/checkpoint"));
        assertEquals(6, mistral.slidingWindow());
        assertEquals(java.util.List.of(2), mistral.eosTokenIds());
    }

    @Test
    void randomInitFollowsHfInitAndSavesLoadableCheckpoints() throws IOException {
        for (boolean tied : new boolean[] {false, true}) {
            Map<String, Object> k = tinyConfig("qwen2", tied);
            k.put("initializer_range", 0.05);
            ModelConfig c = ModelConfig.fromMap(k);
            Path dir = tmp.resolve("m" + tied);
            try (DecoderModel m = RandomInit.create(c, 7, ScalarType.Float); PointerScope s = new PointerScope()) {
                assertEquals(ParameterLayout.count(c), m.parameterCount());
                Tensor emb = m.parameter("model.embed_tokens.weight");
                assertEquals(0.0, emb.select(0, 0).abs().sum().item_double(), 0.0, "padding row zeroed");
                double std = m.parameter("model.layers.0.mlp.up_proj.weight").std().item_double();
                assertEquals(0.05, std, 0.005);
                assertEquals(0.0, m.parameter("model.layers.1.self_attn.k_proj.bias").abs().sum().item_double());
                assertEquals(32.0, m.parameter("model.norm.weight").sum().item_double());
                m.save(dir);
                try (DecoderModel back = DecoderModel.load(dir, null)) {
                    assertEquals(m.parameters().keySet(), back.parameters().keySet());
                    for (var e : m.parameters().entrySet()) {
                        assertTrue(e.getValue().equal(back.parameter(e.getKey())), e.getKey());
                    }
                    Tensor ids = Tensors.longs(new long[] {1, 5, 9, 3}, 1, 4);
                    assertTrue(m.forward(ids).equal(back.forward(ids)));
                    assertEquals(c.modelType(), back.config().modelType());
                    assertEquals("float32", back.config().torchDtype());
                }
            }
            try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(dir)) {
                assertEquals(!tied, ck.contains("lm_head.weight"), "tied models save the embedding once");
            }
        }
    }

    @Test
    void missingUnexpectedAndMisshapenTensorsAreNamed() throws IOException {
        ModelConfig c = ModelConfig.fromMap(tinyConfig("llama", false));
        Path dir = tmp.resolve("bad");
        try (DecoderModel m = RandomInit.create(c, 1, ScalarType.Float); PointerScope s = new PointerScope()) {
            m.save(dir);
            Map<String, Tensor> weights = new LinkedHashMap<>(m.parameters());
            weights.remove("model.layers.1.mlp.up_proj.weight");
            weights.put("model.layers.1.mlp.extra.weight", torch.ones(2, 2));
            SafetensorsWriter.write(dir.resolve("model.safetensors"), weights, Map.of());
        }
        var e = assertThrows(ModelFormatException.class, () -> DecoderModel.load(dir, null).close());
        assertTrue(e.getMessage().contains("missing tensors model.layers.1.mlp.up_proj.weight"), e.getMessage());
        assertTrue(e.getMessage().contains("unexpected tensors model.layers.1.mlp.extra.weight"), e.getMessage());

        Path dir2 = tmp.resolve("shape");
        try (DecoderModel m = RandomInit.create(c, 1, ScalarType.Float)) {
            m.save(dir2);
        }
        Files.writeString(dir2.resolve("config.json"),
                Files.readString(dir2.resolve("config.json")).replace("\"intermediate_size\" : 48",
                        "\"intermediate_size\" : 40"));
        e = assertThrows(ModelFormatException.class, () -> DecoderModel.load(dir2, null).close());
        assertTrue(e.getMessage().contains("model.layers.0.mlp.gate_proj.weight") && e.getMessage().contains("[48, 32]")
                && e.getMessage().contains("[40, 32]"), e.getMessage());
    }

    @Test
    void packedSequencesDoNotSeeEachOther() throws IOException {
        long[] a = {17, 40, 99, 3, 250};
        long[] b = {8, 8, 120, 77};
        try (DecoderModel m = DecoderModel.load(LLAMA, ScalarType.Float); PointerScope s = new PointerScope()) {
            long[] ids = new long[11];
            long[] seg = new long[11];
            System.arraycopy(a, 0, ids, 0, 5);
            System.arraycopy(b, 0, ids, 5, 4);
            for (int i = 0; i < 9; i++) {
                seg[i] = i < 5 ? 1 : 2;
            }
            Tensor packed = m.forward(Tensors.longs(ids, 1, 11),
                    m.packedContext(Tensors.longs(seg, 1, 11), null)); // positions restart per segment
            Tensor alone = m.forward(Tensors.longs(a, 1, 5));
            Tensor aloneB = m.forward(Tensors.longs(b, 1, 4));
            assertTrue(GoldenParityTest.relErr(packed.narrow(1, 0, 5), alone) < 1e-5);
            assertTrue(GoldenParityTest.relErr(packed.narrow(1, 5, 4), aloneB) < 1e-5);
            assertFalse(packed.isnan().any().item_bool(), "padding rows stay finite");
        }
    }

    @Test
    void batchedLeftPaddedGenerationEqualsOneRowAtATime() throws IOException {
        long[][] prompts = {{5, 6, 7, 8, 9, 10, 11}, {200, 3}, {42, 43, 44, 45}};
        try (DecoderModel m = DecoderModel.load(LLAMA, ScalarType.Float)) {
            GenerationOptions greedy = GenerationOptions.greedy(6);
            long[][] batched = Generation.generate(m, prompts, greedy);
            for (int r = 0; r < prompts.length; r++) {
                long[][] single = Generation.generate(m, new long[][] {prompts[r]}, greedy);
                assertArrayEquals(single[0], batched[r], "row " + r);
            }
            assertEquals(0, Generation.generate(m, prompts, GenerationOptions.greedy(0))[1].length);
        }
    }

    @Test
    void samplingIsSeededAndTopKOneIsGreedy() throws IOException {
        long[][] prompts = {{5, 6, 7}, {9, 9}};
        try (DecoderModel m = DecoderModel.load(LLAMA, ScalarType.Float)) {
            GenerationOptions sample = new GenerationOptions(true, 1.5, 0.95, 40, 1.2, 8, new long[0], 0, 11);
            long[][] x = Generation.generate(m, prompts, sample);
            long[][] y = Generation.generate(m, prompts, sample);
            assertArrayEquals(x[0], y[0]);
            assertArrayEquals(x[1], y[1]);
            GenerationOptions other = new GenerationOptions(true, 1.5, 0.95, 40, 1.2, 8, new long[0], 0, 12);
            long[][] z = Generation.generate(m, prompts, other);
            assertNotEquals(java.util.Arrays.toString(x[0]) + java.util.Arrays.toString(x[1]),
                    java.util.Arrays.toString(z[0]) + java.util.Arrays.toString(z[1]), "another seed, another draw");
            GenerationOptions topOne = new GenerationOptions(true, 0.7, 1.0, 1, 1.0, 8, new long[0], 0, 3);
            long[][] greedy = Generation.generate(m, prompts, GenerationOptions.greedy(8));
            long[][] k1 = Generation.generate(m, prompts, topOne);
            assertArrayEquals(greedy[0], k1[0]);
        }
    }

    @Test
    void linearSlotsCanBeWrappedAndReplaced() throws IOException {
        String path = "model.layers.0.self_attn.q_proj";
        try (DecoderModel m = DecoderModel.load(LLAMA, ScalarType.Float); PointerScope s = new PointerScope()) {
            Tensor ids = Tensors.longs(new long[] {4, 8, 15, 16, 23, 42}, 1, 6);
            Tensor before = m.forward(ids);
            LinearLayer dense = m.linear(path);
            assertTrue(dense instanceof DenseLinear);
            int[] calls = {0};
            m.setLinear(path, new LinearLayer() { // a LoRA-like wrapper: base + 0 * update
                public Tensor forward(Tensor x) {
                    calls[0]++;
                    return dense.forward(x);
                }

                public long inFeatures() {
                    return dense.inFeatures();
                }

                public long outFeatures() {
                    return dense.outFeatures();
                }
            });
            assertTrue(m.forward(ids).equal(before));
            assertEquals(1, calls[0]);
            m.setLinear(path, new DenseLinear(torch.zeros(64, 64), null)); // a different weight changes logits
            assertFalse(m.forward(ids).equal(before));
            var e = assertThrows(IllegalArgumentException.class,
                    () -> m.setLinear(path, new DenseLinear(torch.zeros(32, 64), null)));
            assertTrue(e.getMessage().contains(path), e.getMessage());
            assertEquals(15, m.linearPaths().size());
        }
    }

    @Test
    void closedModelAndBadInputsFailLoudly() throws IOException {
        DecoderModel m = DecoderModel.load(LLAMA, ScalarType.Float);
        try (PointerScope s = new PointerScope()) {
            var e = assertThrows(IllegalArgumentException.class,
                    () -> m.forward(Tensors.longs(new long[] {1, 256}, 1, 2)));
            assertTrue(e.getMessage().contains("256") && e.getMessage().contains("vocab_size 256"), e.getMessage());
        }
        m.close();
        assertThrows(IllegalStateException.class, m::parameters);
        try (PointerScope s = new PointerScope()) {
            assertThrows(IllegalStateException.class, () -> m.forward(Tensors.longs(new long[] {1}, 1, 1)));
        }
    }

    @Test
    void bf16ModelRunsInBf16() throws IOException {
        try (DecoderModel m = DecoderModel.load(LLAMA, ScalarType.BFloat16); PointerScope s = new PointerScope()) {
            assertEquals(ScalarType.BFloat16, m.parameter("model.norm.weight").scalar_type().intern());
            Tensor logits = m.forward(Tensors.longs(new long[] {3, 4, 5}, 1, 3));
            assertEquals(ScalarType.BFloat16, logits.scalar_type().intern());
            assertTrue(logits.isfinite().all().item_bool());
            assertEquals(m.parameterCount() * 2, m.parameterBytes());
        }
    }
}
