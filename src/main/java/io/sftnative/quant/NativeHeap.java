package io.sftnative.quant;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Gives memory that the C heap keeps after {@code free} back to the operating system ({@code malloc_trim(0)}, glibc).
 * Quantizing while loading frees one dense weight after another; glibc keeps such blocks in its arenas (its mmap
 * threshold grows with the first large frees), so without a trim the process would hold on to hundreds of MB that no
 * tensor uses. A no-op where the function does not exist.
 */
final class NativeHeap {
    private static final MethodHandle TRIM = bind();

    private NativeHeap() {}

    /** Returns free C-heap memory to the OS; true when the C library supports it. */
    static boolean trim() {
        if (TRIM == null) {
            return false;
        }
        try {
            int released = (int) TRIM.invokeExact(0L);
            return released >= 0;
        } catch (Throwable t) {
            return false;
        }
    }

    private static MethodHandle bind() {
        try {
            Linker linker = Linker.nativeLinker();
            return linker.defaultLookup().find("malloc_trim")
                    .map(f -> linker.downcallHandle(f, FunctionDescriptor.of(ValueLayout.JAVA_INT,
                            ValueLayout.JAVA_LONG)))
                    .orElse(null);
        } catch (RuntimeException | LinkageError e) {
            return null;
        }
    }
}
