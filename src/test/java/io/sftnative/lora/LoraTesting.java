package io.sftnative.lora;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.ModelConfig;
import io.sftnative.model.RandomInit;
import io.sftnative.model.Tensors;

/** Shared helpers for the lora tests. */
final class LoraTesting {
    static final Path GOLDEN = Path.of("src/test/resources/golden/model");
    static final Path LLAMA = GOLDEN.resolve("llama_gqa/checkpoint");
    static final Path QWEN2 = GOLDEN.resolve("qwen2_tied_bf16/checkpoint");

    private LoraTesting() {}

    /** Max |a - b| / max |b|. */
    static double relErr(Tensor a, Tensor b) {
        float[] x = Tensors.toFloats(a);
        float[] y = Tensors.toFloats(b);
        if (x.length != y.length) {
            throw new AssertionError("sizes differ: " + x.length + " vs " + y.length);
        }
        double diff = 0;
        double scale = 0;
        for (int i = 0; i < x.length; i++) {
            diff = Math.max(diff, Math.abs((double) x[i] - y[i]));
            scale = Math.max(scale, Math.abs(y[i]));
        }
        return scale == 0 ? diff : diff / scale;
    }

    /** Gives every B (and A) random values so the adapters change the output. */
    static void randomize(LoraAdapters lora, long seed) {
        try (NoGradGuard g = new NoGradGuard()) {
            Generator gen = torch.make_generator_cpu(seed);
            for (Map.Entry<String, Tensor> e : lora.trainableParameters().entrySet()) {
                if (e.getKey().endsWith("lora_B.weight")) {
                    e.getValue().normal_(0.0, 0.05, new GeneratorOptional(gen));
                }
            }
        }
    }

    static Tensor ids(long[] data, long b, long t) {
        return Tensors.longs(data, b, t);
    }

    /** (2, 7) ids below 64. */
    static Tensor sampleIds() {
        return ids(new long[] {1, 5, 9, 13, 17, 21, 25, 3, 7, 11, 15, 19, 23, 27}, 2, 7);
    }

    static DecoderModel tiny(String type, int hidden, int layers, boolean tied) {
        Map<String, Object> k = new LinkedHashMap<>();
        k.put("model_type", type);
        k.put("vocab_size", 64);
        k.put("hidden_size", hidden);
        k.put("intermediate_size", hidden + hidden / 2);
        k.put("num_hidden_layers", layers);
        k.put("num_attention_heads", 4);
        k.put("num_key_value_heads", 2);
        k.put("tie_word_embeddings", tied);
        k.put("pad_token_id", 0);
        return RandomInit.create(ModelConfig.fromMap(k), 7, org.bytedeco.pytorch.global.torch.ScalarType.Float);
    }

    static LoraSpec spec(int r, List<String> targets) {
        return new LoraSpec(r, 2.0 * r, 0.0, targets, false, List.of());
    }
}
