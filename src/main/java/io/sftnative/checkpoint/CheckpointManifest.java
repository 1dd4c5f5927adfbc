package io.sftnative.checkpoint;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.TreeMap;
import java.util.stream.Stream;
import java.util.zip.CRC32C;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.files.AtomicFiles;

/**
 * {@code checkpoint_manifest.json}: the size and CRC-32C of every file of a checkpoint, written when the checkpoint
 * is staged and verified before a resume reads it. A truncated or silently corrupted optimizer or adapter file is
 * then caught by name, with the previous complete checkpoint to resume from instead, rather than read as garbage.
 * CRC-32C (JDK {@link CRC32C}, hardware-accelerated) detects accidental damage at memory speed; it is not meant to
 * resist tampering. A checkpoint without a manifest (written before it existed) is read unverified.
 */
public final class CheckpointManifest {
    public static final String FILE = "checkpoint_manifest.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private CheckpointManifest() {}

    /** Records every regular file of {@code dir} (but the manifest itself). */
    public static void write(Path dir) throws IOException {
        Map<String, Object> files = new TreeMap<>();
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.filter(Files::isRegularFile).sorted().toList()) {
                String name = p.getFileName().toString();
                if (!name.equals(FILE)) {
                    files.put(name, Map.of("bytes", Files.size(p), "crc32c", crc(p)));
                }
            }
        }
        AtomicFiles.writeString(dir.resolve(FILE), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(
                Map.of("algorithm", "CRC-32C", "files", files)) + "\n");
    }

    /**
     * Checks every file the manifest lists.
     *
     * @throws IOException naming the damaged file and the checkpoint to resume from instead
     */
    public static void verify(Path dir) throws IOException {
        Path manifest = dir.resolve(FILE);
        if (!Files.isRegularFile(manifest)) {
            return;
        }
        JsonNode files;
        try {
            files = JSON.readTree(manifest.toFile()).path("files");
        } catch (IOException e) {
            throw damaged(dir, FILE + " is not valid JSON (" + e.getMessage() + ")");
        }
        for (var e : files.properties()) {
            Path p = dir.resolve(e.getKey());
            long bytes = e.getValue().path("bytes").asLong(-1);
            String crc = e.getValue().path("crc32c").asText();
            if (!Files.isRegularFile(p)) {
                throw damaged(dir, e.getKey() + " is missing");
            }
            long size = Files.size(p);
            if (size != bytes) {
                throw damaged(dir, e.getKey() + " has " + size + " bytes, " + bytes + " were written"
                        + (size < bytes ? " (truncated)" : ""));
            }
            String actual = crc(p);
            if (!actual.equals(crc)) {
                throw damaged(dir, e.getKey() + " has checksum " + actual + ", " + crc + " was written (its bytes"
                        + " changed on disk)");
            }
        }
    }

    private static IOException damaged(Path dir, String what) throws IOException {
        return new IOException("checkpoint " + dir + " is damaged: " + what + ". " + alternative(dir));
    }

    /** "resume from checkpoint-M instead" naming the newest complete checkpoint before {@code dir}. */
    static String alternative(Path dir) throws IOException {
        OptionalLong step = CheckpointDirs.step(dir);
        Path parent = dir.toAbsolutePath().getParent();
        Path previous = null;
        if (step.isPresent() && parent != null) {
            List<Path> all = CheckpointDirs.list(parent);
            for (Path p : all) {
                if (CheckpointDirs.step(p).getAsLong() < step.getAsLong() && CheckpointDirs.isComplete(p)) {
                    previous = p;
                }
            }
        }
        return previous == null ? "There is no earlier complete checkpoint: start a fresh run (overwrite_output_dir:"
                + " true, or another output_dir)"
                : "Resume from " + previous.getFileName() + " instead (resume_from_checkpoint: " + previous
                        + "), or delete " + dir.getFileName();
    }

    private static String crc(Path p) throws IOException {
        CRC32C c = new CRC32C();
        byte[] buf = new byte[1 << 20];
        try (InputStream in = Files.newInputStream(p)) {
            int n;
            while ((n = in.read(buf)) > 0) {
                c.update(buf, 0, n);
            }
        }
        return String.format("%08x", c.getValue());
    }
}
