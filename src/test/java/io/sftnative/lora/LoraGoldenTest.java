package io.sftnative.lora;

import static io.sftnative.lora.LoraTesting.relErr;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.loss.CausalLmLoss;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.torch.TorchRuntime;

/**
 * LoRA math against tools/golden/gen_lora_golden.py (PEFT's lora.Linear forward copied faithfully, on the
 * transformers reference decoder, torch 1.13): the adapters are loaded from PEFT-format directories the script wrote,
 * so this also checks that we read PEFT's files. Relative error = max |Δ| / max |reference|.
 */
class LoraGoldenTest {
    static final Path ROOT = Path.of("src/test/resources/golden/lora");

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama_all", "qwen3_qv_rslora"})
    void logitsLossAndAdapterGradientsMatchPeft(String name) throws Exception {
        Path dir = ROOT.resolve(name);
        JsonNode meta = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        Path modelDir = Path.of("src/test/resources/golden/model", meta.get("model").asText(), "checkpoint");
        try (DecoderModel model = DecoderModel.load(modelDir, ScalarType.Float);
                LoraAdapters lora = LoraAdapters.load(model, dir.resolve("adapter"), true);
                SafetensorsFile exp = SafetensorsFile.open(dir.resolve("expected.safetensors"));
                PointerScope scope = new PointerScope()) {
            assertEquals(meta.get("scaling").asDouble(), lora.spec().scaling(), 1e-12);
            Tensor ids = exp.load("input_ids");
            Tensor logits = model.forward(ids);
            double logitErr = relErr(logits, exp.view("logits"));
            Tensor loss = CausalLmLoss.mean(logits, exp.load("labels"));
            double lossErr = Math.abs(loss.item_double() - meta.get("loss").asDouble());
            loss.backward();
            double gradErr = 0;
            int grads = 0;
            for (Map.Entry<String, Tensor> e : lora.trainableParameters().entrySet()) {
                gradErr = Math.max(gradErr, relErr(e.getValue().grad(), exp.view("grad." + e.getKey())));
                grads++;
            }
            assertEquals(exp.names().stream().filter(n -> n.startsWith("grad.")).count(), grads);
            System.out.printf("LORA GOLDEN %s: logits %.2e, loss %.2e, %d A/B gradients %.2e%n", name, logitErr,
                    lossErr, grads, gradErr);
            assertTrue(logitErr < 1e-5, "logits " + logitErr);
            assertTrue(lossErr < 1e-6, "loss " + lossErr);
            assertTrue(gradErr < 1e-4, "gradients " + gradErr);
            for (Tensor p : model.parameters().values()) {
                assertTrue(!p.grad().defined());
            }
        }
    }
}
