package io.sftnative.bindings;

import static org.junit.jupiter.api.Assumptions.assumeFalse;

/**
 * Tests that need the native library call {@link #assumeNativeBuilt()}: they are skipped, with a message, only when
 * the build was explicitly made without it ({@code -Dnative.skip=true}, passed to the tests by surefire). In a normal
 * build a missing library is a failure, never a silent skip.
 */
public final class NativeTestSupport {
    private NativeTestSupport() {}

    public static void assumeNativeBuilt() {
        assumeFalse(Boolean.getBoolean("sft.native.skipped"),
                "skipped: built with -Dnative.skip=true, so the native kernels are not in this build");
    }
}
