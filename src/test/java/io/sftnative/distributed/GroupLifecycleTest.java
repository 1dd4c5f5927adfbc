package io.sftnative.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import io.sftnative.torch.TorchRuntime;

/**
 * Joining and closing process groups inside one JVM (a service that trains more than once, the tests): every c10d
 * object is freed exactly once. Closing the store before its backends (which hold it by intrusive_ptr) once
 * corrupted the heap, and glibc aborted the JVM at a random later allocation; glibc's checking allocator
 * ({@code libc_malloc_debug.so.0} with {@code MALLOC_CHECK_=3}) turns that into an abort within the next few
 * allocations, so the sequence runs in a child JVM under it when the library is installed. A group's port being
 * usable again right after close shows the store (rank 0's server) was really freed.
 */
class GroupLifecycleTest {
    private static final Path MALLOC_DEBUG = Path.of("/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0");

    @Test
    void groupsJoinedAndClosedOrFailedFreeEverythingOnceUnderGlibcsCheckingAllocator() throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-Xmx512m", "-cp",
                System.getProperty("java.class.path"), Child.class.getName()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        boolean checked = Files.isReadable(MALLOC_DEBUG);
        if (checked) {
            pb.environment().put("LD_PRELOAD", MALLOC_DEBUG.toString());
            pb.environment().put("MALLOC_CHECK_", "3");
        } else {
            System.out.println(MALLOC_DEBUG + " is not installed: the sequence runs under the normal allocator, which"
                    + " may not notice a bad free");
        }
        Process p = pb.start();
        assertTrue(p.waitFor(180, TimeUnit.SECONDS), "the child hangs");
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), (checked ? "under glibc's checking allocator: " : "") + out);
        assertTrue(out.contains("done"), out);
    }

    /** The sequence: three joins and closes on one port, two failed joins on another, then a join on that one. */
    public static final class Child {
        private Child() {}

        public static void main(String[] args) throws Exception {
            TorchRuntime.boot(1);
            int port = DataParallelEquivalenceTest.freePort();
            for (int i = 0; i < 3; i++) {
                // the same port every time: it is free again only if close() freed rank 0's store
                DistributedGroup g = DistributedGroup.join(new DistributedEnv(0, 1, 0, 1, "127.0.0.1", port),
                        DistributedSetupTest.args(Map.of("ddp_timeout", 60)), false);
                try (PointerScope s = new PointerScope()) {
                    Tensor t = torch.ones(1000); // (1000,)
                    g.await(g.allReduceAsync(t), "a one-rank all-reduce");
                    if (t.sum().item_double() != 1000) {
                        throw new AssertionError("all-reduce of one rank changed the tensor");
                    }
                }
                g.close();
                churn();
            }
            int other = DataParallelEquivalenceTest.freePort();
            for (int i = 0; i < 2; i++) { // rank 1 never comes
                assertThrows(DistributedException.class, () -> DistributedGroup.join(
                        new DistributedEnv(0, 2, 0, 2, "127.0.0.1", other),
                        DistributedSetupTest.args(Map.of("ddp_timeout", 2)), false));
                churn();
            }
            DistributedGroup.join(new DistributedEnv(0, 1, 0, 1, "127.0.0.1", other),
                    DistributedSetupTest.args(Map.of("ddp_timeout", 60)), false).close();
            churn();
            System.out.println("done");
        }

        /** Collects garbage (JavaCPP frees what it still holds) and allocates, where a corrupted heap shows. */
        private static void churn() throws InterruptedException {
            System.gc();
            Thread.sleep(200);
            try (PointerScope s = new PointerScope()) {
                for (int k = 0; k < 200; k++) {
                    torch.randn(1000 + k).add(torch.ones(1000 + k));
                }
            }
        }
    }
}
