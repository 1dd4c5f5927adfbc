package io.sftnative.distributed;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.distributed.ZeroComponents.Mode;
import io.sftnative.distributed.ZeroComponents.Result;
import io.sftnative.torch.DeviceUnavailableException;
import io.sftnative.torch.TorchRuntime;

/**
 * ZeRO stages 1-3 on a GPU: the components of {@link ZeroDeviceTest} on {@code cuda} in a one-rank group with Gloo
 * for CPU tensors and NCCL for CUDA tensors (NCCL cannot run two ranks on one GPU), against the same on the CPU in
 * the same group. Every shard buffer and AdamW moment must be a CUDA tensor (so the reduce-scatter, the reduces and
 * broadcasts per unit and the all-gather go over NCCL), the results must match the CPU's, and an optimizer file
 * written on one device must resume exactly on the other. Tagged {@code gpu}: runs with {@code -Pgpu-tests} or
 * {@code tools/gpu/device_check.sh}; skips without CUDA.
 *
 * <p>Tolerances, GPU vs CPU (same stage): the fp32 gradient norms are reduced in another order on the GPU — for
 * these 7-21-element pieces at most ~21 ulps, so 1e-5 relative; the clip coefficient inherits that, and AdamW's
 * ratio m / sqrt(v) cancels it, while the GPU's elementwise kernels may round an operation differently (fused
 * multiply-add): at most an ulp of a weight per step, 1e-6 absolute over 3 steps for weights below 2. The moments
 * scale with the coefficient (exp_avg_sq with its square): 1e-4 relative to their largest value. bf16 (one ulp at 1
 * is 2^-7): each piece's norm is rounded to bf16 once, and a rounding that flips moves it by up to 2^-7 relative, so
 * 1e-2 on the norms; 3 steps of possibly differently rounded updates, 4 ulps = 3.2e-2 on weights below 2; moments
 * 3e-2 relative (a few bf16 roundings of the largest).
 */
@Tag("gpu")
class ZeroNcclTest {
    static Device device;
    static Device cpu;
    static DistributedGroup group;

    @BeforeAll
    static void cuda() throws Exception {
        TorchRuntime.boot(2);
        try {
            device = TorchRuntime.device(System.getProperty("sft.test.device", "cuda"));
        } catch (DeviceUnavailableException e) {
            assumeTrue(false, "skipped: no CUDA device here: " + e.getMessage());
        }
        assumeTrue(device.is_cuda(), "skipped: ZeRO over NCCL needs a CUDA device");
        cpu = TorchRuntime.device("cpu");
        DistributedEnv env = new DistributedEnv(0, 1, 0, 1, "127.0.0.1", DataParallelEquivalenceTest.freePort());
        group = DistributedGroup.join(env, DistributedSetupTest.args(Map.of("ddp_backend", "nccl")), true);
    }

    @AfterAll
    static void close() {
        if (group != null) {
            group.close();
        }
    }

    @Test
    void everyStageOnTheGpuMatchesTheCpuAndItsCheckpointsCrossDevices(@TempDir Path dir) throws Exception {
        for (Mode mode : List.of(Mode.STAGE1, Mode.STAGE2, Mode.STAGE2_LAYERWISE, Mode.STAGE3)) {
            Path onGpu = dir.resolve("gpu-" + mode.name());
            Path onCpu = dir.resolve("cpu-" + mode.name());
            Result gpu = ZeroComponents.run(group, device, ScalarType.Float, mode, onGpu,
                    ZeroComponents.placedOn(device, ScalarType.Float));
            Result host = ZeroComponents.run(group, cpu, ScalarType.Float, mode, onCpu,
                    ZeroComponents.placedOn(cpu, ScalarType.Float));
            ZeroDeviceTest.compare(mode + " on the GPU vs the CPU", host, gpu, 1e-5, 1e-6, 1e-4);
            // the GPU's file into a CPU run and the CPU's into a GPU run: copies, so exact
            ZeroDeviceTest.assertMomentsEqual(mode + ": GPU checkpoint resumed on the CPU", gpu.moments(),
                    ZeroComponents.resume(group, cpu, ScalarType.Float, mode, onGpu,
                            ZeroComponents.placedOn(cpu, ScalarType.Float)));
            ZeroDeviceTest.assertMomentsEqual(mode + ": CPU checkpoint resumed on the GPU", host.moments(),
                    ZeroComponents.resume(group, device, ScalarType.Float, mode, onCpu,
                            ZeroComponents.placedOn(device, ScalarType.Float)));
        }
    }

    /** pure_bf16: bf16 buffers and moments on the GPU, bf16 collectives over NCCL. */
    @Test
    void bf16StagesRunOnTheGpu(@TempDir Path dir) throws Exception {
        for (Mode mode : List.of(Mode.STAGE2, Mode.STAGE3)) {
            Result gpu = ZeroComponents.run(group, device, ScalarType.BFloat16, mode, dir.resolve("gpu-" + mode),
                    ZeroComponents.placedOn(device, ScalarType.BFloat16));
            Result host = ZeroComponents.run(group, cpu, ScalarType.BFloat16, mode, dir.resolve("cpu-" + mode),
                    ZeroComponents.placedOn(cpu, ScalarType.BFloat16));
            ZeroDeviceTest.compare(mode + " bf16 on the GPU vs the CPU", host, gpu, 1e-2, 3.2e-2, 3e-2);
        }
    }
}
