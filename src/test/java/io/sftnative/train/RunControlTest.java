package io.sftnative.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.api.EvalEvent;
import io.sftnative.api.SftTrainer;
import io.sftnative.api.StepEvent;
import io.sftnative.api.TrainResult;
import io.sftnative.api.TrainingListener;
import io.sftnative.api.TrainingRun;
import io.sftnative.checkpoint.CheckpointDirs;
import io.sftnative.checkpoint.TrainingCheckpoint;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.optim.ReduceLrOnPlateau;
import io.sftnative.testing.TempDatasetCache;

/** save/logging/eval strategies, best model, early stopping and reduce_lr_on_plateau in real (tiny) runs. */
@ExtendWith(TempDatasetCache.class)
class RunControlTest {
    @TempDir
    Path dir;

    /** LoRA SFT on the golden tiny model: 16 training rows, 5 held out, batch 4 → 4 steps per epoch, 2 epochs. */
    static SftTrainer.Builder run(Path out) {
        return ResumeTest.loraRun(out).set("lora_dropout", 0.0).set("val_size", 5).set("per_device_train_batch_size", 4)
                .set("gradient_accumulation_steps", 1).set("num_train_epochs", 2).set("eval_steps", 1)
                .set("per_device_eval_batch_size", 5);
    }

    record Seen(List<StepEvent> steps, List<EvalEvent> evals, TrainResult result) {}

    static Seen train(SftTrainer.Builder b) throws Exception {
        List<StepEvent> steps = new ArrayList<>();
        List<EvalEvent> evals = new ArrayList<>();
        b.listener(new TrainingListener() {
            @Override
            public void onStep(StepEvent e) {
                steps.add(e);
            }

            @Override
            public void onEval(EvalEvent e) {
                evals.add(e);
            }
        });
        try (TrainingRun r = b.build().start()) {
            return new Seen(steps, evals, r.await());
        }
    }

    @Test
    void reduceLrOnPlateauFollowsTheEvalLossAndIsCheckpointed() throws Exception {
        Path out = dir.resolve("plateau");
        Seen s = train(run(out).set("lr_scheduler_type", "reduce_lr_on_plateau")
                .set("lr_scheduler_kwargs", Map.of("patience", 0, "factor", 0.5, "threshold", 0.05)));
        assertEquals(TrainResult.Status.COMPLETED, s.result().status(), String.valueOf(s.result()));
        // replay torch's rule on the losses the run reported: the rate of step k+1 is the one after eval k
        ReduceLrOnPlateau ref = new ReduceLrOnPlateau(1e-2, Map.of("patience", 0.0, "factor", 0.5, "threshold",
                0.05));
        assertEquals(1e-2, s.steps().get(0).learningRate());
        boolean reduced = false;
        for (int k = 0; k + 1 < s.steps().size(); k++) {
            ref.step(s.evals().get(k).metrics().get("eval_loss"));
            assertEquals(ref.lr(), s.steps().get(k + 1).learningRate(), 0.0, "lr of step " + (k + 2));
            reduced |= ref.lr() < 1e-2;
        }
        assertTrue(reduced, "a threshold of 5% per evaluation must trigger at least one reduction");
        TrainingCheckpoint.Loaded ck = TrainingCheckpoint.read(out.resolve("checkpoint-3"));
        assertTrue(ck.schedule().state().containsKey("plateau"), ck.schedule().state().toString());
    }

    @Test
    void earlyStoppingRestoresTheBestCheckpoint() throws Exception {
        Path out = dir.resolve("early");
        // greater_is_better on a falling loss: the first evaluation stays the best, two more end the run
        Seen s = train(run(out).set("load_best_model_at_end", true).set("metric_for_best_model", "loss")
                .set("greater_is_better", true).set("early_stopping_steps", 2).set("save_steps", 1)
                .set("save_total_limit", 1));
        assertEquals(TrainResult.Status.COMPLETED, s.result().status());
        assertEquals(3, s.steps().size(), "stopped after 2 evaluations without improvement");
        assertTrue(Files.isDirectory(out.resolve("checkpoint-1")), "the best checkpoint survives save_total_limit");
        assertTrue(Files.isDirectory(out.resolve("checkpoint-3")));
        try (PointerScope scope = new PointerScope();
                SafetensorsFile best = SafetensorsFile.open(out.resolve("checkpoint-1/adapter_model.safetensors"));
                SafetensorsFile last = SafetensorsFile.open(out.resolve("checkpoint-3/adapter_model.safetensors"));
                SafetensorsFile result = SafetensorsFile.open(out.resolve("adapter_model.safetensors"))) {
            boolean differs = false;
            for (String name : best.names()) {
                float[] b = floats(best, name);
                assertArrayEquals(b, floats(result, name), name + ": the output is the best checkpoint's");
                differs |= !java.util.Arrays.equals(b, floats(last, name));
            }
            assertTrue(differs, "the last checkpoint trained further");
        }
    }

    private static float[] floats(SafetensorsFile f, String name) {
        var t = f.load(name, org.bytedeco.pytorch.global.torch.ScalarType.Float).contiguous();
        float[] out = new float[(int) t.numel()];
        t.data_ptr_float().get(out);
        return out;
    }

