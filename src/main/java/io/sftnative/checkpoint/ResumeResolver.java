package io.sftnative.checkpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * Which checkpoint a training run resumes from, as LLaMA-Factory + HF Trainer decide it:
 * <ul>
 *   <li>{@code resume_from_checkpoint: true}: the latest complete {@code checkpoint-N} of {@code output_dir}
 *       (error when there is none);</li>
 *   <li>{@code resume_from_checkpoint: <path>}: that checkpoint (error when it is missing or incomplete);</li>
 *   <li>unset (or {@code false}), training, {@code overwrite_output_dir} off and {@code output_dir} existing:
 *       LLaMA-Factory resumes from the latest checkpoint automatically; with no checkpoint but model weights in
 *       {@code output_dir} it refuses to overwrite them (set {@code overwrite_output_dir} or another
 *       {@code output_dir});</li>
 *   <li>otherwise a fresh run.</li>
 * </ul>
 */
public final class ResumeResolver {
    /** LLaMA-Factory's CHECKPOINT_NAMES: finished weights a fresh run would overwrite. */
    static final List<String> WEIGHT_FILES = List.of("adapter_model.safetensors", "adapter_model.bin",
            "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json");

    private ResumeResolver() {}

    /**
     * @param resumeFromCheckpoint the config value: null, "true"/"false" or a path (relative paths are resolved
     *                             against the working directory, as Python does)
     * @return the checkpoint directory to resume from, empty for a fresh run
     */
    public static Optional<Path> resolve(String resumeFromCheckpoint, Path outputDir, boolean overwriteOutputDir,
            boolean doTrain) throws IOException {
        String v = resumeFromCheckpoint == null ? "" : resumeFromCheckpoint.trim();
        String lower = v.toLowerCase(Locale.ROOT);
        if (lower.equals("true")) {
            return Optional.of(CheckpointDirs.latest(outputDir).orElseThrow(() -> new IllegalArgumentException(
                    "resume_from_checkpoint: true, but " + outputDir + " holds no complete checkpoint-N directory"
                            + " (with trainer_state.json); remove the key to start a fresh run")));
        }
        if (!v.isEmpty() && !lower.equals("false") && !lower.equals("none") && !lower.equals("null")) {
            Path p = Path.of(v);
            if (!Files.isDirectory(p)) {
                throw new IllegalArgumentException("resume_from_checkpoint: " + v + " is not a directory");
            }
            if (!CheckpointDirs.isComplete(p)) {
                throw new IllegalArgumentException("resume_from_checkpoint: " + v + " is not a complete checkpoint (no "
                        + CheckpointDirs.STATE_FILE + "); pick another checkpoint-N directory");
            }
            return Optional.of(p);
        }
        if (!lower.equals("false") && doTrain && !overwriteOutputDir && Files.isDirectory(outputDir)) {
            Optional<Path> latest = CheckpointDirs.latest(outputDir);
            if (latest.isPresent()) {
                return latest;
            }
            for (String name : WEIGHT_FILES) {
                if (Files.isRegularFile(outputDir.resolve(name))) {
                    throw new IllegalArgumentException("output_dir " + outputDir + " already holds trained weights ("
                            + name + ") and no checkpoint to resume: set overwrite_output_dir: true to replace them,"
                            + " or choose another output_dir");
                }
            }
        }
        return Optional.empty();
    }
}
