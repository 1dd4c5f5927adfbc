package io.sftnative.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import java.util.Map;
import java.util.regex.Pattern;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import io.sftnative.checkpoint.CheckpointDirs;
import io.sftnative.checkpoint.CheckpointRotation;
import io.sftnative.checkpoint.ResumableRandom;
import io.sftnative.checkpoint.RngState;
import io.sftnative.checkpoint.TrainingCheckpoint;
import io.sftnative.distributed.ShardedAdamW;
import io.sftnative.distributed.ZeroCheckpoint;
import io.sftnative.files.AtomicFiles;
import io.sftnative.model.FiniteCheck;
import io.sftnative.optim.Optimizer;
import io.sftnative.train.log.TrainerState;

/**
 * Saves {@code checkpoint-<step>} directories for a run ({@link TrainingCheckpoint}, atomic) and keeps at most
 * {@code save_total_limit} of them ({@link CheckpointRotation}).
 */
final class Checkpointer {
    /** Tokenizer files copied next to weights so a checkpoint or output_dir is usable on its own. */
    static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
            "generation_config.json", "chat_template.jinja");

    private final Path outputDir;
    private final int saveTotalLimit;
    private final TrainableModel model;
    private final Optimizer optimizer;
    private final Supplier<TrainingCheckpoint.Schedule> schedule; // its state as of the save
    private final boolean saveOnlyModel;
    private final List<Path> tokenizerFiles;
    private final boolean writes;
    private Supplier<List<byte[]>> rankRandomStates; // data parallel: every rank's generator, gathered on each
    private Supplier<? extends AutoCloseable> wholeWeights = () -> null; // ZeRO-3: gathers the weights for a save
    private Path last;

    /**
     * @param schedule      the learning-rate schedule with its state at the time of each save
     * @param saveOnlyModel save_only_model: checkpoints hold the weights and trainer_state.json only
     * @param writes        false on data-parallel ranks other than 0: they only track where rank 0 saved
     */
    Checkpointer(Path outputDir, int saveTotalLimit, TrainableModel model, Optimizer optimizer,
            Supplier<TrainingCheckpoint.Schedule> schedule, boolean saveOnlyModel, Path tokenizerDir,
            boolean writes) {
        this.writes = writes;
        this.outputDir = outputDir;
        this.saveTotalLimit = saveTotalLimit;
        this.model = model;
        this.optimizer = optimizer;
        this.schedule = schedule;
        this.saveOnlyModel = saveOnlyModel;
        this.tokenizerFiles = tokenizerFiles(tokenizerDir);
    }

    /** The tokenizer files present in {@code dir} (none when dir is null). */
    static List<Path> tokenizerFiles(Path dir) {
        List<Path> out = new ArrayList<>();
        if (dir != null) {
            for (String name : TOKENIZER_FILES) {
                Path p = dir.resolve(name);
                if (Files.isRegularFile(p)) {
                    out.add(p);
                }
            }
        }
        return out;
    }

    /**
     * Deletes what an interrupted earlier run can leave in {@code outputDir}: hidden staging directories of
     * checkpoints it was writing, half-deleted rotated checkpoints and temporary files of atomic writes (all named
     * {@code .<name>.tmp-<uuid>}, {@code .old-<uuid>} or {@code .deleting-<uuid>}). Complete checkpoints are kept.
     */
    static List<Path> cleanInterrupted(Path outputDir) throws IOException {
        List<Path> removed = new ArrayList<>();
        if (!Files.isDirectory(outputDir)) {
            return removed;
        }
        try (var s = Files.list(outputDir)) {
            for (Path p : s.toList()) {
                if (LEFTOVER.matcher(p.getFileName().toString()).matches()) {
                    AtomicFiles.deleteRecursively(p);
                    removed.add(p);
                }
            }
        }
        return removed;
    }

    private static final Pattern LEFTOVER = Pattern.compile(
            "^\\..+\\.(tmp|old|deleting)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$");

    /**
     * Writes the checkpoint of {@code position} and rotates old ones, keeping the best one; returns its directory.
     *
     * @param best the run's best-checkpoint bookkeeping (told about this checkpoint first), or null
     */
    Path save(TrainingCheckpoint.Position position, TrainerState state, long seed, BestModel best)
            throws IOException {
        try (AutoCloseable whole = wholeWeights.get()) { // every rank
            return saveWhole(position, state, seed, best);
        } catch (IOException | RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private Path saveWhole(TrainingCheckpoint.Position position, TrainerState state, long seed, BestModel best)
            throws IOException {
        requireFinite(position.globalStep()); // every rank: a non-finite replica must not go unnoticed
        List<byte[]> ranks = rankRandomStates != null && !saveOnlyModel ? rankRandomStates.get() : null; // every rank
        ShardedAdamW zero = optimizer instanceof ShardedAdamW z && !saveOnlyModel ? z : null;
        if (zero != null) { // every rank stages its optimizer slice; rank 0 moves them into the checkpoint
            ZeroCheckpoint.stage(outputDir, position.globalStep(), zero);
        }
        if (!writes) {
            last = CheckpointDirs.dirFor(outputDir, position.globalStep());
            if (best != null) {
                best.onCheckpoint(position.globalStep(), last);
            }
            return last;
        }
        Path dir;
        try (PointerScope scope = new PointerScope()) {
            if (saveOnlyModel) {
                dir = TrainingCheckpoint.saveWeightsOnly(outputDir, position, model::saveWeights, state,
                        tokenizerFiles);
            } else {
                TrainingCheckpoint.WeightsWriter weights = zero == null ? model::saveWeights : staged -> {
                    model.saveWeights(staged);
                    ZeroCheckpoint.collect(outputDir, position.globalStep(), zero.partition().worldSize(), staged);
                };
                dir = TrainingCheckpoint.save(outputDir, position, weights, zero == null ? optimizer.stateDict()
                        : ZeroCheckpoint.marker(zero.partition().worldSize()),
                        schedule.get(), withRanks(RngState.capture(ResumableRandom.seeded(seed),
                                model.model().device()), ranks), state,
                        tokenizerFiles);
            }
        }
        last = dir;
        if (best != null) {
            best.onCheckpoint(position.globalStep(), dir);
        }
        CheckpointRotation.rotate(outputDir, saveTotalLimit, dir, best == null ? null : best.bestCheckpoint());
        return dir;
    }

    /**
     * Data parallel: {@code gather} (called on every rank at each save) returns every rank's CPU generator state,
     * stored in the checkpoint so that each rank's dropout stream resumes exactly.
     */
    void gatherRandomStates(Supplier<List<byte[]>> gather) {
        rankRandomStates = gather;
    }

    /**
     * ZeRO-3: {@code gather} (called on every rank at each save) makes the weights whole until the returned scope
     * closes, so the checkpoint's HF weights are written complete (by rank 0) and checked on every rank.
     */
    void wholeWeights(Supplier<? extends AutoCloseable> gather) {
        wholeWeights = gather;
    }

    private static RngState withRanks(RngState rng, List<byte[]> ranks) {
        return ranks == null ? rng : rng.withRanks(ranks);
    }

    /**
     * A checkpoint is never written with NaN/Inf weights or optimizer moments, so {@link #last()} is always one
     * that training can resume from ("training diverged" names it); a finite loss can still leave an overflowed
     * parameter behind, which this catches at the save.
     */
    private void requireFinite(long step) {
        try (PointerScope scope = new PointerScope()) { // frees the state-dict handles
            requireFinite(step, List.of(model.trainable(), optimizer.stateDict()));
        }
    }

    private void requireFinite(long step, List<Map<String, Tensor>> groups) {
        for (Map<String, Tensor> group : groups) {
            for (Map.Entry<String, Tensor> e : group.entrySet()) {
                String bad = FiniteCheck.problem(e.getValue());
                if (bad != null) {
                    throw new TrainingDivergedException("training diverged by step " + step + ": '" + e.getKey()
                            + "' holds " + bad + "; checkpoint-" + step + " was not written. "
                            + (last == null ? "No checkpoint had been saved yet" : "The last good checkpoint is "
                                    + last) + ". Lower learning_rate, add warmup (warmup_ratio) or keep max_grad_norm"
                            + " > 0, then resume" + (last == null ? " from the start"
                                    : " with resume_from_checkpoint: " + last) + ".", step);
                }
            }
        }
    }

    /** Copies the tokenizer files into {@code dir} (the final output directory). */
    void copyTokenizer(Path dir) throws IOException {
        for (Path f : tokenizerFiles) {
            byte[] bytes = Files.readAllBytes(f);
            AtomicFiles.writeBytes(dir.resolve(f.getFileName().toString()), bytes);
        }
    }

    Path last() {
        return last;
    }

    void setLast(Path dir) {
        last = dir;
    }
}
