package io.sftnative.model;

import java.util.LinkedHashMap;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.torch.Devices;
import io.sftnative.torch.TorchRuntime;

/**
 * A freshly initialised model with transformers' {@code _init_weights}: linear and embedding weights
 * ~ N(0, initializer_range), biases 0, RMSNorm weights 1 (Gemma's offsets 0), the padding token's embedding row 0. Deterministic for a
 * seed (its own generator; the global RNG is untouched). Values are drawn in fp32 on the host (so a seed gives the
 * same weights on every device), then cast and moved one tensor at a time.
 */
public final class RandomInit {
    private RandomInit() {}

    /** A random model on {@link TorchRuntime#device()}. */
    public static DecoderModel create(ModelConfig config, long seed, ScalarType dtype) {
        try (PointerScope scope = new PointerScope()) {
            return create(config, seed, dtype, TorchRuntime.device());
        }
    }

    /** A random model on {@code device}. */
    public static DecoderModel create(ModelConfig config, long seed, ScalarType dtype, Device device) {
        ModelLoader.checkFloating(dtype);
        Map<String, Tensor> params = new LinkedHashMap<>();
        try (PointerScope scope = new PointerScope()) {
            Generator gen = torch.make_generator_cpu(seed); // host: device-independent values for a seed
            double std = config.initializerRange();
            TensorOptions f32 = new TensorOptions(ScalarType.Float); // host: random values drawn here, then moved
            TensorOptions onDevice = Devices.options(ScalarType.Float, device);
            for (Map.Entry<String, long[]> e : ParameterLayout.shapes(config).entrySet()) {
                String name = e.getKey();
                Tensor t;
                if (name.endsWith("norm.weight")) { // Gemma stores x * (1 + w): its identity is w = 0
                    t = config.arch().norm() == Architecture.NormKind.ONE_PLUS_WEIGHT
                            ? torch.zeros(e.getValue(), onDevice) : torch.ones(e.getValue(), onDevice);
                } else if (name.endsWith(".bias")) {
                    t = torch.zeros(e.getValue(), onDevice);
                } else {
                    t = torch.empty(e.getValue(), f32, new MemoryFormatOptional()) // host: the seeded generator's
                            .normal_(0.0, std, new GeneratorOptional(gen));
                    Integer pad = config.padTokenId();
                    if (name.equals("model.embed_tokens.weight") && pad != null && pad >= 0
                            && pad < config.vocabSize()) {
                        t.select(0, pad).zero_();
                    }
                }
                t = t.to(device, dtype); // one tensor at a time on the host
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
