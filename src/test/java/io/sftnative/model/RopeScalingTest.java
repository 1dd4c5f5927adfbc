package io.sftnative.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.torch.TorchRuntime;

/**
 * RoPE scaling variants against transformers' modeling_rope_utils (tables from tools/golden/gen_rope_golden.py), and
 * LLaMA-Factory's rope_scaling key (model_utils/rope.py configure_rope).
 */
class RopeScalingTest {
    static final Path TABLES = Path.of("src/test/resources/golden/rope/tables.json");
    static final ObjectMapper JSON = new ObjectMapper();
    /** Same fp32 operations on both sides; libtorch's pow may round an ulp differently from torch 1.13's. */
    static final double TABLE_TOL = 1e-6;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @Test
    void yarnAndDynamicTablesMatchTransformers() throws IOException {
        JsonNode all = JSON.readTree(TABLES.toFile());
        List<String> checked = new ArrayList<>();
        for (var it = all.fields(); it.hasNext();) {
            var e = it.next();
            JsonNode c = e.getValue();
            ModelConfig config = ModelConfig.fromMap(JSON.convertValue(c.get("config"),
                    new TypeReference<Map<String, Object>>() {}));
            assertEquals(c.get("attention_factor").asDouble(), config.ropeScaling().attentionFactor(), 1e-15,
                    e.getKey());
            try (RotaryEmbedding rope = new RotaryEmbedding(config, "cpu"); PointerScope scope = new PointerScope()) {
                assertTable(e.getKey() + " initial", c.get("inv_freq"), rope.inverseFrequencies());
                JsonNode lens = c.get("seq_lens");
                for (int i = 0; lens != null && i < lens.size(); i++) {
                    long n = lens.get(i).asLong();
                    rope.cosSin(Tensors.longs(new long[] {n - 1}, 1, 1), ScalarType.Float); // one forward
                    assertTable(e.getKey() + " after a forward of length " + n, c.get("inv_freq_after").get(i),
                            rope.inverseFrequencies());
                }
            }
            checked.add(e.getKey());
        }
        assertEquals(8, checked.size(), checked.toString());
    }

    private static void assertTable(String what, JsonNode expected, Tensor actual) {
        float[] got = Tensors.toFloats(actual);
        assertEquals(expected.size(), got.length, what);
        for (int i = 0; i < got.length; i++) {
            double want = expected.get(i).asDouble();
            assertEquals(want, got[i], TABLE_TOL * Math.abs(want), what + " [" + i + "]");
        }
    }

    @Test
    void llamaFactoryKeySetsTheFactorFromCutoffLen() throws IOException {
        ModelConfig base = ModelConfig.read(DecoderModelTest.LLAMA); // max_position_embeddings 256
        int old = base.maxPositionEmbeddings();
        List<String> log = new ArrayList<>();
        ModelConfig yarn = base.withLlamaFactoryRopeScaling("yarn", old * 3 + 1, log::add);
        assertEquals("yarn", yarn.ropeScaling().type());
        assertEquals(4.0, yarn.ropeScaling().factor()); // ceil((3 old + 1) / old)
        assertEquals(old * 4, yarn.maxPositionEmbeddings());
        assertEquals(old, yarn.ropeScaling().originalMaxPositionEmbeddings());
        assertEquals(0.1 * Math.log(4) + 1, yarn.ropeScaling().attentionFactor(), 1e-15);
        assertTrue(yarn.toJson().contains("\"rope_type\" : \"yarn\""), yarn.toJson());

        ModelConfig llama3 = base.withLlamaFactoryRopeScaling("llama3", old * 2, log::add);
        assertEquals(2.0, llama3.ropeScaling().factor());
        assertEquals(1.0, llama3.ropeScaling().lowFreqFactor());
        assertEquals(4.0, llama3.ropeScaling().highFreqFactor());

        ModelConfig dynamic = base.withLlamaFactoryRopeScaling("dynamic", old + 1, log::add);
        assertEquals(old * 2, dynamic.ropeScaling().originalMaxPositionEmbeddings()); // HF's threshold: the new max
        // inference (no model_max_length): factor 2; cutoff_len within the context: the config's own scaling stays
        assertEquals(2.0, base.withLlamaFactoryRopeScaling("linear", null, log::add).ropeScaling().factor());
        assertSame(base, base.withLlamaFactoryRopeScaling("linear", old, log::add));
        assertTrue(log.stream().anyMatch(l -> l.contains("does not exceed max_position_embeddings")), log.toString());
        assertTrue(log.stream().anyMatch(l -> l.contains("may not work well with fine-tuning")), log.toString());
    }

    /** A rescaled model computes what its saved config says: reloading the save gives the same logits. */
    @Test
    void rescaledModelSavesAndReloadsItsScaling(@TempDir Path tmp) throws IOException {
        try (DecoderModel model = DecoderModel.load(DecoderModelTest.LLAMA, ScalarType.Float);
                PointerScope scope = new PointerScope()) {
            Tensor ids = Tensors.longs(new long[] {3, 9, 4, 17, 5, 60, 2, 8, 11, 30, 7, 1}, 2, 6); // (B, T)
            Tensor before = model.forward(ids).clone(); // (B, T, V)
            int old = model.config().maxPositionEmbeddings();
            model.rescaleRope(model.config().withLlamaFactoryRopeScaling("yarn", old * 2, s -> { }));
            Tensor after = model.forward(ids);
            assertNotEquals(0.0, before.sub(after).abs().max().item_double(), "yarn changed nothing");
            model.save(tmp.resolve("scaled"));
            try (DecoderModel reloaded = DecoderModel.load(tmp.resolve("scaled"), ScalarType.Float)) {
                assertEquals("yarn", reloaded.config().ropeScaling().type());
                assertEquals(old * 2, reloaded.config().maxPositionEmbeddings());
                assertTrue(torch.equal(after, reloaded.forward(ids)), "reloaded logits differ");
            }
        }
    }

    @Test
    void badRopeScalingNamesTheKey() {
        Map<String, Object> k = DecoderModelTest.tinyConfig("llama", false);
        k.put("rope_scaling", Map.of("rope_type", "yarn"));
        var e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k));
        assertTrue(e.getMessage().contains("'rope_scaling.factor' is required for rope type 'yarn'"), e.getMessage());
        k.put("rope_scaling", Map.of("rope_type", "yarn", "factor", 4.0, "truncate", "no"));
        e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k));
        assertTrue(e.getMessage().contains("'rope_scaling.truncate' must be true or false"), e.getMessage());
        k.put("rope_scaling", Map.of("type", "dynamic", "factor", -2.0));
        e = assertThrows(ModelFormatException.class, () -> ModelConfig.fromMap(k));
        assertTrue(e.getMessage().contains("'rope_scaling.factor' must be a number > 0"), e.getMessage());
    }
}
