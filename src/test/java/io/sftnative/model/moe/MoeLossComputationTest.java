package io.sftnative.model.moe;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;


import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import com.fasterxml.jackson.databind.JsonNode;

import io.sftnative.batch.Batch;
import io.sftnative.loss.LossComputation;
import io.sftnative.loss.MemoryEfficientLoss;
import io.sftnative.loss.MicroBatch;
import io.sftnative.loss.PlainLossComputation;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.Tensors;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.torch.Autocast;
import io.sftnative.torch.TorchRuntime;

/**
 * The training step of a MoE model adds transformers' {@code router_aux_loss_coef * aux_loss} to the loss in every
 * loss computation (plain; gradient checkpointing, where each recomputed layer backpropagates its share of the aux
 * loss; the fused LM-head loss): gradients equal the reference's gradients of LM loss + coef * aux on the padded
 * golden case (tolerances of MoeGoldenParityTest); evaluation ({@code lossSum}) is the LM loss alone.
 */
class MoeLossComputationTest {
    static final Path ROOT = MoeGoldenParityTest.ROOT;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    static LossComputation computation(String kind) {
        return switch (kind) {
            case "plain" -> new PlainLossComputation(Autocast.OFF);
            case "checkpointing" -> new MemoryEfficientLoss(true, false, 0);
            case "fused" -> new MemoryEfficientLoss(false, true, 7);
            case "checkpointing+fused" -> new MemoryEfficientLoss(true, true, 7);
            default -> throw new IllegalArgumentException(kind);
        };
    }

    @ParameterizedTest
    @CsvSource({"qwen3_moe,plain", "qwen3_moe,checkpointing", "qwen3_moe,fused", "qwen3_moe,checkpointing+fused",
            "qwen2_moe,checkpointing+fused", "mixtral,plain", "mixtral,checkpointing"})
    void trainingGradientsIncludeTheAuxLossAndEvalLossExcludesIt(String name, String kind) throws IOException {
        JsonNode ref = MoeGoldenParityTest.meta(name).get("cases").get("padded");
        String tag = name + "/" + kind;
        LossComputation loss = computation(kind);
        try (DecoderModel model = DecoderModel.load(ROOT.resolve(name).resolve("checkpoint"), ScalarType.Float);
                SafetensorsFile exp = SafetensorsFile.open(ROOT.resolve(name).resolve("expected.safetensors"));
                PointerScope scope = new PointerScope()) {
            model.setRequiresGrad(true);
            MicroBatch mb = MicroBatch.upload(batch(exp, "padded"), model);
            double normaliser = mb.targetTokens();
            double lossSum = loss.forwardBackward(model, mb, normaliser);
            double aux = model.routerLog().takeStepAux();
            MoeGoldenParityTest.checkScalar(tag, "LM loss", lossSum / normaliser, ref.get("loss").asDouble());
            MoeGoldenParityTest.checkScalar(tag, "aux_loss", aux, ref.get("aux_loss").asDouble());
            int grads = 0;
            for (String key : exp.names()) {
                if (key.startsWith("padded.grad.")) {
                    String param = key.substring("padded.grad.".length());
                    MoeGoldenParityTest.check(tag, "grad (LM + coef * aux) " + param,
                            MoeGoldenParityTest.relErr(model.parameter(param).grad(), exp.view(key)),
                            MoeGoldenParityTest.GRAD_TOL);
                    grads++;
                }
            }
            assertTrue(grads >= 8);

            double eval = loss.lossSum(model, mb) / normaliser;
            MoeGoldenParityTest.checkScalar(tag, "eval loss (no aux)", eval, ref.get("loss").asDouble());
            assertTrue(Double.isNaN(model.routerLog().takeStepAux()), "evaluation adds no aux loss");
        }
    }

    /** The golden case as a collated host batch (right padding, 0/1 mask). */
    static Batch batch(SafetensorsFile exp, String c) {
        Tensor ids = exp.view(c + ".input_ids"); // (B, T)
        int b = (int) ids.size(0);
        int t = (int) ids.size(1);
        long[] labels = Tensors.toLongs(exp.view(c + ".labels"));
        long targets = 0;
        for (int r = 0; r < b; r++) {
            for (int i = 1; i < t; i++) {
                targets += labels[r * t + i] != -100 ? 1 : 0;
            }
        }
        return new Batch(b, t, Tensors.toLongs(ids), labels, Tensors.toLongs(exp.view(c + ".attention_mask")),
                Tensors.toLongs(exp.view(c + ".position_ids")), targets, false);
    }

}
