package io.sftnative.lora;

import static io.sftnative.lora.LoraTesting.relErr;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.loss.CausalLmLoss;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.quant.QuantizationSpec;
import io.sftnative.quant.QuantizedLinear;
import io.sftnative.quant.QuantizedModels;
import io.sftnative.torch.TorchRuntime;

/** DoRA beyond the PEFT golden: PEFT-format round trip, the dropout branch, a quantized (QLoRA) base. */
class DoraTest {
    static final List<String> ALL = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
            "down_proj");

    @TempDir
    Path dir;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    static LoraSpec dora(double dropout) {
        return new LoraSpec(4, 8, dropout, ALL, false, List.of(), true, LoraSpec.DEFAULT_INIT);
    }

    /** Trained-looking values: B ~ N(0, 0.05), magnitude x (1 + N(0, 0.1)). */
    static void randomize(LoraAdapters lora, long seed) {
        try (NoGradGuard g = new NoGradGuard(); PointerScope scope = new PointerScope()) {
            Generator gen = torch.make_generator_cpu(seed);
            for (Map.Entry<String, Tensor> e : lora.trainableParameters().entrySet()) {
                Tensor p = e.getValue();
                if (e.getKey().endsWith("lora_B.weight")) {
                    p.copy_(torch.randn(p.sizes().vec().get(), new GeneratorOptional(gen)).mul(
                            new org.bytedeco.pytorch.Scalar(0.05)));
                } else if (e.getKey().endsWith(LoraAdapters.MAGNITUDE)) {
                    p.mul_(torch.randn(p.sizes().vec().get(), new GeneratorOptional(gen)).mul(
                            new org.bytedeco.pytorch.Scalar(0.1)).add(new org.bytedeco.pytorch.Scalar(1.0)));
                }
            }
        }
    }

    @Test
    void savedInPeftsFormatAndLoadedBackToTheSameOutputs() throws Exception {
        Tensor ids = LoraTesting.sampleIds();
        Path adapter = dir.resolve("dora");
        Tensor before;
        try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                LoraAdapters lora = LoraAdapters.attach(model, dora(0.0), 3);
                PointerScope scope = new PointerScope()) {
            randomize(lora, 5);
            try (NoGradGuard g = new NoGradGuard()) {
                before = model.forward(ids);
                before.retainReference();
            }
            lora.save(adapter, "llama_gqa");
        }
        JsonNode cfg = new ObjectMapper().readTree(adapter.resolve("adapter_config.json").toFile());
        assertTrue(cfg.get("use_dora").asBoolean(), cfg.toString());
        assertEquals(true, cfg.get("init_lora_weights").asBoolean());
        try (SafetensorsFile f = SafetensorsFile.open(adapter.resolve("adapter_model.safetensors"))) {
            String key = "base_model.model.model.layers.0.self_attn.k_proj.lora_magnitude_vector";
            assertTrue(f.contains(key), f.names().toString());
            assertEquals(List.of(32L), java.util.Arrays.stream(f.entry(key).shape()).boxed().toList()); // k_proj out
            assertEquals(2 * 7 * 3, f.names().size()); // A, B, magnitude for 7 modules x 2 layers
        }
        try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                LoraAdapters lora = LoraAdapters.load(model, adapter, false);
                PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
            double err = relErr(model.forward(ids), before);
            System.out.printf("DoRA save/load round trip: logits differ by %.2e%n", err);
            assertEquals(0.0, err, "the same tensors through the same computation");
        } finally {
            before.releaseReference();
        }
    }

    @Test
    void dropoutBranchRecomputesTheBaseOutputOnTheDroppedInput() throws Exception {
        // PEFT's DoRA uses base_result = W·dropout(x) (no bias) while training with dropout, the base output
        // otherwise; with a dropout probability that drops nothing in practice both branches agree
        Tensor ids = LoraTesting.sampleIds();
        try (DecoderModel model = DecoderModel.load(LoraTesting.GOLDEN.resolve("qwen2_swa/checkpoint"),
                ScalarType.Float);
                LoraAdapters lora = LoraAdapters.attach(model, dora(1e-12), 3);
                PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
            randomize(lora, 6);
            Tensor eval = model.forward(ids);
            lora.setTraining(true);
            double err = relErr(model.forward(ids), eval);
            System.out.printf("DoRA dropout branch (p = 1e-12) vs evaluation branch: %.2e%n", err);
            assertTrue(err < 1e-5, "dropout branch " + err);
        }
        try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                LoraAdapters lora = LoraAdapters.attach(model, dora(0.5), 3);
                PointerScope scope = new PointerScope()) {
            randomize(lora, 6);
            Tensor eval;
            try (NoGradGuard g = new NoGradGuard()) {
                eval = model.forward(ids);
            }
            lora.setTraining(true);
            Tensor logits = model.forward(ids);
            assertTrue(relErr(logits, eval) > 1e-3, "dropout 0.5 changes the training output");
            CausalLmLoss.mean(logits, ids).backward();
            for (Tensor p : lora.trainableParameters().values()) {
                assertTrue(p.grad().defined() && p.grad().abs().max().item_double() > 0);
            }
        }
    }

    @Test
    void quantizedBaseUsesTheDequantizedWeightForTheNorm() throws Exception {
        io.sftnative.bindings.NativeTestSupport.assumeNativeBuilt(); // quantization kernels
        Tensor ids = LoraTesting.sampleIds();
        QuantizationSpec nf4 = new QuantizationSpec(4, io.sftnative.quant.QuantType.NF4, true, 32);
        try (DecoderModel q = QuantizedModels.load(LoraTesting.LLAMA, ScalarType.Float, nf4, w -> { });
                DecoderModel dense = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                PointerScope scope = new PointerScope()) {
            try (NoGradGuard g = new NoGradGuard()) {
                for (String path : q.linearPaths()) {
                    if (q.linear(path) instanceof QuantizedLinear ql) {
                        dense.parameter(path + ".weight").copy_(ql.dequantize(ScalarType.Float));
                    }
                }
            }
            try (LoraAdapters lq = LoraAdapters.attach(q, dora(0.0), 3);
                    LoraAdapters ld = LoraAdapters.attach(dense, dora(0.0), 3)) {
                randomize(lq, 8);
                randomize(ld, 8);
                for (Map.Entry<String, Tensor> e : ld.trainableParameters().entrySet()) {
                    assertTrue(relErr(lq.trainableParameters().get(e.getKey()), e.getValue()) < 1e-6, e.getKey());
                }
                Tensor lossQ = CausalLmLoss.mean(q.forward(ids), ids);
                lossQ.backward(); // each backward right after its forward (attention records are a stack)
                Tensor lossD = CausalLmLoss.mean(dense.forward(ids), ids);
                lossD.backward();
                double gradErr = 0;
                for (Map.Entry<String, Tensor> e : ld.trainableParameters().entrySet()) {
                    gradErr = Math.max(gradErr, relErr(lq.trainableParameters().get(e.getKey()).grad(),
                            e.getValue().grad()));
                }
                double lossErr = Math.abs(lossQ.item_double() - lossD.item_double()) / lossD.item_double();
                System.out.printf("DoRA on NF4 vs on the dequantized dense weights: loss %.2e, gradients %.2e%n",
                        lossErr, gradErr);
                assertTrue(lossErr < 1e-6, "loss " + lossErr);
                assertTrue(gradErr < 1e-4, "gradients " + gradErr);
                IllegalStateException e = assertThrows(IllegalStateException.class, lq::merge);
                assertTrue(e.getMessage().contains("not a dense weight"), e.getMessage());
            }
        }
    }

    @Test
    void peftConfigWithDoraButNoMagnitudeIsRefusedNamingTheTensor() throws Exception {
        Path adapter = dir.resolve("broken");
        try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float);
                LoraAdapters lora = LoraAdapters.attach(model, LoraTesting.spec(4, List.of("q_proj")), 3)) {
            lora.save(adapter, "llama_gqa");
        }
        Path cfg = adapter.resolve("adapter_config.json");
        Files.writeString(cfg, Files.readString(cfg).replace("\"use_dora\": false", "\"use_dora\": true"));
        try (DecoderModel model = DecoderModel.load(LoraTesting.LLAMA, ScalarType.Float)) {
            AdapterFormatException e = assertThrows(AdapterFormatException.class,
                    () -> LoraAdapters.load(model, adapter, false));
            assertTrue(e.getMessage().contains("missing tensors base_model.model.model.layers.0.self_attn.q_proj"
                    + ".lora_magnitude_vector"), e.getMessage());
        }
    }
}
