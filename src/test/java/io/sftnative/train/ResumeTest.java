package io.sftnative.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.api.CheckpointEvent;
import io.sftnative.api.SftTrainer;
import io.sftnative.api.StepEvent;
import io.sftnative.api.TrainResult;
import io.sftnative.api.TrainingListener;
import io.sftnative.api.TrainingRun;
import io.sftnative.checkpoint.CheckpointDirs;
import io.sftnative.testing.TempDatasetCache;

/**
 * Exact resume: a run stopped at any point (cancelled through the API, or killed with SIGKILL in a child JVM) and
 * resumed from its latest checkpoint produces bit-for-bit the per-step losses of an uninterrupted run (CPU, same
 * thread count). LoRA dropout is on in the in-process case, so the restored libtorch generator is exercised too.
 */
@ExtendWith(TempDatasetCache.class)
class ResumeTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/train");

    @TempDir
    Path dir;

    /** LoRA SFT (dropout 0.1, new adapters) on the golden tiny model and its padded, prompt-masked rows. */
    static SftTrainer.Builder loraRun(Path out) {
        return SftTrainer.builder()
                .set("model_name_or_path", GOLDEN.resolve("sft_lora/model").toString())
                .set("dataset", GOLDEN.resolve("sft_lora/train.jsonl").toString())
                .set("stage", "sft").set("finetuning_type", "lora").set("lora_rank", 4).set("lora_dropout", 0.1)
                .set("lora_target", "all").set("cutoff_len", 64).set("per_device_train_batch_size", 3)
                .set("gradient_accumulation_steps", 2).set("learning_rate", 1e-2).set("num_train_epochs", 3)
                .set("lr_scheduler_type", "cosine").set("warmup_steps", 2).set("weight_decay", 0.01)
                .set("logging_steps", 1).set("save_steps", 3).set("seed", 5).set("preprocessing_num_workers", 1)
                .set("output_dir", out.toString());
    }

    static List<Double> collect(SftTrainer.Builder b, int cancelAtStep, List<TrainResult> result) throws Exception {
        List<Double> losses = new ArrayList<>();
        TrainingRun[] handle = new TrainingRun[1];
        b.listener(new TrainingListener() {
            @Override
            public void onStep(StepEvent e) {
                losses.add(e.loss());
                if (e.step() == cancelAtStep) {
                    handle[0].cancel();
                }
            }
        });
        SftTrainer trainer = b.build();
        try (TrainingRun run = trainer.start()) {
            handle[0] = run;
            result.add(run.await());
        }
        return losses;
    }

    @Test
    void cancelledThroughTheApiAndResumedGivesIdenticalLosses() throws Exception {
        List<TrainResult> r = new ArrayList<>();
        List<Double> uninterrupted = collect(loraRun(dir.resolve("a")), -1, r);
        assertEquals(12, uninterrupted.size());
        assertEquals(TrainResult.Status.COMPLETED, r.get(0).status());

        Path out = dir.resolve("b");
        List<Double> first = collect(loraRun(out), 5, r);
        TrainResult cancelled = r.get(1);
        assertEquals(TrainResult.Status.CANCELLED, cancelled.status());
        assertEquals(5, cancelled.globalStep());
        assertEquals(out.resolve("checkpoint-5"), cancelled.lastCheckpoint());
        assertTrue(CheckpointDirs.isComplete(out.resolve("checkpoint-5")));
        assertFalse(Files.exists(out.resolve("adapter_model.safetensors")), "a cancelled run publishes no result");

        List<Double> rest = collect(loraRun(out), -1, r); // same output_dir: resumes the latest checkpoint
        assertEquals(TrainResult.Status.COMPLETED, r.get(2).status());
        List<Double> resumed = new ArrayList<>(first);
        resumed.addAll(rest);
        assertEquals(uninterrupted, resumed, "per-step losses must be bit-for-bit equal");
        assertEquals(lossesOf(dir.resolve("a")), lossesOf(out), "trainer_log.jsonl: every step once, same values");
    }

    /** The per-step losses logged in {@code out/trainer_log.jsonl} (logging_steps 1), in order. */
    static List<Double> lossesOf(Path out) throws IOException {
        List<Double> losses = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        long expectedStep = 1;
        for (String line : Files.readAllLines(out.resolve("trainer_log.jsonl"))) {
            JsonNode n = json.readTree(line);
            if (n.has("loss")) {
                assertEquals(expectedStep++, n.get("current_steps").asLong(), line);
                losses.add(n.get("loss").asDouble());
            }
        }
        return losses;
    }

    /** Full-parameter pt from scratch (a 0.3M-parameter model) for 80 steps, a checkpoint every 10. */
    static List<String> ptArgs(Path model, Path out) {
        return List.of("model_name_or_path=" + model, "train_from_scratch=true",
                "dataset=" + GOLDEN.resolve("pt_full/train.jsonl"), "stage=pt", "finetuning_type=full",
                "cutoff_len=32", "per_device_train_batch_size=2", "gradient_accumulation_steps=1",
                "learning_rate=2e-3", "max_steps=80", "lr_scheduler_type=linear", "warmup_ratio=0.1",
                "weight_decay=0.1", "logging_steps=1", "save_steps=10", "save_total_limit=3", "seed=3",
                "preprocessing_num_workers=1", "output_dir=" + out);
    }

    static Path scratchModel(Path root) throws IOException {
        Path model = root.resolve("scratch_model");
        Files.createDirectories(model);
        String cfg = Files.readString(GOLDEN.resolve("pt_full/model/config.json"))
                .replace("\"hidden_size\": 32", "\"hidden_size\": 96")
                .replace("\"intermediate_size\": 64", "\"intermediate_size\": 256");
        Files.writeString(model.resolve("config.json"), cfg);
        return model;
    }

    @Test
    void killedWithSigkillAtARandomPointAndResumedGivesIdenticalLosses() throws Exception {
        Path model = scratchModel(dir);
        Path reference = dir.resolve("uninterrupted");
        SftTrainer.builder().overrides(ptArgs(model, reference)).build().run();
        List<Double> expected = lossesOf(reference);
        assertEquals(80, expected.size());

        Random random = new Random();
        long killAfter = 10L * (1 + random.nextInt(4)); // after checkpoint-10, -20, -30 or -40 exists
        long extraDelayMs = random.nextInt(60);
        Path out = dir.resolve("killed");
        Process child = childTrain(ptArgs(model, out), dir.resolve("child.log"));
        try {
            Path marker = out.resolve("checkpoint-" + killAfter).resolve("trainer_state.json");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (!Files.exists(marker)) {
                assertTrue(child.isAlive(), "the child ended before checkpoint-" + killAfter + ": "
                        + Files.readString(dir.resolve("child.log")));
                assertTrue(System.nanoTime() < deadline, "no checkpoint-" + killAfter + " after 120 s");
                Thread.sleep(2);
            }
            Thread.sleep(extraDelayMs);
            child.destroyForcibly(); // SIGKILL: no shutdown hook, no final save
            child.waitFor();
        } finally {
            child.destroyForcibly();
        }
        assertFalse(Files.exists(out.resolve("train_results.json")), "the child must have been killed mid-run");
        Path latest = CheckpointDirs.latest(out).orElseThrow();
        long resumedFrom = CheckpointDirs.step(latest).getAsLong();
        System.out.printf("killed after checkpoint-%d + %d ms; resuming from %s%n", killAfter, extraDelayMs,
                latest.getFileName());

        List<CheckpointEvent> saved = new ArrayList<>();
        TrainResult r = SftTrainer.builder().overrides(ptArgs(model, out)).listener(new TrainingListener() {
            @Override
            public void onCheckpoint(CheckpointEvent e) {
                saved.add(e);
            }
        }).build().run();
        assertEquals(TrainResult.Status.COMPLETED, r.status());
        assertNotNull(saved.isEmpty() ? null : saved.get(0));
        assertTrue(saved.get(0).step() > resumedFrom);
        assertEquals(expected, lossesOf(out), "per-step losses after kill -9 and resume must equal the"
                + " uninterrupted run's (resumed from step " + resumedFrom + ")");
        assertTrue(CheckpointDirs.list(out).size() <= 3, "save_total_limit 3: " + CheckpointDirs.list(out));
        try (var s = Files.list(out)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith(".checkpoint-")),
                    "staging directories of the killed run are not left behind after a successful save");
        }
    }

    /** {@code sft-native train key=value...} in a child JVM (the CLI, as a user runs it). */
    static Process childTrain(List<String> args, Path log) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow", "-Dai.djl.offline=true",
                "-Dsft.cache.dir=" + System.getProperty("sft.cache.dir"), "-cp",
                System.getProperty("java.class.path"), "io.sftnative.cli.Main", "train"));
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("SFT_NATIVE_NO_RELAUNCH", "1");
        pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
        return pb.start();
    }
}
