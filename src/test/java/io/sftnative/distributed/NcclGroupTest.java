package io.sftnative.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import io.sftnative.torch.DeviceUnavailableException;
import io.sftnative.torch.Devices;
import io.sftnative.torch.TorchRuntime;

/**
 * The NCCL code path on a GPU (issue 12: "world size 1 is enough to exercise the NCCL code path"): a one-rank group
 * with Gloo for CPU tensors and NCCL for CUDA tensors; the bucket all-reduce, all-gather and reduce-scatter of CUDA
 * tensors go through NCCL, step totals (CPU doubles) through Gloo, and the initial broadcast through the process
 * group's CUDA backend. Tagged {@code gpu}: runs with {@code -Pgpu-tests} or {@code tools/gpu/device_check.sh}.
 */
@Tag("gpu")
@SuppressWarnings("try")
class NcclGroupTest {
    static Device device;

    @BeforeAll
    static void cuda() {
        TorchRuntime.boot(2);
        try {
            device = TorchRuntime.device(System.getProperty("sft.test.device", "cuda"));
        } catch (DeviceUnavailableException e) {
            assumeTrue(false, "skipped: no CUDA device here: " + e.getMessage());
        }
        assumeTrue(device.is_cuda(), "skipped: NCCL needs a CUDA device");
    }

    @Test
    void oneRankGroupReducesCudaTensorsOverNccl() throws Exception {
        DistributedEnv env = new DistributedEnv(0, 1, 0, 1, "127.0.0.1", DataParallelEquivalenceTest.freePort());
        try (DistributedGroup g = DistributedGroup.join(env, DistributedSetupTest.args(Map.of("ddp_backend", "nccl")),
                true); PointerScope scope = new PointerScope()) {
            Tensor t = Devices.to(torch.arange(new Scalar(6L)).to(ScalarType.Float), device); // (6,) on the GPU
            g.await(g.allReduceAsync(t), "all-reduce");
            float[] got = new float[6];
            Devices.toHost(t).contiguous().data_ptr_float().get(got);
            assertArrayEquals(new float[] {0, 1, 2, 3, 4, 5}, got, "a sum over one rank is the tensor itself");

            Tensor out = Devices.to(torch.zeros(6).to(ScalarType.Float), device); // (6,)
            g.allGather(out, t, "all-gather");
            Tensor shard = Devices.to(torch.zeros(6).to(ScalarType.Float), device); // (6,)
            g.reduceScatter(shard, out, "reduce-scatter");
            assertEquals(0.0, shard.sub(t).abs().max().item_double(), "all-gather then reduce-scatter on one rank");

            g.broadcastFromRank0(List.of(t));
            assertArrayEquals(new double[] {15.0, 2.0}, g.allReduceSum(new double[] {15.0, 2.0}), "Gloo totals");
            assertTrue(t.is_cuda());
        }
    }
}
