package io.sftnative.checkpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.files.AtomicFiles;
import io.sftnative.model.FiniteCheck;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.model.safetensors.SafetensorsWriter;
import io.sftnative.train.log.TrainerState;

/**
 * One {@code checkpoint-<step>} directory: everything an exact resume needs, each part in an open format.
 * <ul>
 *   <li>the weights: {@code adapter_model.safetensors} + {@code adapter_config.json} (LoRA, PEFT format) or
 *       {@code model.safetensors} + {@code config.json} (full / freeze);</li>
 *   <li>{@code optimizer.safetensors}: AdamW's {@code exp_avg}, {@code exp_avg_sq}, {@code step} per parameter;</li>
 *   <li>{@code scheduler.json}: the learning-rate schedule and the step it reached;</li>
 *   <li>{@code rng_state.json}: libtorch's generators (dropout) and the data shuffler;</li>
 *   <li>{@code training_position.json}: where in the data the run is (epoch, step in epoch) and what the data
 *       looked like (example count, batch size, accumulation, seed), so a changed dataset is detected;</li>
 *   <li>tokenizer files copied from the model, so the checkpoint is usable by {@code chat} / {@code eval};</li>
 *   <li>{@code trainer_state.json} (HF's), written last: its presence marks the checkpoint complete.</li>
 * </ul>
 * The directory is staged under a hidden name and renamed into place only when complete, so a crash at any point
 * leaves the previous checkpoints intact and never a half-written {@code checkpoint-<step>}.
 */
public final class TrainingCheckpoint {
    public static final String OPTIMIZER_FILE = "optimizer.safetensors";
    public static final String SCHEDULER_FILE = "scheduler.json";
    public static final String POSITION_FILE = "training_position.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private TrainingCheckpoint() {}

    /** Writes the model's weights (adapter or full model) into a directory. */
    public interface WeightsWriter {
        void write(Path dir) throws IOException;
    }

    /**
     * Where the run is and what it was trained on.
     *
     * @param globalStep    optimizer updates done
     * @param trainExamples training rows of the run (a resume with another count cannot continue exactly)
     * @param tokensSeen    input tokens (without padding) consumed so far
     */
    public record Position(long globalStep, long epoch, long stepInEpoch, int trainExamples, int batchSize,
            int accumulation, long seed, long tokensSeen) {}

    /**
     * The learning-rate schedule as configured and its state: empty for the schedules that are a pure function of
     * the step, reduce_lr_on_plateau's counters otherwise ({@code io.sftnative.optim.LrScheduler#state}).
     */
    public record Schedule(String type, double learningRate, long totalSteps, long warmupSteps,
            Map<String, Object> state) {
        public Schedule {
            state = state == null ? Map.of() : Map.copyOf(state);
        }

        public Schedule(String type, double learningRate, long totalSteps, long warmupSteps) {
            this(type, learningRate, totalSteps, warmupSteps, Map.of());
        }
    }

    /** What {@link #read} returns; the optimizer state is loaded with {@link #loadOptimizerState}. */
    public record Loaded(Path dir, Position position, Schedule schedule, RngState rng, TrainerState state) {}

    /**
     * Writes {@code outputDir/checkpoint-<step>} atomically (replacing one with the same step).
     *
     * @param optimizerState AdamW's {@code stateDict()} (read, not closed)
     * @param tokenizerFiles files copied into the checkpoint (may be empty)
     * @return the published checkpoint directory
     */
    public static Path save(Path outputDir, Position position, WeightsWriter weights, Map<String, Tensor> optimizerState,
            Schedule schedule, RngState rng, TrainerState state, List<Path> tokenizerFiles) throws IOException {
        Path target = CheckpointDirs.dirFor(outputDir, position.globalStep());
        Path staged = AtomicFiles.stagingDirectory(target);
        try {
            weights.write(staged);
            SafetensorsWriter.write(staged.resolve(OPTIMIZER_FILE), optimizerState, Map.of("format", "pt",
                    "content", "AdamW state: <param>.exp_avg, <param>.exp_avg_sq, <param>.step"));
            AtomicFiles.writeString(staged.resolve(SCHEDULER_FILE), JSON.writerWithDefaultPrettyPrinter()
                    .writeValueAsString(scheduleJson(schedule, position.globalStep())) + "\n");
            rng.write(staged);
            AtomicFiles.writeString(staged.resolve(POSITION_FILE), JSON.writerWithDefaultPrettyPrinter()
                    .writeValueAsString(position) + "\n");
            for (Path f : tokenizerFiles) {
                Files.copy(f, staged.resolve(f.getFileName().toString()), StandardCopyOption.REPLACE_EXISTING);
            }
            state.write(staged); // marks the checkpoint complete once published
            CheckpointManifest.write(staged); // sizes and checksums, verified on resume
            AtomicFiles.publishDirectory(staged, target);
        } catch (IOException | RuntimeException e) {
            AtomicFiles.deleteRecursively(staged);
            throw e;
        }
        return target;
    }

