package io.sftnative.cli;

import java.util.Optional;

/**
 * Makes a relaunched child JVM ({@link Relauncher}) die with its launcher. Without it, {@code kill -9} of the
 * {@code java -jar} process orphaned the child, which went on training (and wrote checkpoints beside the next run).
 *
 * <p>How: a daemon thread polls {@link ProcessHandle#parent()} every {@link #POLL_MS} ms; when the parent's pid is no
 * longer the launcher's (the child was re-parented to init or a subreaper), the child stops as for Ctrl-C
 * ({@code System.exit(143)}: the training shutdown hook cancels the run, which saves a checkpoint after the
 * current step), and is halted if that takes longer than {@link #GRACE_MS} ms. Chosen over
 * {@code prctl(PR_SET_PDEATHSIG)}: that is Linux-only, fires when the launcher's forking <em>thread</em> ends
 * rather than the process, and needs a native call early in the child; and over watching stdin for EOF: the
 * child inherits the user's stdin (chat reads it). Polling uses only the JDK and costs one /proc read per poll.
 */
final class ParentWatch {
    /** Environment variable carrying the launcher's pid to the child. */
    static final String PARENT_PID = "SFT_NATIVE_PARENT_PID";
    static final long POLL_MS = 500;
    static final long GRACE_MS = 120_000;

    private ParentWatch() {}

    /** Starts the watch when this JVM is a relaunched child; a no-op otherwise. */
    static void startIfChild() {
        String v = System.getenv(PARENT_PID);
        if (v == null) {
            return;
        }
        long launcher;
        try {
            launcher = Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            return;
        }
        Thread t = new Thread(() -> watch(launcher), "sft-native-parent-watch");
        t.setDaemon(true);
        t.start();
    }

    private static void watch(long launcher) {
        while (true) {
            Optional<Long> parent = ProcessHandle.current().parent().map(ProcessHandle::pid);
            if (parent.isEmpty() || parent.get() != launcher) {
                break;
            }
            try {
                Thread.sleep(POLL_MS);
            } catch (InterruptedException e) {
                return;
            }
        }
        System.err.println("sft-native: the launching process (pid " + launcher + ") is gone; stopping (a training"
                + " run saves a checkpoint first)");
        Thread halt = new Thread(() -> {
            try {
                Thread.sleep(GRACE_MS);
            } catch (InterruptedException e) {
                return;
            }
            Runtime.getRuntime().halt(137);
        }, "sft-native-parent-watch-halt");
        halt.setDaemon(true);
        halt.start();
        System.exit(143);
    }
}
