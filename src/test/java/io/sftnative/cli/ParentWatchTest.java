package io.sftnative.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** kill -9 of the launcher JVM: its relaunched child must not go on running. */
class ParentWatchTest {
    @TempDir
    Path tmp;

    /** The launcher: relaunches {@link Sleeper} exactly as Main relaunches itself. */
    public static final class Launcher {
        public static void main(String[] args) {
            System.exit(Relauncher.relaunch(Sleeper.class, args));
        }
    }

    /** The child: starts the watch as Main does, writes its pid, then waits far longer than the test. */
    public static final class Sleeper {
        public static void main(String[] args) throws Exception {
            ParentWatch.startIfChild();
            Files.writeString(Path.of(args[0] + ".tmp"), String.valueOf(ProcessHandle.current().pid()));
            Files.move(Path.of(args[0] + ".tmp"), Path.of(args[0]));
            Thread.sleep(600_000);
        }
    }

    @Test
    void childDiesWhenTheLauncherIsKilledWithSigkill() throws Exception {
        Path pidFile = tmp.resolve("child.pid");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(List.of(java, "-cp", System.getProperty("java.class.path"),
                Launcher.class.getName(), pidFile.toString())).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.DISCARD);
        pb.environment().remove(Relauncher.MARKER);
        pb.environment().remove("SFT_NATIVE_NO_RELAUNCH");
        pb.environment().remove("OMP_WAIT_POLICY");
        pb.environment().remove(ParentWatch.PARENT_PID);
        Process launcher = pb.start();
        Optional<ProcessHandle> child = Optional.empty();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!Files.exists(pidFile) && System.nanoTime() < deadline && launcher.isAlive()) {
                Thread.sleep(50);
            }
            assertTrue(Files.exists(pidFile), "the child did not start");
            child = ProcessHandle.of(Long.parseLong(Files.readString(pidFile).strip()));
            assertTrue(child.isPresent() && child.get().isAlive());
            assertEquals(launcher.pid(), child.get().parent().map(ProcessHandle::pid).orElse(-1L),
                    "the sleeper must be the launcher's own child");
            launcher.destroyForcibly(); // SIGKILL to the launcher JVM itself: no shutdown hook runs in it
            assertTrue(launcher.waitFor(10, TimeUnit.SECONDS));
            assertEquals(137, launcher.exitValue());
            boolean gone = child.get().onExit().completeOnTimeout(null, 15, TimeUnit.SECONDS).get() != null
                    || !child.get().isAlive();
            assertTrue(gone, "the child JVM outlived its launcher by 15 s");
            assertFalse(child.get().isAlive());
        } finally {
            launcher.destroyForcibly();
            child.ifPresent(ProcessHandle::destroyForcibly);
        }
    }
}
