package io.sftnative.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.torch.TorchRuntime;

/** GradScaler semantics of the fp16 loss scaler, on CPU tensors (the logic is device-generic). */
class LossScalerTest {
    @BeforeAll
    static void boot() {
        TorchRuntime.boot(1);
    }

    @Test
    void backsOffOnOverflowAndGrowsAfterTheInterval() {
        LossScaler s = LossScaler.dynamic(1024, 3);
        assertEquals(1024, s.scale());
        s.update(false);
        s.update(false);
        assertEquals(1024, s.scale());
        s.update(false); // third finite step in a row: doubles
        assertEquals(2048, s.scale());
        s.update(false);
        s.update(true); // overflow: halves and restarts the count
        assertEquals(1024, s.scale());
        assertEquals(1, s.skippedSteps());
        s.update(false);
        s.update(false);
        assertEquals(1024, s.scale());
        s.update(false);
        assertEquals(2048, s.scale());
    }

    @Test
    void defaultsAreGradScalers() {
        LossScaler s = LossScaler.dynamic();
        assertEquals(65536.0, s.scale());
        for (int i = 0; i < 1999; i++) {
            s.update(false);
        }
        assertEquals(65536.0, s.scale());
        s.update(false);
        assertEquals(131072.0, s.scale());
    }

    @Test
    void unscaleDividesGradientsAndOverflowShowsInTheNorm() {
        try (PointerScope scope = new PointerScope()) {
            Tensor p = HostArrays.tensor(new float[] {1, 2, 3}, new long[] {3}, ScalarType.Float); // (3,)
            Tensor q = HostArrays.tensor(new float[] {1, 1}, new long[] {2}, ScalarType.Float);    // (2,)
            p.mutable_grad().put(HostArrays.tensor(new float[] {512, 1024, 2048}, new long[] {3}, ScalarType.Float));
            q.mutable_grad().put(HostArrays.tensor(new float[] {Float.POSITIVE_INFINITY, 0}, new long[] {2},
                    ScalarType.Float));
            LossScaler s = LossScaler.dynamic(512, 2000);
            s.unscale(List.of(p));
            float[] g = HostArrays.floats(p.grad());
            assertEquals(1f, g[0]);
            assertEquals(2f, g[1]);
            assertEquals(4f, g[2]);
            s.unscale(List.of(q));
            assertFalse(GradClip.isFinite(GradClip.totalNorm(List.of(p, q))), "an inf gradient is found");
            assertTrue(GradClip.isFinite(GradClip.totalNorm(List.of(p))));
        }
    }

    @Test
    void stateRoundTripsAndDisabledIsIdentity() {
        LossScaler s = LossScaler.dynamic(256, 5);
        s.update(false);
        s.update(true);
        s.update(false);
        LossScaler r = LossScaler.dynamic(256, 5);
        r.restore(s.state());
        assertEquals(s.state(), r.state());
        assertEquals(Map.of(), LossScaler.DISABLED.state());
        assertEquals(1.0, LossScaler.DISABLED.scale());
        LossScaler.DISABLED.update(true);
        assertEquals(1.0, LossScaler.DISABLED.scale());
        assertFalse(LossScaler.DISABLED.enabled());
    }
}
