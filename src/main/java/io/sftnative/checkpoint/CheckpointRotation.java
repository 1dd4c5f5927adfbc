package io.sftnative.checkpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

import io.sftnative.files.AtomicFiles;
import io.sftnative.files.RealPaths;

/**
 * {@code save_total_limit}: after a checkpoint is written, delete the oldest {@code checkpoint-<step>} directories
 * so that at most {@code limit} remain, never deleting the one just written nor the best one (with
 * {@code limit = 1} and a best checkpoint that is not the latest, both stay: HF's rule). Same choice as HF's
 * {@code _rotate_checkpoints} otherwise.
 *
 * <p>A deleted checkpoint is first renamed to a hidden {@code .checkpoint-<step>.deleting-*} directory, so a crash
 * mid-delete never leaves a half-deleted checkpoint that resume would pick.
 */
public final class CheckpointRotation {
    private CheckpointRotation() {}

    /**
     * @param limit       {@code save_total_limit}; {@code <= 0} keeps everything
     * @param justWritten the checkpoint saved now (kept)
     * @param best        the best checkpoint so far (kept), or null
     * @return the checkpoints deleted, oldest first
     */
    public static List<Path> rotate(Path outputDir, int limit, Path justWritten, Path best) throws IOException {
        List<Path> all = CheckpointDirs.list(outputDir);
        if (limit <= 0 || all.size() <= limit) {
            return List.of();
        }
        List<Path> candidates = new ArrayList<>();
        int protectedCount = 0;
        for (Path p : all) {
            if (same(p, justWritten) || same(p, best)) {
                protectedCount++;
            } else {
                candidates.add(p);
            }
        }
        int toDelete = Math.max(0, all.size() - Math.max(limit, protectedCount));
        List<Path> deleted = new ArrayList<>();
        for (Path p : candidates.subList(0, Math.min(toDelete, candidates.size()))) {
            Path trash = p.resolveSibling("." + p.getFileName() + ".deleting-" + UUID.randomUUID());
            try {
                Files.move(p, trash, StandardCopyOption.ATOMIC_MOVE);
                AtomicFiles.deleteRecursively(trash);
            } catch (IOException e) {
                throw new IOException("could not delete old checkpoint " + p + " (save_total_limit=" + limit + "): "
                        + e.getMessage() + "; free the disk space by hand or raise save_total_limit", e);
            }
            deleted.add(p);
        }
        return deleted;
    }

    private static boolean same(Path a, Path b) {
        return RealPaths.same(a, b);
    }
}
