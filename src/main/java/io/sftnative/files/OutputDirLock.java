package io.sftnative.files;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;

/**
 * One run per output directory: an OS file lock ({@link FileChannel#tryLock}) on {@code output_dir/.sft-native.lock}
 * held for the whole run. Two runs on one output_dir used to resume from each other's checkpoints, delete each
 * other's staging directories as "leftovers" and interleave their logs; now the second stops at once, naming the
 * pid and host written into the lock file by the holder. The OS releases the lock when the holder dies, even by
 * kill -9, so a stale lock file never blocks a later run (the file itself stays; only the lock counts).
 *
 * <p>Within one JVM the lock is per process, so a second run in the same JVM (library API) is refused the same way
 * ({@link OverlappingFileLockException}). On network file systems without lock support, tryLock fails with an
 * IOException, which is reported as such rather than ignored.
 */
public final class OutputDirLock implements AutoCloseable {
    public static final String FILE = ".sft-native.lock";

    private final FileChannel channel;
    private final FileLock lock;
    private final Path createdDir; // output_dir when this lock created it, else null

    private OutputDirLock(FileChannel channel, FileLock lock, Path createdDir) {
        this.channel = channel;
        this.lock = lock;
        this.createdDir = createdDir;
    }

    /**
     * Takes the lock of {@code outputDir} (created when missing) or fails with a message naming the holder.
     *
     * @throws IllegalStateException when another run holds it
     */
    public static OutputDirLock acquire(Path outputDir) throws IOException {
        Path created = Files.isDirectory(outputDir) ? null : outputDir;
        Files.createDirectories(outputDir);
        Path file = outputDir.resolve(FILE);
        FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE);
        FileLock lock;
        try {
            lock = ch.tryLock();
        } catch (OverlappingFileLockException e) {
            lock = null;
        } catch (IOException e) {
            ch.close();
            throw new IOException("cannot lock " + file + " (" + e.getMessage() + "); the file system may not"
                    + " support locks: use a local output_dir", e);
        }
        if (lock == null) {
            String holder = holder(ch);
            ch.close();
            throw new IllegalStateException("output_dir " + outputDir + " is in use by another run (" + holder
                    + ", lock file " + file + "): two runs on one output_dir would resume from and overwrite each"
                    + " other's checkpoints. Wait for it to end, stop it, or choose another output_dir");
        }
        try {
            byte[] me = ("pid " + ProcessHandle.current().pid() + " on host " + hostName() + ", since "
                    + Instant.now() + "\n").getBytes(StandardCharsets.UTF_8);
            ch.truncate(0);
            ch.write(ByteBuffer.wrap(me), 0);
            ch.force(false);
        } catch (IOException e) {
            lock.release();
            ch.close();
            throw new IOException("cannot write the lock file " + file + ": " + e.getMessage(), e);
        }
        return new OutputDirLock(ch, lock, created);
    }

    private static String holder(FileChannel ch) {
        try {
            ByteBuffer b = ByteBuffer.allocate(512);
            int n = ch.read(b, 0);
            String s = n <= 0 ? "" : new String(b.array(), 0, n, StandardCharsets.UTF_8).strip();
            return s.isEmpty() ? "holder unknown: it has not written its pid yet" : s;
        } catch (IOException e) {
            return "holder unknown: " + e.getMessage();
        }
    }

    /** The kernel's host name where there is one (no DNS lookup, which can stall), else the JDK's. */
    private static String hostName() {
        try {
            Path kernel = Path.of("/proc/sys/kernel/hostname");
            if (Files.isReadable(kernel)) {
                return Files.readString(kernel).strip();
            }
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            String h = System.getenv("HOSTNAME");
            return h == null ? "unknown" : h;
        }
    }

    /**
     * Releases the lock. A run that failed before writing anything (a missing GPU, bad data) leaves no trace: when
     * this lock created output_dir and it holds nothing but the lock file, both are removed.
     */
    @Override
    public void close() throws IOException {
        try {
            if (createdDir != null && onlyTheLockFile(createdDir)) {
                Files.deleteIfExists(createdDir.resolve(FILE));
                Files.deleteIfExists(createdDir);
            }
        } catch (IOException e) {
            // an empty output_dir left behind is harmless
        } finally {
            try {
                lock.release();
            } finally {
                channel.close();
            }
        }
    }

    private static boolean onlyTheLockFile(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return s.allMatch(p -> p.getFileName().toString().equals(FILE));
        }
    }
}
