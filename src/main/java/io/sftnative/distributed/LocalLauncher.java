package io.sftnative.distributed;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import io.sftnative.torch.MallocEnvironment;

/**
 * Starts the local ranks of a data-parallel job as child processes, as {@code torchrun --nproc-per-node N} does:
 * each child gets torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
 * MASTER_PORT) and its share of the cores ({@code SFT_THREADS}). Rank 0 keeps the terminal (progress bar, logs);
 * what the other ranks print is prefixed with {@code [rank N]}. As soon as one rank fails, the others are stopped
 * and the launcher returns that rank's exit status; SIGINT/SIGTERM reach every rank (each stops after the current
 * step; rank 0 saves one checkpoint).
 */
public final class LocalLauncher {
    /** How long ranks stopped by a signal get to exit (rank 0 saves a checkpoint) before they are killed. */
    private static final long GRACE_SECONDS = 60;
    /**
     * After a rank failed the group is broken and nobody saves: the others get a short grace only, long enough for
     * them to print why they stop on a busy machine (they exit at once when they can).
     */
    private static final long FAILURE_GRACE_SECONDS = 15;

    /**
     * One node's part of a job.
     *
     * @param nprocPerNode ranks on this machine
     * @param nnodes       machines
     * @param nodeRank     this machine's index (0 hosts the rendezvous)
     * @param masterAddr   address of node 0
     * @param masterPort   rendezvous port on node 0; 0 = a free port (single node only)
     */
    public record Job(int nprocPerNode, int nnodes, int nodeRank, String masterAddr, int masterPort) {
        public Job {
            if (nprocPerNode < 1 || nnodes < 1 || nodeRank < 0 || nodeRank >= nnodes) {
                throw new IllegalArgumentException("nproc-per-node " + nprocPerNode + ", nnodes " + nnodes
                        + ", node-rank " + nodeRank + ": need nproc-per-node >= 1, nnodes >= 1 and node-rank in"
                        + " [0, nnodes)");
            }
            if (nnodes > 1 && masterPort == 0) {
                throw new IllegalArgumentException("a job over " + nnodes + " machines needs --master-addr and"
                        + " --master-port (node 0's address and a free port there), the same on every node");
            }
        }

        public int worldSize() {
            return nprocPerNode * nnodes;
        }
    }

    private LocalLauncher() {}

    /** What every local rank gets in its environment besides torchrun's variables (no JVM relaunch, quiet OpenMP). */
    public static final Map<String, String> RANK_ENVIRONMENT = Map.of("SFT_NATIVE_CHILD", "1", "OMP_WAIT_POLICY",
            "PASSIVE", "OPT_OUT_TRACKING", "true");

