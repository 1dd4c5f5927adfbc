package io.sftnative.cli;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.sftnative.torch.MallocEnvironment;

/**
 * Re-launches {@code java -jar sft-native.jar ...} as a child JVM with the environment and flags libtorch needs.
 *
 * <p>Why: {@code OMP_WAIT_POLICY=PASSIVE} must be in the environment before the OpenMP runtime starts (measured:
 * a 58M-parameter decoder step reached 42% of GEMM peak without it, ~65% with it), and a JVM cannot change its own
 * environment. The child also gets {@code --enable-native-access=ALL-UNNAMED} and
 * {@code --sun-misc-unsafe-memory-access=allow} so no JDK warnings about JNI/FFM/Unsafe reach users, and
 * {@code -Dai.djl.offline=true} / {@code OPT_OUT_TRACKING=true} so the tokenizer library never calls home.
 * It also gets the glibc malloc settings of {@link MallocEnvironment} (tensor memory reused instead of faulted in
 * every step). Set {@code SFT_NATIVE_NO_RELAUNCH=1} to run in-process.
 */
final class Relauncher {
    static final String MARKER = "SFT_NATIVE_CHILD";

    private Relauncher() {}

    static boolean needed() {
        return System.getenv(MARKER) == null
                && System.getenv("SFT_NATIVE_NO_RELAUNCH") == null
                && !"PASSIVE".equalsIgnoreCase(System.getenv("OMP_WAIT_POLICY"));
    }

    /** Runs the child with inherited stdio and returns its exit code. */
    static int relaunch(Class<?> mainClass, String[] args) {
        String javaBin = ProcessHandle.current().info().command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        List<String> cmd = new ArrayList<>();
        cmd.add(javaBin);
        List<String> jvmArgs = ManagementFactory.getRuntimeMXBean().getInputArguments();
        cmd.addAll(jvmArgs);
        addIfAbsent(cmd, jvmArgs, "--enable-native-access=ALL-UNNAMED");
        addIfAbsent(cmd, jvmArgs, "--sun-misc-unsafe-memory-access=allow");
        addIfAbsent(cmd, jvmArgs, "--add-opens=java.base/java.nio=ALL-UNNAMED"); // Apache Arrow (.arrow data)
        addIfAbsent(cmd, jvmArgs, "-Dai.djl.offline=true");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(mainClass.getName());
        cmd.addAll(List.of(args));

        ProcessBuilder pb = new ProcessBuilder(cmd).inheritIO();
        pb.environment().put(MARKER, "1");
        pb.environment().put(ParentWatch.PARENT_PID, String.valueOf(ProcessHandle.current().pid())); // dies with us
        pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
        pb.environment().putIfAbsent("OPT_OUT_TRACKING", "true");
        MallocEnvironment.addTo(pb.environment()); // keep freed tensor memory: no page faults every step
        try {
            Process child = pb.start();
            // Ctrl-C reaches the child through the terminal's process group; a plain kill of the parent must not
            // orphan it (a training child would go on writing checkpoints).
            Thread stopper = new Thread(() -> {
                if (child.isAlive()) {
                    child.destroy();
                    try {
                        child.waitFor();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            }, "sft-native-child-stopper");
            Runtime.getRuntime().addShutdownHook(stopper);
            int code = child.waitFor();
            Runtime.getRuntime().removeShutdownHook(stopper);
            return code;
        } catch (Exception e) {
            System.err.println("sft-native: could not start the child JVM (" + e.getMessage()
                    + "); running in-process. Set OMP_WAIT_POLICY=PASSIVE yourself for full speed.");
            return -1;
        }
    }

    private static void addIfAbsent(List<String> cmd, List<String> existing, String flag) {
        String key = flag.startsWith("--add-opens") || !flag.contains("=") ? flag
                : flag.substring(0, flag.indexOf('=') + 1);
        if (existing.stream().noneMatch(a -> a.startsWith(key))) {
            cmd.add(flag);
        }
    }
}
