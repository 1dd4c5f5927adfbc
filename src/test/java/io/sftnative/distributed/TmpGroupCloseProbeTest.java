package io.sftnative.distributed;

import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import io.sftnative.torch.TorchRuntime;

class TmpGroupCloseProbeTest {
    @Test
    void joinAndCloseRepeatedly() throws Exception {
        TorchRuntime.boot(1);
        for (int i = 0; i < Integer.parseInt(System.getenv().getOrDefault("PROBE_N", "5")); i++) {
            DistributedEnv env = new DistributedEnv(0, 1, 0, 1, "127.0.0.1", DataParallelEquivalenceTest.freePort());
            DistributedGroup g = DistributedGroup.join(env, DistributedSetupTest.args(Map.of("ddp_timeout", 60)), false);
            try (PointerScope s = new PointerScope()) {
                Tensor t = torch.ones(1000);
                g.await(g.allReduceAsync(t), "probe");
            }
            g.close();
            System.out.println("closed " + i);
            System.gc();
            try (PointerScope s = new PointerScope()) {
                for (int k = 0; k < 100; k++) {
                    torch.randn(1000 + k).add(torch.ones(1000 + k));
                }
            }
        }
    }
}
