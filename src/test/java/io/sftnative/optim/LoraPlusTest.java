package io.sftnative.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.LinkedHashMap;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.torch.TorchRuntime;

/** LoRA+ groups (LLaMA-Factory's rule) and per-parameter learning-rate factors in every optimizer. */
class LoraPlusTest {
    @BeforeAll
    static void boot() {
        TorchRuntime.boot(1);
    }

    @Test
    void groupsFollowLlamaFactory() {
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> t = new LinkedHashMap<>();
            t.put("model.layers.0.self_attn.q_proj.lora_A.weight", HostArrays.tensor(new float[6], new long[] {2, 3},
                    ScalarType.Float));
            t.put("model.layers.0.self_attn.q_proj.lora_B.weight", HostArrays.tensor(new float[6], new long[] {3, 2},
                    ScalarType.Float));
            t.put("model.norm.weight", HostArrays.tensor(new float[3], new long[] {3}, ScalarType.Float));
            t.put("model.embed_tokens.weight", HostArrays.tensor(new float[6], new long[] {2, 3}, ScalarType.Float));
            t.put("lm_head.weight", HostArrays.tensor(new float[6], new long[] {2, 3}, ScalarType.Float));
            Map<String, Double> s = LoraPlus.scales(t, 16, 1e-6, 1e-4);
            assertEquals(Map.of("model.layers.0.self_attn.q_proj.lora_B.weight", 16.0, "model.norm.weight", 16.0,
                    "model.embed_tokens.weight", 1e-6 / 1e-4), s);
        }
    }

    /** A parameter with factor k moves exactly as the same parameter under k times the learning rate. */
    @Test
    void scaledParameterEqualsScaledLearningRate() {
        for (String kind : new String[] {"adamw", "adamw_fused", "sgd", "adafactor"}) {
            try (PointerScope scope = new PointerScope()) {
                float[] init = {0.5f, -1f, 2f, 0.25f, 1.5f, -0.75f};
                float[] grad = {0.1f, -0.3f, 0.2f, 0.05f, -0.4f, 0.3f};
                Tensor a = HostArrays.tensor(init, new long[] {2, 3}, ScalarType.Float);
                Tensor b = HostArrays.tensor(init, new long[] {2, 3}, ScalarType.Float);
                try (Optimizer scaled = make(kind, Map.of("w", a)); Optimizer plain = make(kind, Map.of("w", b))) {
                    scaled.lrScales(Map.of("w", 4.0));
                    for (int k = 0; k < 3; k++) {
                        a.mutable_grad().put(HostArrays.tensor(grad, new long[] {2, 3}, ScalarType.Float));
                        b.mutable_grad().put(HostArrays.tensor(grad, new long[] {2, 3}, ScalarType.Float));
                        scaled.step(1e-2);
                        plain.step(4e-2);
                    }
                }
                assertArrayEquals(HostArrays.floats(b), HostArrays.floats(a), 1e-7f, kind);
            }
        }
    }

    private static Optimizer make(String kind, Map<String, Tensor> p) {
        return switch (kind) {
            case "sgd" -> new Sgd(p, 0.1, n -> true);
            case "adafactor" -> new Adafactor(p, 0.1, n -> true);
            default -> new AdamW(p, 0.1, n -> true, 0.9, 0.999, 1e-8).fused(kind.equals("adamw_fused"));
        };
    }
}
