package io.sftnative.lora;

import static io.sftnative.lora.LoraTesting.relErr;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.loss.CausalLmLoss;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.DenseLinear;
import io.sftnative.torch.TorchRuntime;

class LoraAdaptersTest {
    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @Test
    void loraLogitsEqualMergedWeightReferenceAndMergeFoldsThem() throws Exception {
        try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                DecoderModel reference = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                PointerScope scope = new PointerScope()) {
            Tensor ids = LoraTesting.sampleIds();
            Tensor base = model.forward(ids).detach(); // (2, 7, V)
            LoraAdapters lora = LoraAdapters.attach(model, LoraTesting.spec(4, List.of("all")), 3);
            // B = 0 leaves the output unchanged up to GEMM rounding: the model no longer fuses q/k/v and gate/up
            // into one GEMM once the slots are LoRA slots
            double zeroB = relErr(model.forward(ids), base);
            System.out.println("LORA fp32 logits with B = 0 vs base model: max rel err " + zeroB);
            assertTrue(zeroB < 1e-6, "B = 0 must leave the output unchanged: " + zeroB);
            LoraTesting.randomize(lora, 11);
            Tensor withLora = model.forward(ids).detach();
            assertTrue(relErr(withLora, base) > 1e-3, "randomized adapters must change the output");

            // reference: W + scaling * B @ A written into a second copy of the model, by hand
            double s = lora.spec().scaling();
            assertEquals(2.0, s);
            try (NoGradGuard g = new NoGradGuard()) {
                for (String path : lora.modulePaths()) {
                    Tensor a = lora.trainableParameters().get(path + ".lora_A.weight");
                    Tensor b = lora.trainableParameters().get(path + ".lora_B.weight");
                    reference.parameter(path + ".weight").add_(torch.mm(b, a).mul(new Scalar(s)));
                }
            }
            Tensor expected = reference.forward(ids);
            double err = relErr(withLora, expected);
            System.out.println("LORA fp32 logits vs merged-weight reference: max rel err " + err);
            assertTrue(err < 1e-5, "LoRA forward differs from merged weights: " + err);

            lora.merge();
            for (String path : model.linearPaths()) {
                assertInstanceOf(DenseLinear.class, model.linear(path), path);
            }
            double mergedErr = relErr(model.forward(ids), expected);
            System.out.println("LORA fp32 logits after merge() vs reference: max rel err " + mergedErr);
            assertTrue(mergedErr < 1e-6, "merge differs: " + mergedErr);
            assertThrows(IllegalStateException.class, lora::trainableParameters);
            lora.close(); // no-op after merge
        }
    }

    @Test
    void gradientsReachOnlyTheAdaptersAndMatchTheMergedWeightGradient() throws Exception {
        try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                DecoderModel reference = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                LoraAdapters lora = LoraAdapters.attach(model, LoraTesting.spec(4, List.of("q_proj", "v_proj")), 5);
                PointerScope scope = new PointerScope()) {
            LoraTesting.randomize(lora, 13);
            assertEquals(List.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                    "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"), lora.modulePaths());
            Tensor ids = LoraTesting.sampleIds();
            Tensor loss = CausalLmLoss.mean(model.forward(ids), ids);
            loss.backward();
            for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) {
                assertFalse(e.getValue().grad().defined(), "base parameter " + e.getKey() + " got a gradient");
                assertFalse(e.getValue().requires_grad(), e.getKey());
            }
            for (Map.Entry<String, Tensor> e : lora.trainableParameters().entrySet()) {
                assertTrue(e.getValue().grad().defined(), e.getKey());
                assertTrue(e.getValue().grad().abs().sum().item_double() > 0, e.getKey());
            }

            // dL/dA = s B^T dL/dW and dL/dB = s dL/dW A^T, with dL/dW from the merged-weight model
            double s = lora.spec().scaling();
            String q = "model.layers.1.self_attn.q_proj";
            Tensor a = lora.trainableParameters().get(q + ".lora_A.weight");
            Tensor b = lora.trainableParameters().get(q + ".lora_B.weight");
            try (NoGradGuard g = new NoGradGuard()) {
                for (String path : lora.modulePaths()) {
                    Tensor pa = lora.trainableParameters().get(path + ".lora_A.weight");
                    Tensor pb = lora.trainableParameters().get(path + ".lora_B.weight");
                    reference.parameter(path + ".weight").add_(torch.mm(pb, pa).mul(new Scalar(s)));
                }
            }
            Tensor w = reference.parameter(q + ".weight");
            w.requires_grad_(true);
            Tensor refLoss = CausalLmLoss.mean(reference.forward(ids), ids);
            assertTrue(Math.abs(refLoss.item_double() - loss.item_double()) < 1e-6);
            refLoss.backward();
            Tensor gw = w.grad(); // (out, in)
            Tensor gaRef = torch.mm(b.detach().t(), gw).mul(new Scalar(s)); // (r, in)
            Tensor gbRef = torch.mm(gw, a.detach().t()).mul(new Scalar(s)); // (out, r)
            double ea = relErr(a.grad(), gaRef);
            double eb = relErr(b.grad(), gbRef);
            System.out.println("LORA grad A vs s*B^T*dW: " + ea + ", grad B vs s*dW*A^T: " + eb);
            assertTrue(ea < 1e-5 && eb < 1e-5, ea + " " + eb);
        }
    }

    @Test
    void trainableParametersAreNamedLikePeftAndAdditionalTargetsTrainInFull() {
        try (DecoderModel model = LoraTesting.tiny("llama", 32, 2, false);
                LoraAdapters lora = LoraAdapters.attach(model, new LoraSpec(2, 16, 0.0, List.of("o_proj", "down_proj"),
                        false, List.of("lm_head", "embed_tokens")), 1)) {
            List<String> names = new ArrayList<>(lora.trainableParameters().keySet());
            assertEquals(List.of("model.layers.0.self_attn.o_proj.lora_A.weight",
                    "model.layers.0.self_attn.o_proj.lora_B.weight", "model.layers.0.mlp.down_proj.lora_A.weight",
                    "model.layers.0.mlp.down_proj.lora_B.weight", "model.layers.1.self_attn.o_proj.lora_A.weight",
                    "model.layers.1.self_attn.o_proj.lora_B.weight", "model.layers.1.mlp.down_proj.lora_A.weight",
                    "model.layers.1.mlp.down_proj.lora_B.weight", "lm_head.weight", "model.embed_tokens.weight"),
                    names);
            Map<String, Tensor> p = lora.trainableParameters();
            assertEquals(List.of(2L, 32L), List.of(p.get(names.get(0)).size(0), p.get(names.get(0)).size(1)));
            assertEquals(List.of(32L, 2L), List.of(p.get(names.get(1)).size(0), p.get(names.get(1)).size(1)));
            assertTrue(p.get("lm_head.weight") == model.parameter("lm_head.weight")
                    || p.get("lm_head.weight").data_ptr().equals(model.parameter("lm_head.weight").data_ptr()));
            assertTrue(model.parameter("lm_head.weight").requires_grad());
            assertFalse(model.parameter("model.norm.weight").requires_grad());
            assertEquals(8.0, lora.spec().scaling());
            // kaiming_uniform(a=sqrt(5)) bound 1/sqrt(in): A within it, B zero
            Tensor a = p.get("model.layers.0.mlp.down_proj.lora_A.weight"); // in = 48
            assertTrue(a.abs().max().item_double() <= 1 / Math.sqrt(48) + 1e-7);
            assertTrue(a.abs().max().item_double() > 0.5 / Math.sqrt(48));
            assertEquals(0.0, p.get("model.layers.0.mlp.down_proj.lora_B.weight").abs().sum().item_double());
            assertEquals(2 * (2 * 32 + 32 * 2) + 2 * (2 * 48 + 32 * 2) + 2 * 64 * 32, lora.trainableParameterCount());
        }
    }

    @Test
    void closeRestoresTheSlotsAndRefusesLaterUse() {
        try (DecoderModel model = LoraTesting.tiny("qwen2", 32, 2, true)) {
            LinearLayer0 before = new LinearLayer0(model.linear("model.layers.0.mlp.up_proj"));
            LoraAdapters lora = LoraAdapters.attach(model, LoraTesting.spec(4, List.of("up_proj")), 1);
            assertFalse(model.linear("model.layers.0.mlp.up_proj") == before.layer());
            lora.close();
            assertTrue(model.linear("model.layers.0.mlp.up_proj") == before.layer());
            assertThrows(IllegalStateException.class, lora::trainableParameters);
            lora.close();
        }
    }

    private record LinearLayer0(io.sftnative.model.LinearLayer layer) {}

    @Test
    void dropoutOnlyWhileTrainingAndRsloraScaling() {
        assertEquals(16 / Math.sqrt(4), new LoraSpec(4, 16, 0, List.of("all"), true, List.of()).scaling());
        assertEquals(4.0, new LoraSpec(4, 16, 0, List.of("all"), false, List.of()).scaling());
        try (DecoderModel model = LoraTesting.tiny("llama", 32, 1, false);
                LoraAdapters lora = LoraAdapters.attach(model, new LoraSpec(4, 8, 0.5, List.of("all"), false,
                        List.of()), 1);
                PointerScope scope = new PointerScope()) {
            LoraTesting.randomize(lora, 2);
            Tensor ids = LoraTesting.sampleIds();
            Tensor eval1 = model.forward(ids);
            Tensor eval2 = model.forward(ids);
            assertEquals(0.0, relErr(eval1, eval2));
            lora.setTraining(true);
            Tensor train1 = model.forward(ids);
            Tensor train2 = model.forward(ids);
            assertTrue(relErr(train1, train2) > 1e-4, "dropout must make training passes differ");
            lora.setTraining(false);
            assertEquals(0.0, relErr(model.forward(ids), eval1));
        }
    }

    @Test
    void bf16ModelWithFp32AdaptersComputesInFp32AndReturnsBf16() throws Exception {
        try (DecoderModel model = DecoderModel.load(LoraTesting.QWEN2, ScalarType.BFloat16);
                LoraAdapters lora = LoraAdapters.attach(model, LoraTesting.spec(4, List.of("all")), 1);
                PointerScope scope = new PointerScope()) {
            LoraTesting.randomize(lora, 3);
            Tensor a = lora.trainableParameters().values().iterator().next();
            assertEquals(ScalarType.Float, a.scalar_type().intern());
            Tensor logits = model.forward(LoraTesting.sampleIds());
            assertEquals(ScalarType.BFloat16, logits.scalar_type().intern());
            CausalLmLoss.mean(logits, LoraTesting.sampleIds()).backward();
            assertTrue(a.grad().defined());
            assertEquals(ScalarType.Float, a.grad().scalar_type().intern());
        }
    }

    @Test
    void badSpecsAreClearErrors() {
        try (DecoderModel model = LoraTesting.tiny("llama", 32, 2, true)) {
            var e = assertThrows(IllegalArgumentException.class,
                    () -> LoraAdapters.attach(model, LoraTesting.spec(4, List.of("qkv_proj")), 1));
            assertTrue(e.getMessage().contains("'qkv_proj'") && e.getMessage().contains("q_proj, k_proj, v_proj"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> LoraAdapters.attach(model, LoraTesting.spec(20, List.of("k_proj")), 1));
            assertTrue(e.getMessage().contains("lora_rank 20") && e.getMessage().contains("k_proj")
                    && e.getMessage().contains("at most 16"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> LoraAdapters.attach(model, LoraTesting.spec(4, List.of("lm_head")), 1));
            assertTrue(e.getMessage().contains("tie_word_embeddings"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> LoraAdapters.attach(model,
                    new LoraSpec(4, 8, 0, List.of("all"), false, List.of("vision_tower")), 1));
            assertTrue(e.getMessage().contains("additional_target 'vision_tower'")
                    && e.getMessage().contains("embed_tokens"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> new LoraSpec(0, 8, 0, List.of("all"), false, null));
            assertThrows(IllegalArgumentException.class, () -> new LoraSpec(4, 8, 1.0, List.of("all"), false, null));
            try (LoraAdapters first = LoraAdapters.attach(model, LoraTesting.spec(4, List.of("q_proj")), 1)) {
                var s = assertThrows(IllegalStateException.class,
                        () -> LoraAdapters.attach(model, LoraTesting.spec(4, List.of("q_proj")), 1));
                assertTrue(s.getMessage().contains("already has a LoRA adapter"), s.getMessage());
            }
            // nothing was left attached by the failures
            for (String p : model.linearPaths()) {
                assertInstanceOf(DenseLinear.class, model.linear(p), p);
            }
        }
    }
}
