package io.sftnative.files;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * Writes files and directories so that a crash at any point leaves either the old content or the new one, never a
 * partial file: write to a temporary sibling, fsync, then rename over the target.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    /** Writes what {@code body} produces. */
    public interface Body {
        void writeTo(OutputStream out) throws IOException;
    }

    public static void write(Path target, Body body) throws IOException {
        Path dir = target.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = dir.resolve("." + target.getFileName() + ".tmp-" + UUID.randomUUID());
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
                    OutputStream out = java.nio.channels.Channels.newOutputStream(ch)) {
                OutputStream buffered = new java.io.BufferedOutputStream(out, 1 << 20) {
                    @Override
                    public void close() throws IOException {
                        flush(); // the channel is closed (and synced) below, not by the wrapper
                    }
                };
                body.writeTo(buffered);
                buffered.flush(); // a body that neither flushes nor closes must not leave its bytes in the buffer
                out.flush();
                ch.force(true);
            }
            move(tmp, target);
        } catch (IOException e) {
            throw named(target, e);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /**
     * The JDK's "No space left on device" names no file: say which one, that its previous version is intact, and
     * what to do.
     */
    static IOException named(Path target, IOException e) {
        String msg = String.valueOf(e.getMessage());
        boolean full = msg.contains("No space left") || msg.contains("Disk quota exceeded");
        if (!full || msg.contains(target.getFileName().toString())) {
            return e; // other errors keep their type (NoSuchFileException, ...) and message
        }
        return new IOException("cannot write " + target + ": " + msg + " (the disk is full; the file's previous"
                + " version, if any, is intact: free space on that disk, or point output_dir / SFT_CACHE_DIR to"
                + " another one, and run again)", e);
    }

    public static void writeBytes(Path target, byte[] bytes) throws IOException {
        write(target, out -> out.write(bytes));
    }

    public static void writeString(Path target, String text) throws IOException {
        writeBytes(target, text.getBytes(StandardCharsets.UTF_8));
    }

    /**
     * Publishes a fully written directory {@code staged} as {@code target}: an existing target is first moved
     * aside and deleted only after the new one is in place.
     */
    public static void publishDirectory(Path staged, Path target) throws IOException {
        Path old = null;
        if (Files.exists(target)) {
            old = target.resolveSibling("." + target.getFileName() + ".old-" + UUID.randomUUID());
            move(target, old);
        }
        move(staged, target);
        if (old != null) {
            deleteRecursively(old);
        }
    }

    /** A fresh temporary directory next to {@code target}, for {@link #publishDirectory}. */
    public static Path stagingDirectory(Path target) throws IOException {
        Path parent = target.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        return Files.createDirectory(parent.resolve("." + target.getFileName() + ".tmp-" + UUID.randomUUID()));
    }

    public static void deleteRecursively(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(q);
            }
        }
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
