package io.sftnative.lora;

import static io.sftnative.lora.LoraTesting.relErr;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.loss.CausalLmLoss;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.DenseLinear;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.torch.TorchRuntime;

/**
 * DoRA against tools/golden/gen_dora_golden.py (PEFT's lora.Linear + DoRA variant transcribed op for op, on the
 * transformers reference decoder, torch 1.13): the DoRA adapters PEFT's format holds load (magnitude key
 * {@code ...lora_magnitude_vector}), logits, loss and the gradients of A, B and the magnitude match, three plain SGD
 * steps follow the reference, the initial magnitude is PEFT's, and the merge is PEFT's merge_safe. Tolerances are
 * LoraGoldenTest's. Relative error = max |Δ| / max |reference|.
 */
class DoraGoldenTest {
    static final Path ROOT = Path.of("src/test/resources/golden/dora");

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama_all", "qwen2_bias_rslora"})
    void forwardGradientsAndSgdStepsMatchPeft(String name) throws Exception {
        Path dir = ROOT.resolve(name);
        JsonNode meta = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        Path modelDir = Path.of("src/test/resources/golden/model", meta.get("model").asText(), "checkpoint");
        try (DecoderModel model = DecoderModel.load(modelDir, ScalarType.Float);
                LoraAdapters lora = LoraAdapters.load(model, dir.resolve("adapter"), true);
                SafetensorsFile exp = SafetensorsFile.open(dir.resolve("expected.safetensors"));
                PointerScope scope = new PointerScope()) {
            assertTrue(lora.spec().useDora());
            assertEquals(meta.get("scaling").asDouble(), lora.spec().scaling(), 1e-12);
            Tensor ids = exp.load("input_ids");
            Tensor labels = exp.load("labels");
            Tensor logits = model.forward(ids);
            double logitErr = relErr(logits, exp.view("logits"));
            Tensor loss = CausalLmLoss.mean(logits, labels);
            double lossErr = Math.abs(loss.item_double() - meta.get("loss").asDouble());
            loss.backward();
            double gradErr = 0;
            int magnitudes = 0;
            Map<String, Tensor> params = lora.trainableParameters();
            for (Map.Entry<String, Tensor> e : params.entrySet()) {
                gradErr = Math.max(gradErr, relErr(e.getValue().grad(), exp.view("grad." + e.getKey())));
                magnitudes += e.getKey().endsWith(".lora_magnitude_vector") ? 1 : 0;
            }
            assertEquals(exp.names().stream().filter(n -> n.startsWith("grad.")).count(), params.size());
            assertEquals(lora.modulePaths().size(), magnitudes);
            double lr = meta.get("lr").asDouble();
            double stepErr = 0;
            for (JsonNode expected : meta.get("step_losses")) { // p -= lr * grad, then forward/backward again
                try (NoGradGuard g = new NoGradGuard()) {
                    for (Tensor p : params.values()) {
                        p.sub_(p.grad(), new Scalar(lr));
                        try (Tensor grad = p.mutable_grad()) {
                            grad.reset();
                        }
                    }
                }
                Tensor l = CausalLmLoss.mean(model.forward(ids), labels);
                l.backward();
                stepErr = Math.max(stepErr, Math.abs(l.item_double() - expected.asDouble()));
            }
            double afterErr = 0;
            for (Map.Entry<String, Tensor> e : params.entrySet()) {
                afterErr = Math.max(afterErr, relErr(e.getValue(), exp.view("after." + e.getKey())));
            }
            System.out.printf("DORA GOLDEN %s: logits %.2e, loss %.2e, %d gradients %.2e, SGD losses %.2e, params"
                    + " %.2e%n", name, logitErr, lossErr, params.size(), gradErr, stepErr, afterErr);
            assertTrue(logitErr < 1e-5, "logits " + logitErr);
            assertTrue(lossErr < 1e-6, "loss " + lossErr);
            assertTrue(gradErr < 1e-4, "gradients " + gradErr);
            assertTrue(stepErr < 1e-5, "SGD step losses " + stepErr);
            assertTrue(afterErr < 1e-4, "parameters after SGD " + afterErr);
            for (Tensor p : model.parameters().values()) {
                assertTrue(!p.grad().defined(), "base weights stay frozen");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama_all", "qwen2_bias_rslora"})
    void mergeIsPeftsMergeAndEqualsTheUnmergedForward(String name) throws Exception {
        Path dir = ROOT.resolve(name);
        JsonNode meta = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        Path modelDir = Path.of("src/test/resources/golden/model", meta.get("model").asText(), "checkpoint");
        try (DecoderModel model = DecoderModel.load(modelDir, ScalarType.Float);
                SafetensorsFile exp = SafetensorsFile.open(dir.resolve("expected.safetensors"));
                PointerScope scope = new PointerScope()) {
            Tensor ids = exp.load("input_ids");
            Tensor unmerged;
            List<String> paths;
            try (LoraAdapters lora = LoraAdapters.load(model, dir.resolve("adapter"), false);
                    NoGradGuard g = new NoGradGuard()) {
                unmerged = model.forward(ids);
                paths = lora.modulePaths();
                lora.merge();
            }
            double weightErr = 0;
            for (String p : paths) {
                Tensor w = ((DenseLinear) model.linear(p)).weight();
                weightErr = Math.max(weightErr, relErr(w, exp.view("merged." + p + ".weight")));
            }
            double outErr;
            try (NoGradGuard g = new NoGradGuard()) {
                outErr = relErr(model.forward(ids), unmerged);
            }
            System.out.printf("DORA MERGE %s: weights vs PEFT %.2e, merged vs unmerged logits %.2e%n", name,
                    weightErr, outErr);
            assertTrue(weightErr < 1e-6, "merged weights " + weightErr);
            assertTrue(outErr < 1e-5, "merged forward " + outErr);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama_all", "qwen2_bias_rslora"})
    void newAdapterMagnitudeIsTheRowNormOfTheBaseWeight(String name) throws Exception {
        Path dir = ROOT.resolve(name);
        JsonNode meta = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        Path modelDir = Path.of("src/test/resources/golden/model", meta.get("model").asText(), "checkpoint");
        try (DecoderModel model = DecoderModel.load(modelDir, ScalarType.Float);
                SafetensorsFile exp = SafetensorsFile.open(dir.resolve("expected.safetensors"));
                PointerScope scope = new PointerScope()) {
            Tensor ids = exp.load("input_ids");
            Tensor base;
            try (NoGradGuard g = new NoGradGuard()) {
                base = model.forward(ids);
            }
            List<String> targets = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                    "down_proj");
            LoraSpec spec = new LoraSpec(4, 8, 0.0, targets, false, List.of(), true, LoraSpec.DEFAULT_INIT);
            try (LoraAdapters lora = LoraAdapters.attach(model, spec, 11)) {
                double err = 0;
                int n = 0;
                for (Map.Entry<String, Tensor> e : lora.trainableParameters().entrySet()) {
                    String key = e.getKey();
                    if (key.endsWith(LoraAdapters.MAGNITUDE)) {
                        String path = key.substring(0, key.length() - LoraAdapters.MAGNITUDE.length());
                        if (exp.contains("init_magnitude." + path)) {
                            err = Math.max(err, relErr(e.getValue(), exp.view("init_magnitude." + path)));
                            n++;
                        }
                        assertTrue(e.getValue().requires_grad());
                    }
                }
                double outErr;
                try (NoGradGuard g = new NoGradGuard()) {
                    outErr = relErr(model.forward(ids), base);
                }
                System.out.printf("DORA INIT %s: %d magnitudes vs PEFT %.2e, output vs base %.2e%n", name, n, err,
                        outErr);
                assertTrue(n > 0);
                assertTrue(err < 1e-6, "initial magnitude " + err);
                assertTrue(outErr < 1e-5, "a new DoRA adapter leaves the output unchanged: " + outErr);
            }
        }
    }
}
