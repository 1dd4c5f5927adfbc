package io.sftnative.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Training's flush-to-zero mode: subnormal results become 0 while it is on, and are kept again after. */
class FlushDenormalsTest {
    @BeforeAll
    static void boot() {
        TorchRuntime.boot(1);
    }

    /** 1e-30 * 1e-9 = 1e-39, below FLT_MIN (1.18e-38): a subnormal unless flushed. */
    private static float product() {
        try (PointerScope scope = new PointerScope()) {
            Tensor a = torch.full(new long[] {64}, new Scalar(1e-30), new TensorOptions(ScalarType.Float)); // (64)
            return a.mul(new Scalar(1e-9)).max().item_float();
        }
    }

    @Test
    void subnormalResultsAreZeroWhileOnAndKeptAfter() {
        float before = product();
        assertTrue(before > 0 && before < Float.MIN_NORMAL, "a subnormal without flushing: " + before);
        boolean changed = TorchRuntime.flushDenormals(true);
        float flushed;
        try {
            flushed = product();
        } finally {
            if (changed) {
                TorchRuntime.flushDenormals(false);
            }
        }
        assertTrue(changed, "x86-64 CPUs have FTZ/DAZ");
        assertEquals(0.0f, flushed);
        assertEquals(before, product(), "restored: subnormals again");
    }
}
