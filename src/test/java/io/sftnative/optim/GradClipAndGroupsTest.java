package io.sftnative.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.sftnative.torch.TorchRuntime;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

@SuppressWarnings("try") // scopes and no-grad guards are held for their side effect
class GradClipAndGroupsTest {
    @BeforeAll
    static void boot() {
        TorchRuntime.boot(1);
    }

    private static Tensor param(float[] value, float[] grad) {
        Tensor p = HostArrays.tensor(value, new long[] {value.length}, ScalarType.Float);
        p.set_requires_grad(true);
        if (grad != null) {
            p.mutable_grad().put(HostArrays.tensor(grad, new long[] {grad.length}, ScalarType.Float));
        }
        return p;
    }

    @Test
    void clipsToMaxNormAndReturnsPreClipNorm() {
        try (PointerScope scope = new PointerScope()) {
            Tensor a = param(new float[] {0, 0}, new float[] {3, 0});
            Tensor b = param(new float[] {0}, new float[] {4});
            Tensor none = param(new float[] {0}, null); // no gradient: ignored, like torch
            double norm = GradClip.clipGradNorm(List.of(a, b, none), 1.0);
            assertEquals(5.0, norm, 1e-6);
            double coef = 1.0 / (5.0 + 1e-6);
            assertEquals(3 * coef, HostArrays.floats(a.grad())[0], 1e-6);
            assertEquals(4 * coef, HostArrays.floats(b.grad())[0], 1e-6);
            assertEquals(1.0, GradClip.totalNorm(List.of(a, b)), 1e-5);
        }
    }

    @Test
    void leavesSmallGradientsAlone() {
        try (PointerScope scope = new PointerScope()) {
            Tensor a = param(new float[] {0, 0}, new float[] {0.3f, 0.4f});
            assertEquals(0.5, GradClip.clipGradNorm(List.of(a), 1.0), 1e-6);
            assertArrayEquals(new float[] {0.3f, 0.4f}, HostArrays.floats(a.grad()));
        }
    }

    @Test
    void nonFiniteNormLeavesGradientsUntouched() {
        try (PointerScope scope = new PointerScope()) {
            Tensor a = param(new float[] {0, 0}, new float[] {Float.NaN, 1f});
            Tensor b = param(new float[] {0}, new float[] {2f});
            double norm = GradClip.clipGradNorm(List.of(a, b), 1.0);
            assertFalse(GradClip.isFinite(norm));
            assertEquals(2f, HostArrays.floats(b.grad())[0]); // torch would have made it NaN
            Tensor inf = param(new float[] {0}, new float[] {Float.POSITIVE_INFINITY});
            assertFalse(GradClip.isFinite(GradClip.clipGradNorm(List.of(inf), 1.0)));
            assertTrue(GradClip.isFinite(0.0));
        }
    }

