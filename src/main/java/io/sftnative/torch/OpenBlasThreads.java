package io.sftnative.torch;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The thread count of the OpenBLAS that libtorch calls for its CPU GEMMs.
 *
 * <p>Why: the Bytedeco OpenBLAS runs its own pthreads pool, sized at load time from {@code OPENBLAS_NUM_THREADS} or
 * else every core, and {@code torch.set_num_threads} does not reach it (it sets OpenMP's). A process told to use one
 * thread ({@code SFT_THREADS=1}, a data-parallel rank given its share of the cores) therefore still ran every GEMM on
 * two threads; two such ranks on 2 cores ran four, and each took 2.3× as long per micro-batch as alone (measured
 * with {@code DdpBench}). {@link TorchRuntime} sets it to libtorch's intra-op count whenever that is set.
 * A no-op when no OpenBLAS is mapped (an MKL or CUDA-only build).
 */
public final class OpenBlasThreads {
    private static final List<MethodHandle> SET = bind();

    private OpenBlasThreads() {}

    /** Whether the OpenBLAS libtorch uses was found in this process. */
    public static boolean available() {
        return !SET.isEmpty();
    }

    /** {@code openblas_set_num_threads(n)}; nothing when OpenBLAS is not loaded. */
    public static void set(int n) {
        for (MethodHandle h : SET) {
            try {
                h.invokeExact(n);
            } catch (Throwable t) {
                throw new IllegalStateException("openblas_set_num_threads failed", t);
            }
        }
    }

    /**
     * One handle per OpenBLAS mapped in this process. The Bytedeco presets load two builds, {@code libopenblas.so.0}
     * (which libtorch links) and {@code libopenblas_nolapack.so.0}; whichever was loaded first provides the
     * {@code sgemm_} every caller resolves to, and each has its own pool, so both are set.
     */
    private static List<MethodHandle> bind() {
        List<MethodHandle> handles = new ArrayList<>();
        try {
            Path maps = Path.of("/proc/self/maps");
            if (!Files.isReadable(maps)) {
                return handles;
            }
            Set<String> libs = new LinkedHashSet<>();
            for (String line : Files.readAllLines(maps)) {
                int slash = line.indexOf('/');
                String file = slash < 0 ? "" : line.substring(line.lastIndexOf('/') + 1);
                if (file.startsWith("libopenblas") && file.contains(".so")) {
                    libs.add(line.substring(slash));
                }
            }
            for (String lib : libs) {
                // dlopen of an already loaded path returns the same library: we reach the copy already in use
                var f = SymbolLookup.libraryLookup(Path.of(lib), Arena.global()).find("openblas_set_num_threads");
                if (f.isPresent()) {
                    handles.add(Linker.nativeLinker().downcallHandle(f.get(),
                            FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT)));
                }
            }
        } catch (IOException | RuntimeException | LinkageError e) {
            // no OpenBLAS reachable: nothing to set
        }
        return List.copyOf(handles);
    }
}
