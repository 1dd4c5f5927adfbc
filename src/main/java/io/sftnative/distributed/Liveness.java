package io.sftnative.distributed;

import java.util.Locale;

import org.bytedeco.pytorch.TCPStore;

/**
 * A heartbeat per rank on the rendezvous store, watched by every rank: a peer whose counter stops advancing for
 * {@code ddp_liveness_timeout} seconds (its process died, was stopped, or its JVM hangs) is reported within that
 * time, however long {@code ddp_timeout} is (LLaMA-Factory's examples set it to 180000000 s). It beats from its own
 * thread, so a rank that is only slow (writing a checkpoint, evaluating) is not reported; a rank whose training
 * thread hangs in a collective is caught by {@code ddp_timeout}. The peer that hosts the store (rank 0) being gone
 * shows up as a failing store operation, reported the same way.
 *
 * <p>What happens then: when this process is one rank of a launched job (torchrun's environment), it prints the
 * error and exits with status {@link #EXIT_PEER_LOST} (a torchrun-launched worker is stopped the same way when a
 * peer fails); embedded in a service it only logs and the training thread fails at the next collective's timeout.
 */
final class Liveness implements AutoCloseable {
    /** Exit status of a rank stopped because a peer was lost. */
    static final int EXIT_PEER_LOST = 75;

    private final DistributedGroup group;
    private final long timeoutMillis;
    private final Thread thread;
    private volatile boolean stopped;

    private Liveness(DistributedGroup group, long timeoutSeconds) {
        this.group = group;
        this.timeoutMillis = timeoutSeconds * 1000L;
        this.thread = new Thread(this::run, "sft-native-liveness-rank" + group.rank());
        this.thread.setDaemon(true);
    }

    static Liveness start(DistributedGroup group, long timeoutSeconds) {
        Liveness l = new Liveness(group, timeoutSeconds);
        l.thread.start();
        return l;
    }

    private void run() {
        int world = group.worldSize();
        long[] seen = new long[world];
        long[] since = new long[world];
        long period = Math.max(200, Math.min(5000, timeoutMillis / 6));
        TCPStore store = group.store();
        long start = System.currentTimeMillis();
        java.util.Arrays.fill(since, start);
        java.util.Arrays.fill(seen, -1);
        while (!stopped) {
            try {
                store.add(key(group.rank()), 1);
                long now = System.currentTimeMillis();
                for (int r = 0; r < world; r++) {
                    if (r == group.rank()) {
                        continue;
                    }
                    long v = store.add(key(r), 0); // reads without blocking (0 until the peer's first beat)
                    if (v != seen[r]) {
                        seen[r] = v;
                        since[r] = now;
                    } else if (now - since[r] > timeoutMillis && store.add(doneKey(r), 0) == 0) {
                        lost(String.format(Locale.ROOT, "rank %d has sent no heartbeat for %.0f s"
                                + " (ddp_liveness_timeout %d s): it died, was stopped or hangs", r,
                                (now - since[r]) / 1e3, timeoutMillis / 1000));
                        return;
                    }
                }
                Thread.sleep(period);
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                if (!stopped) {
                    lost("the rendezvous store on rank 0 stopped answering (" + DistributedGroup.firstLine(e)
                            + "): rank 0 died or hangs");
                }
                return;
            }
        }
    }

    private static String key(int rank) {
        return "sftnative/alive/" + rank;
    }

    private static String doneKey(int rank) {
        return "sftnative/done/" + rank;
    }

    /**
     * This rank finished its work and stops beating (it waits for the others at the final barrier): peers must not
     * report it. Stops this rank's own watching too.
     */
    void finished() {
        group.store().add(doneKey(group.rank()), 1);
        close();
    }

    private void lost(String why) {
        if (stopped) {
            return;
        }
        String message = "error: rank " + group.rank() + " of " + group.worldSize() + ": lost a peer: " + why
                + "; stopping this rank.";
        System.err.println(message);
        System.err.flush();
        if (System.getenv("RANK") != null) { // one rank of a launched job: the launcher reports and stops the rest
            Runtime.getRuntime().halt(EXIT_PEER_LOST);
        }
    }

    @Override
    public void close() {
        stopped = true;
        thread.interrupt();
        try {
            thread.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
