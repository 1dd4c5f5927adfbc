package io.sftnative.model;

import java.util.LinkedHashMap;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A freshly initialised model with transformers' {@code _init_weights}: linear and embedding weights
 * ~ N(0, initializer_range), biases 0, RMSNorm weights 1, the padding token's embedding row 0. Deterministic for a
 * seed (its own generator; the global RNG is untouched). Values are drawn in fp32 and then cast.
 */
public final class RandomInit {
    private RandomInit() {}

    public static DecoderModel create(ModelConfig config, long seed, ScalarType dtype) {
        ModelLoader.checkFloating(dtype);
        Map<String, Tensor> params = new LinkedHashMap<>();
        try (PointerScope scope = new PointerScope()) {
            Generator gen = torch.make_generator_cpu(seed);
            double std = config.initializerRange();
            TensorOptions f32 = new TensorOptions(ScalarType.Float);
            for (Map.Entry<String, long[]> e : ParameterLayout.shapes(config).entrySet()) {
                String name = e.getKey();
                Tensor t;
                if (name.endsWith("norm.weight")) {
                    t = torch.ones(e.getValue(), f32);
                } else if (name.endsWith(".bias")) {
                    t = torch.zeros(e.getValue(), f32);
                } else {
                    t = torch.empty(e.getValue(), f32, new MemoryFormatOptional()).normal_(0.0, std, new GeneratorOptional(gen));
                    Integer pad = config.padTokenId();
                    if (name.equals("model.embed_tokens.weight") && pad != null && pad >= 0
                            && pad < config.vocabSize()) {
                        t.select(0, pad).zero_();
                    }
                }
                t = t.to(dtype);
                t.retainReference();
                params.put(name, t);
            }
        } catch (RuntimeException e) {
            params.values().forEach(Tensor::releaseReference);
            throw e;
        }
        return new DecoderModel(config, dtype, params);
    }
}
