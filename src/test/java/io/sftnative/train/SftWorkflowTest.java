package io.sftnative.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.api.EvalEvent;
import io.sftnative.api.SftEvaluation;
import io.sftnative.api.SftTrainer;
import io.sftnative.api.StepEvent;
import io.sftnative.api.TrainResult;
import io.sftnative.api.TrainingListener;
import io.sftnative.config.ConfigLoader;
import io.sftnative.config.SftConfig;
import io.sftnative.model.DecoderModel;

/**
 * The SFT workflow on real text (the demo tokenizer and dataset, a random-init demo model): qwen template, val_size
 * split, eval loss every eval_steps, predict with generate (generated_predictions.jsonl, BLEU/ROUGE), accuracy,
 * loss plots, result files, checkpoint contents, and full / freeze / bf16 variants.
 */
class SftWorkflowTest {
    @TempDir
    static Path shared;
    static Path base;

    @TempDir
    Path dir;

    @BeforeAll
    static void demoModel() throws Exception {
        io.sftnative.torch.TorchRuntime.boot();
        base = Demo.writeAssets(shared, 1);
    }

    @BeforeEach
    void cacheInTempDir() {
        System.setProperty("sft.cache.dir", shared.resolve("cache").toString());
    }

    @AfterEach
    void restore() {
        System.clearProperty("sft.cache.dir");
    }

    SftTrainer.Builder sft(Path out) {
        return SftTrainer.builder().set("model_name_or_path", base.toString()).set("dataset", "demo_sft")
                .set("dataset_dir", shared.resolve("data").toString()).set("template", "qwen")
                .set("cutoff_len", 96).set("per_device_train_batch_size", 4).set("per_device_eval_batch_size", 4)
                .set("learning_rate", 3e-3).set("logging_steps", 2).set("save_steps", 4).set("seed", 3)
                .set("preprocessing_num_workers", 1).set("output_dir", out.toString());
    }

    @Test
    void loraSftWithEvalPredictAndPlots() throws Exception {
        Path out = dir.resolve("lora");
        List<EvalEvent> evals = new ArrayList<>();
        List<StepEvent> steps = new ArrayList<>();
        TrainResult r = sft(out).set("finetuning_type", "lora").set("lora_rank", 8).set("val_size", 8)
                .set("max_steps", 8).set("eval_steps", 4).set("do_train", true).set("do_eval", true)
                .set("predict_with_generate", true)
                .set("do_sample", false).set("max_new_tokens", 8).set("plot_loss", true)
                .listener(new TrainingListener() {
                    @Override
                    public void onStep(StepEvent e) {
                        steps.add(e);
                    }

                    @Override
                    public void onEval(EvalEvent e) {
                        evals.add(e);
                    }
                }).build().run();
        assertEquals(TrainResult.Status.COMPLETED, r.status());
        assertEquals(8, steps.size());
        assertTrue(steps.stream().allMatch(s -> s.tokensPerSecond() > 0 && s.targetTokens() > 0));
        assertEquals(List.of(4L, 8L), evals.stream().map(EvalEvent::step).toList());

        ObjectMapper json = new ObjectMapper();
        List<JsonNode> log = Files.readAllLines(out.resolve("trainer_log.jsonl")).stream().map(l -> read(json, l))
                .toList();
        assertEquals(4, log.stream().filter(n -> n.has("loss")).count(), "logging_steps 2 over 8 steps");
        assertEquals(2, log.stream().filter(n -> n.has("eval_loss")).count());
        for (String f : List.of("adapter_model.safetensors", "adapter_config.json", "tokenizer.json",
                "tokenizer_config.json", "trainer_state.json", "train_results.json", "eval_results.json",
                "predict_results.json", "all_results.json", "generated_predictions.jsonl", "training_loss.png",
                "training_eval_loss.png")) {
            assertTrue(Files.exists(out.resolve(f)), f);
        }
        for (String f : List.of("adapter_model.safetensors", "optimizer.safetensors", "scheduler.json",
                "rng_state.json", "training_position.json", "trainer_state.json", "tokenizer.json")) {
            assertTrue(Files.exists(out.resolve("checkpoint-8").resolve(f)), "checkpoint-8/" + f);
        }
        List<String> predictions = Files.readAllLines(out.resolve("generated_predictions.jsonl"));
        assertEquals(8, predictions.size());
        JsonNode p = json.readTree(predictions.get(0));
        assertTrue(p.get("prompt").asText().contains("<|im_start|>user\n"), p.toString());
        assertTrue(p.get("prompt").asText().endsWith("<|im_start|>assistant\n"), p.toString());
        assertTrue(p.has("predict") && !p.get("label").asText().isEmpty(), p.toString());
        JsonNode all = json.readTree(out.resolve("all_results.json").toFile());
        for (String k : List.of("train_loss", "eval_loss", "predict_bleu-4", "predict_rouge-1", "predict_rouge-2",
                "predict_rouge-l", "train_runtime", "epoch")) {
            assertTrue(all.has(k), k + " in " + all);
        }

        // the eval command computes the same eval_loss for the trained adapter on the same split
        SftConfig cfg = SftConfig.from(ConfigLoader.load(null, List.of(), Map.of(
                "model_name_or_path", base.toString(), "adapter_name_or_path", out.toString(),
                "dataset", "demo_sft", "dataset_dir", shared.resolve("data").toString(), "template", "qwen",
                "cutoff_len", 96, "val_size", 8, "seed", 3, "per_device_eval_batch_size", 3)), w -> {});
        double evalCommand = ((Number) SftEvaluation.run(cfg, null).get("eval_loss")).doubleValue();
        double trainer = evals.get(1).loss();
        assertEquals(trainer, evalCommand, 1e-5 * trainer, "eval command vs the trainer's last evaluation");
    }