    @Test
    void saveAndLoggingStrategies() throws Exception {
        Path none = dir.resolve("none");
        train(run(none).set("save_strategy", "no").set("eval_strategy", "no"));
        assertEquals(List.of(), CheckpointDirs.list(none));
        assertTrue(Files.isRegularFile(none.resolve("adapter_model.safetensors")), "the result is still written");

        Path epoch = dir.resolve("epoch");
        train(run(epoch).set("save_strategy", "epoch").set("logging_strategy", "epoch").set("eval_strategy", "no")
                .set("save_only_model", true));
        assertEquals(List.of(epoch.resolve("checkpoint-4"), epoch.resolve("checkpoint-8")),
                CheckpointDirs.list(epoch));
        assertFalse(Files.exists(epoch.resolve("checkpoint-4").resolve(TrainingCheckpoint.OPTIMIZER_FILE)),
                "save_only_model: weights only");
        var e = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class,
                () -> TrainingCheckpoint.read(epoch.resolve("checkpoint-4")));
        assertTrue(e.getMessage().contains("save_only_model"), e.getMessage());
        List<Long> logged = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(epoch.resolve("trainer_log.jsonl"))) {
            JsonNode n = json.readTree(line);
            if (n.has("loss")) {
                logged.add(n.get("current_steps").asLong());
            }
        }
        assertEquals(List.of(4L, 8L), logged, "logging_strategy epoch: one entry per epoch");
    }

    @Test
    void reportToTensorBoardWritesTheLoggedScalars() throws Exception {
        Path out = dir.resolve("tb");
        Path logs = dir.resolve("tb-logs");
        Seen s = train(run(out).set("report_to", "tensorboard").set("logging_dir", logs.toString())
                .set("eval_steps", 4).set("max_steps", 4));
        assertEquals(TrainResult.Status.COMPLETED, s.result().status());
        List<Path> files;
        try (var l = Files.list(logs)) {
            files = l.toList();
        }
        assertEquals(1, files.size(), files.toString());
        var events = io.sftnative.train.log.TensorBoardWriterTest.read(files.get(0));
        List<Float> losses = new ArrayList<>();
        Float evalLoss = null;
        for (var e : events) {
            if (e.scalars().containsKey("train/loss")) {
                losses.add(e.scalars().get("train/loss"));
            }
            if (e.scalars().containsKey("eval/loss")) {
                evalLoss = e.scalars().get("eval/loss");
                assertEquals(4, e.step());
            }
        }
        List<Float> want = new ArrayList<>();
        s.steps().forEach(st -> want.add((float) st.loss()));
        assertEquals(want, losses, "logging_steps 1: every step's loss, as trainer_log.jsonl");
        assertEquals(s.evals().get(0).metrics().get("eval_loss").floatValue(), evalLoss);
    }

    /** Bytes of optimizer state per trained parameter in a checkpoint (step scalars left out). */
    static double stateBytesPerParam(Path checkpoint) throws Exception {
        long params = 0;
        long bytes = 0;
        try (SafetensorsFile f = SafetensorsFile.open(checkpoint.resolve(TrainingCheckpoint.OPTIMIZER_FILE))) {
            for (var e : f.entries().values()) {
                if (e.name().endsWith(".step")) {
                    continue;
                }
                bytes += e.byteLength();
                if (e.name().endsWith(".exp_avg")) {
                    params += e.numel();
                }
            }
        }
        return (double) bytes / params;
    }

    /** Full fine-tuning: fp32 AdamW state is 8 bytes per parameter; pure_bf16 holds weights and state in bf16. */
    @Test
    void pureBf16HalvesTheOptimizerState() throws Exception {
        Path fp32 = dir.resolve("fp32");
        Path bf16 = dir.resolve("bf16");
        for (Path out : List.of(fp32, bf16)) {
            Seen s = train(run(out).set("finetuning_type", "full").set("eval_strategy", "no").set("max_steps", 3)
                    .set("save_steps", 3).set("learning_rate", 1e-3).set("pure_bf16", out == bf16));
            assertEquals(TrainResult.Status.COMPLETED, s.result().status());
            s.steps().forEach(st -> assertTrue(Double.isFinite(st.loss()), "loss " + st.loss()));
        }
        assertEquals(8.0, stateBytesPerParam(fp32.resolve("checkpoint-3")), 0.0);
        assertEquals(4.0, stateBytesPerParam(bf16.resolve("checkpoint-3")), 0.0);
        try (SafetensorsFile f = SafetensorsFile.open(bf16.resolve("model.safetensors"))) {
            assertEquals("BF16", f.entry("model.norm.weight").dtype().toString(), "trained weights stay bf16");
        }
    }

    @Test
    void loadBestNeedsMatchingStrategies() {
        var e = org.junit.jupiter.api.Assertions.assertThrows(Exception.class,
                () -> train(run(dir.resolve("x")).set("load_best_model_at_end", true).set("save_steps", 3)
                        .set("eval_steps", 2)));
        assertTrue(String.valueOf(e.getMessage()).contains("save_steps") || String.valueOf(e.getCause())
                .contains("save_steps"), String.valueOf(e));
    }
}