    /**
     * A rank's command line: this JVM's {@code java}, its flags (plus the native-access ones the trainer needs) and
     * class path, running {@code io.sftnative.cli.Main train trainArgs}.
     */
    public static List<String> trainCommand(List<String> trainArgs) {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command()
                .orElse(java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        List<String> jvm = java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments();
        cmd.addAll(jvm);
        for (String flag : List.of("--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
                "--add-opens=java.base/java.nio=ALL-UNNAMED", "-Dai.djl.offline=true")) { // add-opens: Apache Arrow
            String key = flag.startsWith("--add-opens") ? flag : flag.substring(0, flag.indexOf('=') + 1);
            if (jvm.stream().noneMatch(a -> a.startsWith(key))) {
                cmd.add(flag);
            }
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add("io.sftnative.cli.Main");
        cmd.add("train");
        cmd.addAll(trainArgs);
        return cmd;
    }

    /**
     * Runs the job's local ranks: {@code command} is the child's command line (the same for every rank) and
     * {@code env} extra environment. Returns 0 when every rank succeeded, else the first failing rank's status.
     */
    public static int run(Job job, List<String> command, Map<String, String> env, PrintStream err)
            throws IOException, InterruptedException {
        int port = job.masterPort() != 0 ? job.masterPort() : freePort();
        int threads = threadsPerRank(job.nprocPerNode());
        List<Process> ranks = new ArrayList<>();
        AtomicBoolean signalled = new AtomicBoolean();
        Thread stopper = new Thread(() -> {
            signalled.set(true); // the ranks now stop because we asked them to: not a failure to report
            stopAll(ranks, GRACE_SECONDS);
        }, "sft-native-launcher-stop");
        Runtime.getRuntime().addShutdownHook(stopper); // SIGINT / SIGTERM on the launcher reach every rank
        try {
            for (int local = 0; local < job.nprocPerNode(); local++) {
                int rank = job.nodeRank() * job.nprocPerNode() + local;
                ProcessBuilder pb = new ProcessBuilder(command);
                Map<String, String> e = pb.environment();
                e.putAll(env);
                MallocEnvironment.addTo(e);
                e.put("RANK", String.valueOf(rank));
                e.put("LOCAL_RANK", String.valueOf(local));
                e.put("WORLD_SIZE", String.valueOf(job.worldSize()));
                e.put("LOCAL_WORLD_SIZE", String.valueOf(job.nprocPerNode()));
                e.put("GROUP_RANK", String.valueOf(job.nodeRank()));
                e.put("MASTER_ADDR", job.masterAddr());
                e.put("MASTER_PORT", String.valueOf(port));
                e.putIfAbsent("SFT_THREADS", String.valueOf(threads));
                if (rank == 0) {
                    pb.inheritIO();
                } else {
                    pb.redirectInput(ProcessBuilder.Redirect.INHERIT);
                }
                Process p = pb.start();
                synchronized (ranks) {
                    ranks.add(p);
                }
                if (rank != 0) {
                    prefix(p.getInputStream(), "[rank " + rank + "] ", System.out);
                    prefix(p.getErrorStream(), "[rank " + rank + "] ", err);
                }
            }
            return waitAll(job, ranks, err, signalled);
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(stopper);
            } catch (IllegalStateException shuttingDown) {
                // the hook runs: it stops the ranks
            }
        }
    }

    /** Polls the ranks; the first failure stops the others. */
    private static int waitAll(Job job, List<Process> ranks, PrintStream err, AtomicBoolean signalled)
            throws InterruptedException {
        while (true) {
            boolean allDone = true;
            for (int i = 0; i < ranks.size(); i++) {
                Process p = ranks.get(i);
                if (p.isAlive()) {
                    allDone = false;
                    continue;
                }
                int code = p.exitValue();
                if (code != 0 && signalled.get()) {
                    allDone = false; // stopping on request: the shutdown hook waits for every rank
                    continue;
                }
                if (code != 0) {
                    int rank = job.nodeRank() * job.nprocPerNode() + i;
                    err.println("error: rank " + rank + " exited with status " + code + describe(code)
                            + "; stopping the other ranks");
                    err.flush();
                    stopAll(ranks, FAILURE_GRACE_SECONDS);
                    return code;
                }
            }
            if (allDone) {
                return 0;
            }
            Thread.sleep(100);
        }
    }

    private static String describe(int code) {
        if (code == 130) {
            return " (stopped by Ctrl-C)";
        }
        if (code > 128 && code < 160) {
            return " (killed by signal " + (code - 128) + (code == 137 ? ", SIGKILL: out of memory?" : "") + ")";
        }
        return code == 75 ? " (it lost a peer)" : "";
    }

    /** SIGTERM to every live rank (each stops after its current step), SIGKILL after {@code graceSeconds}. */
    private static void stopAll(List<Process> ranks, long graceSeconds) {
        List<Process> copy;
        synchronized (ranks) {
            copy = new ArrayList<>(ranks);
        }
        for (Process p : copy) {
            if (p.isAlive()) {
                p.destroy();
            }
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(graceSeconds);
        for (Process p : copy) {
            try {
                long left = deadline - System.nanoTime();
                if (left <= 0 || !p.waitFor(left, TimeUnit.NANOSECONDS)) {
                    p.destroyForcibly();
                }
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Copies {@code in} to {@code out} line by line with {@code tag} in front, on a daemon thread. */
    private static void prefix(InputStream in, String tag, PrintStream out) {
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    if (!line.startsWith("WARNING: ")) { // the JDK's own start-up notes, printed by rank 0 already
                        out.println(tag + line);
                        out.flush();
                    }
                }
            } catch (IOException e) {
                // the rank is gone
            }
        }, "sft-native-" + tag.trim());
        t.setDaemon(true);
        t.start();
    }

    /** The cores split between the local ranks (at least one thread each). */
    static int threadsPerRank(int localRanks) {
        return Math.max(1, Runtime.getRuntime().availableProcessors() / localRanks);
    }

    /** A TCP port nobody listens on now (the rendezvous of a single-node job). */
    public static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