    static JsonNode read(ObjectMapper json, String line) {
        try {
            return json.readTree(line);
        } catch (Exception e) {
            throw new AssertionError(line, e);
        }
    }

    @Test
    void accuracyIsReportedWithComputeAccuracy() throws Exception {
        Path out = dir.resolve("acc");
        TrainResult r = sft(out).set("finetuning_type", "lora").set("val_size", 4).set("max_steps", 2)
                .set("do_train", true).set("do_eval", true).set("compute_accuracy", true).build().run();
        double acc = ((Number) r.metrics().get("eval_accuracy")).doubleValue();
        assertTrue(acc >= 0 && acc <= 1, "eval_accuracy " + acc);
    }

    @Test
    void freezeTrainsOnlyTheLastLayers() throws Exception {
        Path out = dir.resolve("freeze");
        sft(out).set("finetuning_type", "freeze").set("freeze_trainable_layers", 1).set("max_steps", 2).build()
                .run();
        try (DecoderModel before = DecoderModel.load(base, ScalarType.Float);
                DecoderModel after = DecoderModel.load(out, ScalarType.Float);
                PointerScope scope = new PointerScope()) {
            String frozen = "model.layers.0.mlp.up_proj.weight";
            String trained = "model.layers." + (before.config().numHiddenLayers() - 1) + ".mlp.up_proj.weight";
            assertTrue(torch.equal(before.parameter(frozen), after.parameter(frozen)), frozen + " must not change");
            assertFalse(torch.equal(before.parameter(trained), after.parameter(trained)), trained + " must train");
            assertTrue(torch.equal(before.embedWeight(), after.embedWeight()), "embeddings frozen");
        }
    }

    @Test
    void fullFineTuningInBf16AutocastTracksFp32() throws Exception {
        List<Double> fp32 = losses(sft(dir.resolve("fp32")).set("finetuning_type", "full").set("max_steps", 4));
        List<Double> bf16 = losses(sft(dir.resolve("bf16")).set("finetuning_type", "full").set("max_steps", 4)
                .set("bf16", true));
        for (int i = 0; i < fp32.size(); i++) {
            assertTrue(Double.isFinite(bf16.get(i)));
            assertEquals(fp32.get(i), bf16.get(i), 0.02 * fp32.get(i), "step " + (i + 1) + ": " + fp32 + " vs "
                    + bf16);
        }
        assertFalse(fp32.equals(bf16), "bf16 autocast must change the arithmetic");
        try (DecoderModel m = DecoderModel.load(dir.resolve("bf16"), null)) {
            assertEquals(ScalarType.Float, m.dtype(), "master weights stay fp32");
        }
    }

    static List<Double> losses(SftTrainer.Builder b) throws Exception {
        List<Double> out = new ArrayList<>();
        b.listener(new TrainingListener() {
            @Override
            public void onStep(StepEvent e) {
                out.add(e.loss());
            }
        }).build().run();
        return out;
    }
}
