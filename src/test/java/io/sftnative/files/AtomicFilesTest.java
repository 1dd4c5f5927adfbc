package io.sftnative.files;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AtomicFilesTest {
    @TempDir
    Path dir;

    @Test
    void smallWritesReachTheFile() throws Exception {
        Path f = dir.resolve("a.json");
        AtomicFiles.writeString(f, "{}"); // smaller than the write buffer: must still be flushed
        assertEquals("{}", Files.readString(f));
        byte[] big = new byte[(1 << 20) + 123];
        big[big.length - 1] = 7;
        AtomicFiles.writeBytes(f, big);
        assertArrayEquals(big, Files.readAllBytes(f));
    }

    @Test
    void failedWriteKeepsTheOldFile() throws Exception {
        Path f = dir.resolve("b.txt");
        AtomicFiles.writeString(f, "old");
        assertThrows(IOException.class, () -> AtomicFiles.write(f, out -> {
            out.write("partial".getBytes());
            throw new IOException("disk full");
        }));
        assertEquals("old", Files.readString(f));
        try (var s = Files.list(dir)) {
            assertEquals(1, s.count(), "no temporary file left behind");
        }
    }
}
