package io.sftnative.checkpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The {@code checkpoint-<step>} directories of an output directory (HF's naming). A checkpoint counts as complete
 * when it holds {@code trainer_state.json}: checkpoints are staged in hidden directories and published whole, so an
 * incomplete one only appears if something outside the trainer interfered.
 */
public final class CheckpointDirs {
    public static final String PREFIX = "checkpoint-";
    /** Written last into every checkpoint; HF's name. */
    public static final String STATE_FILE = "trainer_state.json";
    private static final Pattern NAME = Pattern.compile("^" + PREFIX + "(\\d+)$");

    private CheckpointDirs() {}

    /** {@code outputDir/checkpoint-<step>}. */
    public static Path dirFor(Path outputDir, long step) {
        return outputDir.resolve(PREFIX + step);
    }

    /** The step of a {@code checkpoint-<step>} path, empty for any other name. */
    public static OptionalLong step(Path dir) {
        Path name = dir.getFileName();
        Matcher m = name == null ? null : NAME.matcher(name.toString());
        if (m == null || !m.matches()) {
            return OptionalLong.empty();
        }
        try {
            return OptionalLong.of(Long.parseLong(m.group(1)));
        } catch (NumberFormatException e) {
            return OptionalLong.empty(); // more digits than a long
        }
    }

    /** Every {@code checkpoint-<step>} directory of {@code outputDir}, oldest (smallest step) first. */
    public static List<Path> list(Path outputDir) throws IOException {
        if (!Files.isDirectory(outputDir)) {
            return List.of();
        }
        List<Path> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(outputDir)) {
            s.filter(Files::isDirectory).filter(p -> step(p).isPresent()).forEach(out::add);
        }
        out.sort(Comparator.comparingLong(p -> step(p).getAsLong()));
        return out;
    }

    /** True when {@code dir} holds a complete checkpoint. */
    public static boolean isComplete(Path dir) {
        return Files.isRegularFile(dir.resolve(STATE_FILE));
    }

    /**
     * HF's {@code get_last_checkpoint}: the complete checkpoint with the largest step, if any (an incomplete one
     * with a larger step is passed over).
     */
    public static Optional<Path> latest(Path outputDir) throws IOException {
        List<Path> all = list(outputDir);
        for (int i = all.size() - 1; i >= 0; i--) {
            if (isComplete(all.get(i))) {
                return Optional.of(all.get(i));
            }
        }
        return Optional.empty();
    }
}
