package io.sftnative.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.checkpoint.CheckpointDirs;
import io.sftnative.config.ConfigException;
import io.sftnative.data.DataException;
import io.sftnative.testing.TempDatasetCache;

/** Embedding the trainer in a JVM service: builder, events, run handle, cancellation, failures. */
@ExtendWith(TempDatasetCache.class)
class SftTrainerApiTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/train/pt_full");

    @TempDir
    Path dir;

    SftTrainer.Builder pt(Path out, long steps) {
        return SftTrainer.builder().set("model_name_or_path", GOLDEN.resolve("model").toString())
                .set("dataset", GOLDEN.resolve("train.jsonl").toString()).set("stage", "pt")
                .set("finetuning_type", "full").set("cutoff_len", 32).set("per_device_train_batch_size", 2)
                .set("max_steps", steps).set("save_steps", 4).set("logging_steps", 2)
                .set("preprocessing_num_workers", 1).set("output_dir", out.toString());
    }

    @Test
    void eventsArriveInOrderOnTheTrainingThread() throws Exception {
        List<String> events = new CopyOnWriteArrayList<>();
        TrainingListener l = new TrainingListener() {
            @Override
            public void onStart(long startStep, long totalSteps) {
                events.add("start " + startStep + "/" + totalSteps + " " + Thread.currentThread().getName());
            }

            @Override
            public void onStep(StepEvent e) {
                events.add("step " + e.step());
            }

            @Override
            public void onCheckpoint(CheckpointEvent e) {
                events.add("checkpoint " + e.step() + " " + e.directory().getFileName());
            }
        };
        try (TrainingRun run = pt(dir.resolve("a"), 8).listener(l).build().start()) {
            TrainResult r = run.await();
            assertEquals(TrainResult.Status.COMPLETED, r.status());
            assertEquals(8, r.globalStep());
            assertTrue(Double.isFinite(r.trainLoss()));
        }
        assertEquals(List.of("start 0/8 sft-native-train", "step 1", "step 2", "step 3", "step 4",
                "checkpoint 4 checkpoint-4", "step 5", "step 6", "step 7", "step 8", "checkpoint 8 checkpoint-8"),
                events);
    }

    @Test
    void closingARunningRunCancelsItAtAStepAndLeavesAResumableCheckpoint() throws Exception {
        Path out = dir.resolve("b");
        CountDownLatch firstStep = new CountDownLatch(1);
        TrainResult r;
        try (TrainingRun run = pt(out, 500).listener(new TrainingListener() {
            @Override
            public void onStep(StepEvent e) {
                firstStep.countDown();
            }
        }).build().start()) {
            assertTrue(firstStep.await(60, TimeUnit.SECONDS));
            assertTrue(run.await(Duration.ofMillis(1)).isEmpty(), "still training");
            run.close(); // cancel + wait
            assertTrue(run.isDone());
            r = run.await();
        }
        assertEquals(TrainResult.Status.CANCELLED, r.status());
        assertTrue(r.globalStep() >= 1 && r.globalStep() < 500, "stopped at " + r.globalStep());
        assertEquals(CheckpointDirs.dirFor(out, r.globalStep()), r.lastCheckpoint());
        assertTrue(CheckpointDirs.isComplete(r.lastCheckpoint()));
        TrainResult resumed = pt(out, r.globalStep() + 2).build().run(); // same output_dir: resumes
        assertEquals(r.globalStep() + 2, resumed.globalStep());
    }

    @Test
    void configErrorsAtBuildAndRunFailuresAtAwait() throws Exception {
        ConfigException bad = assertThrows(ConfigException.class,
                () -> pt(dir.resolve("c"), 2).set("per_device_train_batch_sizes", 4).build());
        assertTrue(bad.getMessage().contains("did you mean 'per_device_train_batch_size'?"), bad.getMessage());
        try (TrainingRun run = pt(dir.resolve("d"), 2).set("dataset", dir.resolve("none.jsonl").toString()).build()
                .start()) {
            TrainingFailedException e = assertThrows(TrainingFailedException.class, run::await);
            assertInstanceOf(DataException.class, e.getCause());
            assertEquals(e.getCause().getMessage(), e.getMessage());
        }
    }
}