    @Test
    void noGradientsGiveZeroAndNonPositiveMaxNormIsRejected() {
        try (PointerScope scope = new PointerScope()) {
            Tensor a = param(new float[] {1}, null);
            assertEquals(0.0, GradClip.clipGradNorm(List.of(a), 1.0));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> GradClip.clipGradNorm(List.of(a), 0.0));
            assertTrue(e.getMessage().contains("max_grad_norm"));
        }
    }

    @Test
    void hfDecayRulesForLlamaFamilyAndLora() {
        assertTrue(ParamGroups.decays("model.layers.0.self_attn.q_proj.weight"));
        assertTrue(ParamGroups.decays("model.embed_tokens.weight"));
        assertTrue(ParamGroups.decays("lm_head.weight"));
        assertTrue(ParamGroups.decays("base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"));
        assertTrue(ParamGroups.decays("model.layers.0.mlp.down_proj.weight"));
        assertFalse(ParamGroups.decays("model.layers.0.self_attn.q_proj.bias"));
        assertFalse(ParamGroups.decays("model.layers.0.input_layernorm.weight"));
        assertFalse(ParamGroups.decays("model.layers.0.post_attention_layernorm.weight"));
        assertFalse(ParamGroups.decays("model.layers.0.self_attn.q_norm.weight"));
        assertFalse(ParamGroups.decays("model.layers.0.self_attn.k_norm.weight"));
        assertFalse(ParamGroups.decays("model.norm.weight"));
        assertFalse(ParamGroups.decays("norm.weight"));
        assertFalse(ParamGroups.decays("model.layers.3.RMSNorm.weight"));
        assertEquals(List.of("a.weight"), List.copyOf(ParamGroups.decayParameterNames(List.of("a.weight", "a.bias"))));
    }

    @Test
    void stateSurvivesTheCallersStepScopes() {
        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("w", param(new float[] {1, 2}, null));
        try (AdamW opt = AdamW.withHfGroups(params, 0.0, 0.9, 0.999, 1e-8)) {
            for (int step = 0; step < 3; step++) {
                try (PointerScope stepScope = new PointerScope()) { // how the trainer runs every step
                    params.get("w").mutable_grad().put(
                            HostArrays.tensor(new float[] {1, -1}, new long[] {2}, ScalarType.Float));
                    opt.step(0.1);
                    opt.zeroGrad();
                }
            }
            try (PointerScope scope = new PointerScope()) {
                Map<String, Tensor> state = opt.stateDict();
                assertEquals(3.0, state.get("w.step").item_double());
                float[] m = HostArrays.floats(state.get("w.exp_avg"));
                assertEquals(1 - Math.pow(0.9, 3), m[0], 1e-6); // state was not freed between steps
                // Adam with a constant gradient moves by lr each step (bias-corrected m/sqrt(v) = 1)
                assertArrayEquals(new float[] {0.7f, 2.3f}, HostArrays.floats(params.get("w")), 1e-5f);
            }
        }
        params.get("w").close();
    }

    @Test
    void optimizerErrorsAreClear() {
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> params = new LinkedHashMap<>();
            params.put("w", param(new float[] {1, 2}, new float[] {0.1f, 0.2f}));
            params.put("model.norm.weight", param(new float[] {1}, new float[] {0.5f}));
            AdamW opt = AdamW.withHfGroups(params, 0.01, 0.9, 0.999, 1e-8);
            assertEquals(0.01, opt.weightDecay("w"));
            assertEquals(0.0, opt.weightDecay("model.norm.weight"));
            opt.step(1e-3);
            assertEquals(1, opt.stepCount("w"));

            Map<String, Tensor> bad = new LinkedHashMap<>(opt.stateDict());
            bad.put("other.exp_avg", bad.get("w.exp_avg"));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> opt.loadStateDict(bad));
            assertTrue(e.getMessage().contains("'other.exp_avg'"), e.getMessage());

            Map<String, Tensor> wrongShape = new LinkedHashMap<>(opt.stateDict());
            wrongShape.put("w.exp_avg", HostArrays.tensor(new float[] {1, 2, 3}, new long[] {3}, ScalarType.Float));
            e = assertThrows(IllegalArgumentException.class, () -> opt.loadStateDict(wrongShape));
            assertTrue(e.getMessage().contains("shape [3]") && e.getMessage().contains("[2]"), e.getMessage());

            Map<String, Tensor> incomplete = new LinkedHashMap<>(opt.stateDict());
            incomplete.remove("w.step");
            e = assertThrows(IllegalArgumentException.class, () -> opt.loadStateDict(incomplete));
            assertTrue(e.getMessage().contains("w.step"), e.getMessage());
            assertEquals(1, opt.stepCount("w"), "a rejected state changes nothing");

            opt.loadStateDict(Map.of()); // empty state: everything starts fresh
            assertEquals(0, opt.stepCount("w"));

            opt.close();
            assertThrows(IllegalStateException.class, () -> opt.step(1e-3));
            assertThrows(IllegalArgumentException.class,
                    () -> AdamW.withHfGroups(Map.of(), 0.0, 0.9, 0.999, 1e-8));
            assertThrows(IllegalArgumentException.class,
                    () -> AdamW.withHfGroups(params, 0.0, 1.0, 0.999, 1e-8));
        }
    }
}
