package io.sftnative.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import io.sftnative.checkpoint.CheckpointDirs;
import io.sftnative.testing.TempDatasetCache;

/** What happens when a rank dies, or the ranks were started with different configs. */
@ExtendWith(TempDatasetCache.class)
class DistributedFaultsTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/train");

    @TempDir
    Path dir;

    static List<String> ptArgs(Path out) {
        return new ArrayList<>(List.of("model_name_or_path=" + GOLDEN.resolve("pt_full/model"),
                "dataset=" + GOLDEN.resolve("pt_full/train.jsonl"), "stage=pt", "finetuning_type=full",
                "cutoff_len=32", "per_device_train_batch_size=2", "learning_rate=1e-3", "max_steps=100000",
                "logging_steps=1", "save_steps=3", "seed=3", "preprocessing_num_workers=1", "plot_loss=false",
                "output_dir=" + out));
    }

    /**
     * DDP, and ZeRO stage 3 (where rank 0 is mostly inside a weight gather or waiting for a prefetched one when its
     * peer dies).
     */
    @ParameterizedTest
    @ValueSource(strings = {"no_shard", "full_shard"})
    void aKilledRankStopsTheJobAtOnceNamingTheRankAndTheLastCheckpointStaysIntact(String fsdp) throws Exception {
        Path out = dir.resolve("out");
        List<String> args = ptArgs(out);
        args.add("fsdp=" + fsdp);
        args.add("--nproc-per-node=2");
        Path log = dir.resolve("launcher.log");
        Process launcher = DataParallelEquivalenceTest.launcher(args, log);
        try {
            awaitCheckpoint3(launcher, out, log);
            ProcessHandle victim = rankProcess(launcher, 1).orElseThrow();
            long t0 = System.nanoTime();
            victim.destroyForcibly(); // SIGKILL: no goodbye
            assertTrue(launcher.waitFor(60, TimeUnit.SECONDS), "the launcher did not stop within 60 s: "
                    + Files.readString(log));
            double seconds = (System.nanoTime() - t0) / 1e9;
            String text = Files.readString(log);
            System.out.printf("fsdp %s, rank 1 killed: launcher exited with %d after %.1f s; rank 0: %s%n", fsdp,
                    launcher.exitValue(), seconds, text.lines().filter(l -> l.contains("another rank stopped")
                            || l.contains("lost a peer")).findFirst().orElse("?"));
            assertNotEquals(0, launcher.exitValue(), text);
            assertTrue(text.contains("rank 1 exited with status 137"), text);
            assertTrue(text.contains("another rank stopped") || text.contains("lost a peer"),
                    "rank 0 says why it stopped: " + text);
        } finally {
            launcher.descendants().forEach(ProcessHandle::destroyForcibly);
            launcher.destroyForcibly();
        }
        Path latest = CheckpointDirs.latest(out).orElseThrow();
        assertTrue(CheckpointDirs.isComplete(latest), latest + " is complete and resumable");
    }

    /** A rank that stops responding (SIGSTOP) is reported by its peer within ddp_liveness_timeout. */
    @Test
    void aStoppedRankIsCaughtByTheLivenessCheck() throws Exception {
        Path out = dir.resolve("out");
        List<String> args = ptArgs(out);
        args.add("ddp_liveness_timeout=5");
        args.add("--nproc-per-node=2");
        Path log = dir.resolve("launcher.log");
        Process launcher = DataParallelEquivalenceTest.launcher(args, log);
        try {
            awaitCheckpoint3(launcher, out, log);
            ProcessHandle victim = rankProcess(launcher, 1).orElseThrow();
            long t0 = System.nanoTime();
            assertEquals(0, new ProcessBuilder("kill", "-STOP", String.valueOf(victim.pid())).start().waitFor());
            assertTrue(launcher.waitFor(60, TimeUnit.SECONDS), "not caught within 60 s: " + Files.readString(log));
            double seconds = (System.nanoTime() - t0) / 1e9;
            String text = Files.readString(log);
            System.out.printf("rank 1 stopped (SIGSTOP): launcher exited with %d after %.1f s%n",
                    launcher.exitValue(), seconds);
            assertEquals(75, launcher.exitValue(), text);
            assertTrue(text.contains("rank 1 has sent no heartbeat"), text);
        } finally {
            launcher.descendants().forEach(ProcessHandle::destroyForcibly);
            launcher.destroyForcibly();
        }
    }

    /** SIGTERM (or Ctrl-C) on the launcher: every rank stops before the same step, rank 0 saves one checkpoint. */
    @Test
    void stoppingTheLauncherSavesOneCheckpointAndStopsEveryRank() throws Exception {
        Path out = dir.resolve("out");
        List<String> args = ptArgs(out);
        args.add("save_steps=1000");
        args.add("--nproc-per-node=2");
        Path log = dir.resolve("launcher.log");
        Process launcher = DataParallelEquivalenceTest.launcher(args, log);
        List<ProcessHandle> ranks;
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(150);
            while (!Files.exists(out.resolve("trainer_log.jsonl"))
                    || Files.readAllLines(out.resolve("trainer_log.jsonl")).size() < 3) {
                assertTrue(launcher.isAlive(), "the job ended early: " + Files.readString(log));
                assertTrue(System.nanoTime() < deadline, "no 3 steps after 150 s: " + Files.readString(log));
                Thread.sleep(20);
            }
            ranks = launcher.children().toList();
            launcher.destroy(); // SIGTERM, as Ctrl-C or a scheduler's stop
            assertTrue(launcher.waitFor(90, TimeUnit.SECONDS), "the launcher did not stop: " + Files.readString(log));
            for (ProcessHandle r : ranks) {
                assertTrue(r.onExit().get(30, TimeUnit.SECONDS) != null && !r.isAlive(), "a rank survived");
            }
        } finally {
            launcher.descendants().forEach(ProcessHandle::destroyForcibly);
            launcher.destroyForcibly();
        }
        String text = Files.readString(log);
        List<Path> saved = CheckpointDirs.list(out);
        assertEquals(1, saved.size(), "one checkpoint: " + saved + "\n" + text);
        assertTrue(CheckpointDirs.isComplete(saved.get(0)), text);
        assertTrue(text.contains("cancelled after step"), text);
        assertFalse(text.contains("error: rank"), "a requested stop is not reported as a rank failure: " + text);
    }

    @Test
    void ranksWithDifferentConfigsAreRefusedAtStartUp() throws Exception {
        int port = DataParallelEquivalenceTest.freePort();
        List<String> a = ptArgs(dir.resolve("out"));
        List<String> b = ptArgs(dir.resolve("out"));
        b.set(b.indexOf("learning_rate=1e-3"), "learning_rate=2e-3");
        Process r0 = DataParallelEquivalenceTest.rank(0, 2, port, a, dir.resolve("rank0.log"));
        Process r1 = DataParallelEquivalenceTest.rank(1, 2, port, b, dir.resolve("rank1.log"));
        try {
            for (Process p : List.of(r0, r1)) {
                assertTrue(p.waitFor(120, TimeUnit.SECONDS), "a rank hangs");
            }
            for (int r = 0; r < 2; r++) {
                String text = Files.readString(dir.resolve("rank" + r + ".log"));
                assertNotEquals(0, (r == 0 ? r0 : r1).exitValue(), text);
                assertTrue(text.contains("the config of rank(s) [1] differs from rank 0's"), text);
            }
        } finally {
            r0.destroyForcibly();
            r1.destroyForcibly();
        }
        Path out = dir.resolve("out");
        assertTrue(!Files.exists(out) || CheckpointDirs.latest(out).isEmpty(), "nothing trained");
    }

    /** The JVM of {@code rank} among the launcher's children (found by RANK in its environment). */
    /** Waits (150 s at most) until the job has published checkpoint-3, failing if the launcher ends first. */
    private static void awaitCheckpoint3(Process launcher, Path out, Path log) throws Exception {
        Path marker = out.resolve("checkpoint-3").resolve("trainer_state.json");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(150);
        while (!Files.exists(marker)) {
            assertTrue(launcher.isAlive(), "the job ended early: " + Files.readString(log));
            assertTrue(System.nanoTime() < deadline, "no checkpoint-3 after 150 s: " + Files.readString(log));
            Thread.sleep(20);
        }
    }

    static Optional<ProcessHandle> rankProcess(Process launcher, int rank) {
        return launcher.children().filter(h -> {
            try {
                String env = new String(Files.readAllBytes(Path.of("/proc/" + h.pid() + "/environ")),
                        StandardCharsets.UTF_8);
                return ("\0" + env).contains("\0RANK=" + rank + "\0");
            } catch (java.io.IOException e) {
                return false;
            }
        }).findFirst();
    }
}
