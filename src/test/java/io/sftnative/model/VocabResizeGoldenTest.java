package io.sftnative.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.torch.TorchRuntime;

/**
 * LLaMA-Factory's resize_embedding_layer against its transcription in tools/golden/gen_new_tokens_golden.py (torch
 * 1.13, same seeded generator and draw order): padding to a multiple of 64, transformers' N(0, initializer_range) new
 * rows, noise_init (by new-token ids, in a checkpoint's padding rows, and the tail rule of resize_vocab alone) and
 * desc_init with and without noise, tied and untied.
 */
class VocabResizeGoldenTest {
    private static final Path ROOT = Path.of("src/test/resources/golden/new_tokens");

    @ParameterizedTest
    @ValueSource(strings = {"tied_grow_noise", "untied_padding_noise", "untied_grow_tail", "untied_desc_noise",
            "tied_desc"})
    void rowsMatchTheTranscribedRule(String name) throws Exception {
        TorchRuntime.boot();
        JsonNode c = new ObjectMapper().readTree(ROOT.resolve(name + ".json").toFile());
        boolean tied = c.get("tied").asBoolean();
        Map<String, Object> k = new LinkedHashMap<>();
        k.put("model_type", "llama");
        k.put("vocab_size", c.get("rows").asInt());
        k.put("hidden_size", c.get("hidden").asInt());
        k.put("intermediate_size", 32);
        k.put("num_hidden_layers", 1);
        k.put("num_attention_heads", 4);
        k.put("num_key_value_heads", 2);
        k.put("tie_word_embeddings", tied);
        k.put("initializer_range", c.get("initializer_range").asDouble());
        int[] ids = new int[c.get("ids").size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = c.get("ids").get(i).asInt();
        }
        List<VocabResize.Description> desc = new ArrayList<>();
        for (JsonNode d : c.get("desc")) {
            int[] text = new int[d.get(1).size()];
            for (int i = 0; i < text.length; i++) {
                text[i] = d.get(1).get(i).asInt();
            }
            desc.add(new VocabResize.Description(d.get(0).asInt(), text));
        }
        try (DecoderModel model = RandomInit.create(ModelConfig.fromMap(k), 1, ScalarType.Float);
                SafetensorsFile f = SafetensorsFile.open(ROOT.resolve(name + ".safetensors"));
                PointerScope scope = new PointerScope()) {
            try (NoGradGuard g = new NoGradGuard()) {
                model.embedWeight().copy_(f.load("embed"));
                if (!tied) {
                    model.lmHeadWeight().copy_(f.load("head"));
                }
            }
            VocabResize.Result r = VocabResize.apply(model, new VocabResize.Plan(c.get("length").asInt(), ids, desc,
                    c.get("init").asText()), c.get("seed").asLong());
            Tensor want = f.load("expected_embed"); // (V', H)
            assertEquals(want.size(0), model.config().vocabSize(), "config vocab_size follows the rows");
            assertEquals(want.size(0), r.newRows());
            double err = maxAbs(model.embedWeight(), want);
            double headErr = tied ? 0 : maxAbs(model.lmHeadWeight(), f.load("expected_head"));
            System.out.printf("NEW TOKENS GOLDEN %s: %d -> %d rows, embed %.2e, head %.2e%n", name, r.oldRows(),
                    r.newRows(), err, headErr);
            // fp32 means over <= 128 rows of values ~0.5: a different summation order moves them by a few ulp
            assertTrue(err < 1e-6, "embedding rows differ from the rule by " + err);
            assertTrue(headErr < 1e-6, "head rows differ from the rule by " + headErr);
            if (tied) {
                assertTrue(model.lmHeadWeight().equal(model.embedWeight()), "a tied head stays the embedding");
            }
            // the model still runs over the new ids
            Tensor logits = model.forward(io.sftnative.model.Tensors.longs(new long[] {0, want.size(0) - 1}, 1, 2));
            assertEquals(want.size(0), logits.size(2));
        }
    }

    private static double maxAbs(Tensor a, Tensor b) {
        float[] x = Tensors.toFloats(a);
        float[] y = Tensors.toFloats(b);
        assertEquals(y.length, x.length, "shapes differ");
        double m = 0;
        for (int i = 0; i < x.length; i++) {
            m = Math.max(m, Math.abs((double) x[i] - y[i]));
        }
        return m;
    }
}