    /**
     * {@code save_only_model}: writes {@code outputDir/checkpoint-<step>} with the weights, tokenizer files and
     * trainer_state.json only, atomically. Such a checkpoint is usable by chat / eval / export but cannot be resumed
     * ({@link #read} says so).
     */
    public static Path saveWeightsOnly(Path outputDir, Position position, WeightsWriter weights, TrainerState state,
            List<Path> tokenizerFiles) throws IOException {
        Path target = CheckpointDirs.dirFor(outputDir, position.globalStep());
        Path staged = AtomicFiles.stagingDirectory(target);
        try {
            weights.write(staged);
            for (Path f : tokenizerFiles) {
                Files.copy(f, staged.resolve(f.getFileName().toString()), StandardCopyOption.REPLACE_EXISTING);
            }
            state.write(staged); // last: marks the checkpoint complete
            AtomicFiles.publishDirectory(staged, target);
        } catch (IOException | RuntimeException e) {
            AtomicFiles.deleteRecursively(staged);
            throw e;
        }
        return target;
    }

    /** Reads everything but the weights and the optimizer tensors from a complete checkpoint. */
    public static Loaded read(Path dir) throws IOException {
        if (!CheckpointDirs.isComplete(dir)) {
            throw new IOException(dir + " is not a complete checkpoint (no " + CheckpointDirs.STATE_FILE + ")");
        }
        CheckpointManifest.verify(dir);
        Path pos = dir.resolve(POSITION_FILE);
        Path sched = dir.resolve(SCHEDULER_FILE);
        if (!Files.isRegularFile(pos) && !Files.isRegularFile(sched) && !Files.isRegularFile(dir.resolve(
                OPTIMIZER_FILE))) {
            throw new IOException(dir + " holds weights only (saved with save_only_model: true): it has no optimizer,"
                    + " scheduler or data position to resume from. Start a new run from it (model_name_or_path or"
                    + " adapter_name_or_path), or train with save_only_model: false to get resumable checkpoints");
        }
        for (Path p : List.of(pos, sched, dir.resolve(OPTIMIZER_FILE))) {
            if (!Files.isRegularFile(p)) {
                throw new IOException(p + " is missing: " + dir + " was not written by sft-native's trainer (or was"
                        + " damaged), so it cannot be resumed exactly; resume from another checkpoint-N directory");
            }
        }
        Position position;
        Schedule schedule;
        try {
            position = JSON.readValue(pos.toFile(), Position.class);
            JsonNode s = JSON.readTree(sched.toFile());
            Map<String, Object> st = s.has("state") ? JSON.convertValue(s.get("state"),
                    new com.fasterxml.jackson.core.type.TypeReference<Map<String, Object>>() { }) : Map.of();
            schedule = new Schedule(s.path("lr_scheduler_type").asText(), s.path("learning_rate").asDouble(),
                    s.path("total_steps").asLong(), s.path("warmup_steps").asLong(), st);
        } catch (IOException e) {
            throw new IOException("cannot read the training position of " + dir + ": " + e.getMessage(), e);
        }
        TrainerState state = TrainerState.read(dir.resolve(CheckpointDirs.STATE_FILE));
        return new Loaded(dir, position, schedule, RngState.read(dir), state);
    }

    /**
     * Hands the checkpoint's optimizer tensors to {@code loader} (e.g. {@code AdamW::loadStateDict}, which copies
     * them); they are valid only during the call.
     */
    public static void loadOptimizerState(Path dir, java.util.function.Consumer<Map<String, Tensor>> loader)
            throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(OPTIMIZER_FILE));
                PointerScope scope = new PointerScope()) {
            Map<String, Tensor> state = new LinkedHashMap<>();
            for (String name : f.names()) {
                state.put(name, f.view(name));
                String bad = FiniteCheck.problem(state.get(name));
                if (bad != null) { // resuming would train on NaN moments: every later step diverges
                    throw new IOException("optimizer state '" + name + "' in " + dir.resolve(OPTIMIZER_FILE)
                            + " holds " + bad + ". " + CheckpointManifest.alternative(dir));
                }
            }
            loader.accept(state);
        }
    }

    private static Map<String, Object> scheduleJson(Schedule s, long step) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("lr_scheduler_type", s.type());
        m.put("learning_rate", s.learningRate());
        m.put("total_steps", s.totalSteps());
        m.put("warmup_steps", s.warmupSteps());
        m.put("last_step", step);
        if (!s.state().isEmpty()) {
            m.put("state", s.state());
        }
        return m;
    }
}
