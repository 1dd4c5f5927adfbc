package io.sftnative.model;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;

import org.bytedeco.pytorch.TensorBase;
import org.bytedeco.pytorch.VoidTensorHook;
import org.bytedeco.pytorch.global.torch;

/**
 * Keeps OpenBLAS single-threaded while libtorch calls it from inside its own OpenMP-parallel loops.
 *
 * <p>Why: the Bytedeco OpenBLAS is built with its own pthreads pool ({@code openblas_get_parallel() == 1}), not
 * OpenMP. libtorch's CPU attention kernels (SDPA forward and backward) run an OpenMP loop whose every iteration calls
 * sgemm; with OpenBLAS allowed 2 threads, those nested calls fight over OpenBLAS's pool (measured 3-5x slower SDPA on
 * 2 cores). Big top-level GEMMs (linear layers), on the other hand, need OpenBLAS's threads. So the model sets
 * OpenBLAS to one thread around SDPA in the forward pass, and tensor hooks do the same around SDPA's backward: a hook
 * on the attention output fires just before SDPA's backward runs, hooks on its inputs fire right after.
 * A no-op when no OpenBLAS is mapped (e.g. a CUDA or MKL build). Set {@code SFT_BLAS_GUARD=0} to disable.
 */
final class BlasThreads {
    private static final MethodHandle SET = bind();

    /** Before SDPA backward: single-threaded BLAS. Static: must outlive every backward pass that uses it. */
    static final VoidTensorHook SINGLE = new VoidTensorHook() {
        @Override
        public void call(TensorBase grad) {
            set(1);
        }
    }.retainReference(); // never freed: a PointerScope open during class init must not take it

    /** After SDPA backward: back to libtorch's thread count. */
    static final VoidTensorHook RESTORE = new VoidTensorHook() {
        @Override
        public void call(TensorBase grad) {
            restore();
        }
    }.retainReference();

    private BlasThreads() {}

    static boolean enabled() {
        return SET != null;
    }

    static void set(int n) {
        if (SET != null) {
            try {
                SET.invokeExact(n);
            } catch (Throwable t) {
                throw new IllegalStateException("openblas_set_num_threads failed", t);
            }
        }
    }

    /** OpenBLAS threads = libtorch's intra-op threads (what the user configured). */
    static void restore() {
        set(torch.get_num_threads());
    }

    private static MethodHandle bind() {
        if ("0".equals(System.getenv("SFT_BLAS_GUARD"))) {
            return null;
        }
        try {
            Path maps = Path.of("/proc/self/maps");
            if (!Files.isReadable(maps)) {
                return null;
            }
            String lib = null;
            for (String line : Files.readAllLines(maps)) {
                int slash = line.indexOf('/');
                if (slash >= 0 && line.endsWith("/libopenblas.so.0")) {
                    lib = line.substring(slash);
                    break;
                }
            }
            if (lib == null) {
                return null;
            }
            // dlopen of an already loaded path returns the same library: we reach the copy libtorch uses
            var f = SymbolLookup.libraryLookup(Path.of(lib), Arena.global()).find("openblas_set_num_threads");
            if (f.isEmpty()) {
                return null;
            }
            return Linker.nativeLinker().downcallHandle(f.get(), FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT));
        } catch (IOException | RuntimeException | LinkageError e) {
            return null;
        }
    }
}
