package io.sftnative.torch;

import java.util.Map;

/**
 * glibc malloc settings for the JVMs we launch (the relaunched child, local ranks), which must be in the environment
 * before the process starts (the arena limit is fixed once threads have arenas).
 *
 * <p>Why: libtorch allocates each step's activations and gradients (tens of MB each) through malloc. In a JVM the
 * training thread is not the process's first thread, so by default it allocates from a secondary arena, whose 64 MB
 * heaps are unmapped as soon as they empty, and tensors above the mmap threshold are mmapped and unmapped every
 * time: every step faulted its buffers in afresh (measured on DecoderStepBench: ~100,000 minor faults and ~1 s of
 * system CPU time per step). With one arena, no mmapped chunks and no trimming, freed memory is kept and reused: the
 * faults drop to a few hundred per step after the first steps (benchmarks/RESULTS.md, "Page faults"). The cost: the
 * process keeps its peak heap until it exits (a training run's peak is its working set anyway). Values the user
 * already set win; other C libraries ignore these variables.
 */
public final class MallocEnvironment {
    /** The variables and their values (glibc's documented environment aliases of its malloc tunables). */
    public static final Map<String, String> VARIABLES = Map.of(
            "MALLOC_ARENA_MAX", "1", // every thread allocates from the main (brk) heap
            "MALLOC_MMAP_MAX_", "0", // no mmapped chunks: big tensors come from the heap and return to it
            "MALLOC_TRIM_THRESHOLD_", "68719476736"); // 64 GiB: freed heap memory is never given back mid-run

    private MallocEnvironment() {}

    /** Adds the variables the environment does not set yet. */
    public static void addTo(Map<String, String> env) {
        VARIABLES.forEach(env::putIfAbsent);
    }
}
