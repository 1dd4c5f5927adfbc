package io.sftnative.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.testing.TempDatasetCache;

/**
 * A 12-step LoRA run of a tiny qwen3_moe model pinned to torch (tools/golden/gen_moe_train_golden.py): LoRA on
 * attention and every expert, the load-balancing loss with {@code moe_aux_loss_coef} in each step's gradient and in
 * the logged loss, {@code aux_loss} in the log history. Same tolerance as {@link GoldenTrainingTest}.
 */
@ExtendWith(TempDatasetCache.class)
class MoeGoldenTrainingTest {
    @TempDir
    Path dir;

    @Test
    void moeLoraWithAuxLossMatchesTorchStepByStep() throws Exception {
        JsonNode exp = GoldenTrainingTest.expected("moe_lora");
        Path out = dir.resolve("out");
        List<Double> losses = GoldenTrainingTest.losses(GoldenTrainingTest.builder("moe_lora", exp, out)
                .set("adapter_name_or_path", GoldenTrainingTest.ROOT.resolve("moe_lora/adapter_init").toString()));
        double err = GoldenTrainingTest.maxRelativeError(exp.get("losses"), losses);
        System.out.printf("moe_lora: %d steps, loss %.5f -> %.5f, max relative error vs torch %.2e%n", losses.size(),
                losses.get(0), losses.get(losses.size() - 1), err);
        assertTrue(err < GoldenTrainingTest.TOLERANCE, "max relative loss error " + err + ": " + losses);

        JsonNode state = new ObjectMapper().readTree(out.resolve("trainer_state.json").toFile());
        List<Double> aux = new ArrayList<>();
        for (JsonNode e : state.get("log_history")) {
            if (e.has("aux_loss")) {
                aux.add(e.get("aux_loss").asDouble());
            }
        }
        assertEquals(12, aux.size(), "aux_loss logged at every logging step");
        for (int i = 0; i < aux.size(); i++) {
            assertEquals(exp.get("aux_losses").get(i).asDouble(), aux.get(i), 1e-4, "aux_loss of step " + (i + 1));
        }
    }
}
