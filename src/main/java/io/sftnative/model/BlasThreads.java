package io.sftnative.model;

import org.bytedeco.pytorch.TensorBase;
import org.bytedeco.pytorch.VoidTensorHook;
import org.bytedeco.pytorch.global.torch;

import io.sftnative.torch.OpenBlasThreads;

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
    private static final boolean GUARD = !"0".equals(System.getenv("SFT_BLAS_GUARD"));

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
        return GUARD && OpenBlasThreads.available();
    }

    static void set(int n) {
        if (GUARD) {
            OpenBlasThreads.set(n);
        }
    }

    /** OpenBLAS threads = libtorch's intra-op threads (what the user configured). */
    static void restore() {
        set(torch.get_num_threads());
    }
}
