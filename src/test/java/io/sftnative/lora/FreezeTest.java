package io.sftnative.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.loss.CausalLmLoss;
import io.sftnative.model.DecoderModel;
import io.sftnative.torch.TorchRuntime;

class FreezeTest {
    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @Test
    void lastLayersTrainAndEverythingElseIsFrozen() {
        try (DecoderModel model = LoraTesting.tiny("llama", 32, 3, false); PointerScope scope = new PointerScope()) {
            Map<String, Tensor> t = Freeze.apply(model, 1, List.of("all"), List.of());
            assertTrue(t.keySet().stream().allMatch(n -> n.startsWith("model.layers.2.")), t.keySet().toString());
            assertEquals(9, t.size()); // 7 projections + 2 norms
            for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) {
                assertEquals(t.containsKey(e.getKey()), e.getValue().requires_grad(), e.getKey());
            }
            Tensor ids = LoraTesting.sampleIds();
            CausalLmLoss.mean(model.forward(ids), ids).backward();
            for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) {
                assertEquals(t.containsKey(e.getKey()), e.getValue().grad().defined(), e.getKey());
            }
        }
    }

    @Test
    void firstLayersModulesAndExtraModules() {
        try (DecoderModel model = LoraTesting.tiny("qwen2", 32, 3, true)) {
            Map<String, Tensor> t = Freeze.apply(model, -2, List.of("mlp", "input_layernorm"),
                    List.of("lm_head", "norm"));
            List<String> names = new ArrayList<>(t.keySet());
            assertEquals(List.of("model.embed_tokens.weight", "model.layers.0.mlp.gate_proj.weight",
                    "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight",
                    "model.layers.0.input_layernorm.weight", "model.layers.1.mlp.gate_proj.weight",
                    "model.layers.1.mlp.up_proj.weight", "model.layers.1.mlp.down_proj.weight",
                    "model.layers.1.input_layernorm.weight", "model.norm.weight"), names);
            assertFalse(model.parameter("model.layers.2.mlp.up_proj.weight").requires_grad());
            // more layers than the model has: all of them
            assertEquals(3 * 9 + 3 * 3, Freeze.apply(model, 10, List.of("all"), List.of()).size()); // + q/k/v biases
        }
    }

    @Test
    void unknownModulesAreClearErrors() {
        try (DecoderModel model = LoraTesting.tiny("llama", 32, 2, false)) {
            var e = assertThrows(IllegalArgumentException.class,
                    () -> Freeze.apply(model, 1, List.of("attention"), List.of()));
            assertTrue(e.getMessage().contains("'attention'") && e.getMessage().contains("self_attn, mlp"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> Freeze.apply(model, 1, List.of("all"),
                    List.of("vision_tower")));
            assertTrue(e.getMessage().contains("embed_tokens, norm, lm_head"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> Freeze.apply(model, 0, List.of("all"), List.of()));
        }
    }
}
