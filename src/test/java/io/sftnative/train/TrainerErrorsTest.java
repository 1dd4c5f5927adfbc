package io.sftnative.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.api.SftTrainer;
import io.sftnative.checkpoint.CheckpointDirs;
import io.sftnative.config.ConfigException;
import io.sftnative.data.DataException;
import io.sftnative.loss.CausalLmLoss;
import io.sftnative.loss.LossComputation;
import io.sftnative.loss.MicroBatch;
import io.sftnative.loss.PlainLossComputation;
import io.sftnative.model.DecoderModel;
import io.sftnative.testing.Cli;
import io.sftnative.testing.Cli.Run;
import io.sftnative.testing.TempDatasetCache;
import io.sftnative.torch.Autocast;
import io.sftnative.torch.TorchRuntime;

/** Every bad configuration class stops with one clear message naming the key / file and what to do. */
@ExtendWith(TempDatasetCache.class)
class TrainerErrorsTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/train/pt_full");

    @TempDir
    Path dir;

    List<String> ptArgs(String... extra) {
        List<String> a = new ArrayList<>(List.of("train", "model_name_or_path=" + GOLDEN.resolve("model"),
                "dataset=" + GOLDEN.resolve("train.jsonl"), "stage=pt", "finetuning_type=full", "cutoff_len=32",
                "per_device_train_batch_size=2", "max_steps=6", "save_steps=2", "logging_steps=1",
                "preprocessing_num_workers=1", "output_dir=" + dir.resolve("out")));
        a.addAll(List.of(extra));
        return a;
    }

    SftTrainer.Builder pt(Path out) {
        return SftTrainer.builder().overrides(ptArgs().subList(1, ptArgs().size())).set("output_dir", out.toString());
    }

    static String errorLine(Run r) {
        assertEquals(1, r.code(), "exit code; stdout: " + r.out());
        String first = r.err().lines().filter(l -> l.startsWith("error: ")).findFirst().orElse("");
        assertFalse(first.isEmpty(), "one 'error:' line on stderr: " + r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace without SFT_DEBUG: " + r.err());
        return first;
    }

    @Test
    void unknownKeyNamesTheNearestValidKey() {
        String e = errorLine(Cli.run(ptArgs("learning_rte=1e-3").toArray(String[]::new)));
        assertTrue(e.contains("unknown config key 'learning_rte' (command line); did you mean 'learning_rate'?"), e);
    }

    @Test
    void badValuesNameTheKey() {
        String e = errorLine(Cli.run(ptArgs("learning_rate=fast").toArray(String[]::new)));
        assertTrue(e.contains("key 'learning_rate' (command line) must be a number, got 'fast'"), e);
        e = errorLine(Cli.run(ptArgs("lr_scheduler_type=cosine_forever").toArray(String[]::new)));
        assertTrue(e.contains("lr_scheduler_type") && e.contains("cosine_with_restarts"), e);
        e = errorLine(Cli.run(ptArgs("max_grad_norm=-1").toArray(String[]::new)));
        assertTrue(e.contains("max_grad_norm"), e);
        e = errorLine(Cli.run(ptArgs("finetuning_type=lora", "lora_dropout=1.5").toArray(String[]::new)));
        assertTrue(e.contains("lora_dropout"), e);
    }

    @Test
    void missingModelDirectory() {
        String e = errorLine(Cli.run(ptArgs("model_name_or_path=" + dir.resolve("nope")).toArray(String[]::new)));
        assertTrue(e.contains("model_name_or_path " + dir.resolve("nope") + " is not a directory"), e);
        Path noConfig = dir.resolve("empty_model");
        noConfig.toFile().mkdirs();
        e = errorLine(Cli.run(ptArgs("model_name_or_path=" + noConfig).toArray(String[]::new)));
        assertTrue(e.contains("config.json"), e);
    }

    @Test
    void missingAndEmptyDatasets() throws Exception {
        Path missing = dir.resolve("missing.jsonl");
        DataException e = assertThrows(DataException.class,
                () -> pt(dir.resolve("o1")).set("dataset", missing.toString()).build().run());
        assertTrue(e.getMessage().contains(missing.getFileName().toString()), e.getMessage());
        Path empty = dir.resolve("empty.jsonl");
        Files.writeString(empty, "");
        e = assertThrows(DataException.class,
                () -> pt(dir.resolve("o2")).set("dataset", empty.toString()).build().run());
        assertTrue(e.getMessage().contains("gives no examples"), e.getMessage());
        assertThrows(ConfigException.class, () -> pt(dir.resolve("o3")).set("do_eval", true).build().run(),
                "do_eval without evaluation data");
    }

    @Test
    void refusesToOverwriteFinishedWeights() throws Exception {
        Path out = dir.resolve("finished");
        Files.createDirectories(out);
        Files.writeString(out.resolve("model.safetensors"), "weights of an earlier run");
        String e = errorLine(Cli.run(ptArgs("output_dir=" + out).toArray(String[]::new)));
        assertTrue(e.contains("already holds trained weights (model.safetensors)")
                && e.contains("overwrite_output_dir: true"), e);
        assertEquals("weights of an earlier run", Files.readString(out.resolve("model.safetensors")));
        assertEquals(0,
                Cli.run(ptArgs("output_dir=" + out, "overwrite_output_dir=true").toArray(String[]::new)).code());
    }

    @Test
    void resumingWithOtherDataIsRefused() throws Exception {
        Path out = dir.resolve("resume");
        pt(out).set("max_steps", 2).build().run();
        ConfigException e = assertThrows(ConfigException.class,
                () -> pt(out).set("max_steps", 4).set("cutoff_len", 16).build().run());
        assertTrue(e.getMessage().contains("the data changed"), e.getMessage());
    }

    /** Injects NaN into the loss of optimizer step {@code badStep}: real NaN gradients reach the clip and check. */
    static LossComputation nanAt(int badStep, int microPerStep) {
        LossComputation plain = new PlainLossComputation(Autocast.OFF);
        return new LossComputation() {
            int calls;

            @Override
            public double forwardBackward(DecoderModel model, MicroBatch batch, double normaliser) {
                calls++;
                if ((calls - 1) / microPerStep + 1 != badStep) {
                    return plain.forwardBackward(model, batch, normaliser);
                }
                Tensor logits = model.forward(batch.inputIds(), batch.context()); // (B, T, V)
                Tensor sum = CausalLmLoss.sum(logits, batch.labels()).sum().mul(new Scalar(Double.NaN));
                sum.div(new Scalar(normaliser)).backward();
                return sum.item_double();
            }

            @Override
            public double lossSum(DecoderModel model, MicroBatch batch) {
                return plain.lossSum(model, batch);
            }

            @Override
            public String name() {
                return "nan-at-" + badStep;
            }
        };
    }

    @Test
    void nanLossStopsClearlyAndKeepsTheLastGoodCheckpoint() throws Exception {
        Path out = dir.resolve("nan");
        TrainingDivergedException e = assertThrows(TrainingDivergedException.class,
                () -> pt(out).lossComputation(nanAt(5, 1)).build().run());
        assertEquals(5, e.step());
        assertTrue(e.getMessage().contains("training diverged at step 5: the loss is NaN"), e.getMessage());
        assertTrue(e.getMessage().contains("the last good checkpoint is " + out.resolve("checkpoint-4")),
                e.getMessage());
        assertTrue(CheckpointDirs.isComplete(out.resolve("checkpoint-2")));
        assertTrue(CheckpointDirs.isComplete(out.resolve("checkpoint-4")));
        assertFalse(Files.exists(out.resolve("checkpoint-6")));
        assertFalse(Files.exists(out.resolve("model.safetensors")), "no final model from a diverged run");
        // the kept checkpoint resumes and finishes
        assertEquals(6, pt(out).build().run().globalStep());
    }

    @Test
    void aHugeLearningRateDivergesWithTheSameClearStop() {
        Run r = Cli.run(ptArgs("learning_rate=1e30", "max_grad_norm=0", "max_steps=12").toArray(String[]::new));
        String e = errorLine(r);
        assertTrue(e.contains("training diverged at step") && e.contains("Lower learning_rate"), e);
    }

    @Test
    void aGpuThatIsNotThereStopsBeforeAnyWork() {
        assumeFalse(TorchRuntime.info().cuda(), "needs a process without a usable GPU");
        Path out = dir.resolve("gpu");
        String e = errorLine(Cli.run(ptArgs("device=cuda", "output_dir=" + out).toArray(String[]::new)));
        assertTrue(e.startsWith("error: device is 'cuda' but no GPU can be used: "), e);
        assertTrue(e.contains("CPU build") && e.contains("Set device to cpu"), e);
        assertFalse(Files.exists(out), "nothing written");
        e = errorLine(Cli.run(ptArgs("device=gpu0").toArray(String[]::new)));
        assertTrue(e.contains("key 'device'") && e.contains("'gpu0'"), e);
        assertEquals(0, Cli.run(ptArgs("device=cpu", "max_steps=1", "save_steps=1", "output_dir=" + out)
                .toArray(String[]::new)).code(), "device=cpu trains");
    }
}
