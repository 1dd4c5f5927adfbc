package io.sftnative.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.api.SftTrainer;
import io.sftnative.api.StepEvent;
import io.sftnative.api.TrainResult;
import io.sftnative.api.TrainingListener;
import io.sftnative.checkpoint.ResumableRandom;
import io.sftnative.testing.TempDatasetCache;

/**
 * End-to-end training pinned to torch: tools/golden/gen_train_golden.py trains the same tiny checkpoint on the same
 * pre-tokenized data with torch 1.13 (torch.optim.AdamW with HF's parameter groups, clip_grad_norm_, HF's schedule,
 * accumulation normalised by the target tokens of the whole accumulated batch) and records every step's loss. The
 * Java run goes through the whole trainer (data pipeline, DataOrder, collator, loop) and must match each step.
 */
@ExtendWith(TempDatasetCache.class)
class GoldenTrainingTest {
    static final Path ROOT = Path.of("src/test/resources/golden/train");
    /** fp32, different attention kernels (fused SDPA vs eager) and GEMM blocking: relative error per step. */
    static final double TOLERANCE = 1e-5;

    @TempDir
    Path dir;

    static JsonNode expected(String name) throws Exception {
        return new ObjectMapper().readTree(ROOT.resolve(name).resolve("expected.json").toFile());
    }

    /** The trainer's keys from the golden's, plus where things are. */
    static SftTrainer.Builder builder(String name, JsonNode exp, Path out) {
        SftTrainer.Builder b = SftTrainer.builder();
        exp.get("keys").properties().forEach(e -> b.set(e.getKey(), e.getValue().isNumber()
                ? e.getValue().numberValue() : e.getValue().asText()));
        return b.set("model_name_or_path", ROOT.resolve(name).resolve("model").toString())
                .set("dataset", ROOT.resolve(name).resolve("train.jsonl").toString())
                .set("output_dir", out.toString()).set("logging_steps", 1).set("save_steps", 1000)
                .set("preprocessing_num_workers", 1);
    }

    static List<Double> losses(SftTrainer.Builder b) throws Exception {
        List<Double> losses = new ArrayList<>();
        b.listener(new TrainingListener() {
            @Override
            public void onStep(StepEvent e) {
                losses.add(e.loss());
            }
        });
        TrainResult r = b.build().run();
        assertEquals(TrainResult.Status.COMPLETED, r.status());
        return losses;
    }

    static double maxRelativeError(JsonNode expected, List<Double> actual) {
        assertEquals(expected.size(), actual.size(), "steps");
        double worst = 0;
        for (int i = 0; i < actual.size(); i++) {
            double e = expected.get(i).asDouble();
            worst = Math.max(worst, Math.abs(actual.get(i) - e) / Math.abs(e));
        }
        return worst;
    }

    @Test
    void dataOrderMatchesThePythonPermutation() throws Exception {
        JsonNode exp = expected("pt_full");
        int n = exp.get("train_rows").asInt();
        long seed = exp.get("keys").get("seed").asLong();
        for (var e : exp.get("permutations").properties()) {
            int[] want = new int[n];
            for (int i = 0; i < n; i++) {
                want[i] = e.getValue().get(i).asInt();
            }
            assertArrayEquals(want, ResumableRandom.epochPermutation(n, seed, Long.parseLong(e.getKey())));
        }
    }

    @Test
    void fullPretrainingMatchesTorchStepByStep() throws Exception {
        JsonNode exp = expected("pt_full");
        List<Double> losses = losses(builder("pt_full", exp, dir.resolve("out")));
        double err = maxRelativeError(exp.get("losses"), losses);
        System.out.printf("pt_full: %d steps, loss %.5f -> %.5f, max relative error vs torch %.2e%n", losses.size(),
                losses.get(0), losses.get(losses.size() - 1), err);
        assertTrue(err < TOLERANCE, "max relative loss error " + err + ": " + losses);
    }


    @Test
    void loraSftMatchesTorchStepByStep() throws Exception {
        JsonNode exp = expected("sft_lora");
        SftTrainer.Builder b = builder("sft_lora", exp, dir.resolve("out"))
                .set("adapter_name_or_path", ROOT.resolve("sft_lora").resolve("adapter_init").toString());
        List<Double> losses = losses(b);
        double err = maxRelativeError(exp.get("losses"), losses);
        System.out.printf("sft_lora: %d steps, loss %.5f -> %.5f, max relative error vs torch %.2e%n", losses.size(),
                losses.get(0), losses.get(losses.size() - 1), err);
        assertTrue(err < TOLERANCE, "max relative loss error " + err + ": " + losses);
        Path out = dir.resolve("out");
        assertTrue(Files.exists(out.resolve("adapter_model.safetensors")));
        assertTrue(Files.exists(out.resolve("adapter_config.json")));
        assertTrue(Files.notExists(out.resolve("model.safetensors")), "LoRA saves the adapter only");
    }
}
