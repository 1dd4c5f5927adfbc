package io.sftnative.files;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OutputDirLockTest {
    @TempDir
    Path tmp;

    /** Holds the lock of args[0] in another JVM until killed. */
    public static final class Holder {
        public static void main(String[] args) throws Exception {
            try (OutputDirLock lock = OutputDirLock.acquire(Path.of(args[0]))) {
                System.out.println("locked");
                System.out.flush();
                Thread.sleep(600_000);
            }
        }
    }

    @Test
    void secondRunInTheSameJvmIsRefusedUntilTheFirstEnds() throws Exception {
        Path out = tmp.resolve("run");
        try (OutputDirLock first = OutputDirLock.acquire(out)) {
            var e = assertThrows(IllegalStateException.class, () -> OutputDirLock.acquire(out));
            assertTrue(e.getMessage().contains("pid " + ProcessHandle.current().pid()), e.getMessage());
            assertTrue(e.getMessage().contains("in use by another run"), e.getMessage());
        }
        OutputDirLock.acquire(out).close(); // released
    }

    @Test
    void anotherProcessHoldingTheLockIsNamedAndKill9ReleasesIt() throws Exception {
        Path out = tmp.resolve("run");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process holder = new ProcessBuilder(List.of(java, "-cp", System.getProperty("java.class.path"),
                Holder.class.getName(), out.toString())).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try {
            BufferedReader r = new BufferedReader(new InputStreamReader(holder.getInputStream(),
                    StandardCharsets.UTF_8));
            assertTrue("locked".equals(r.readLine()), "the holder did not take the lock");
            var e = assertThrows(IllegalStateException.class, () -> OutputDirLock.acquire(out));
            assertTrue(e.getMessage().contains("pid " + holder.pid() + " on host "), e.getMessage());
            holder.destroyForcibly(); // SIGKILL: the OS drops its lock, the stale lock file stays
            assertTrue(holder.waitFor(10, TimeUnit.SECONDS));
            OutputDirLock.acquire(out).close();
        } finally {
            holder.destroyForcibly();
        }
    }
}
