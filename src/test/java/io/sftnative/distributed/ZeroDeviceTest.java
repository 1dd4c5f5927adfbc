package io.sftnative.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.config.ConfigException;
import io.sftnative.config.DistributedArgs;
import io.sftnative.distributed.ZeroComponents.Mode;
import io.sftnative.distributed.ZeroComponents.Result;
import io.sftnative.torch.TorchRuntime;

/**
 * ZeRO's device plumbing on the CPU, at world size 1 (a one-rank Gloo group): every buffer and moment follows the
 * parameters' options, every stage trains like one process, a staged optimizer file resumes exactly, and a GPU job
 * asking for ZeRO is no longer refused. {@link ZeroNcclTest} runs the same components on a GPU.
 *
 * <p>Tolerances. At world size 1 each stage applies the same AdamW to the same gradients (a sum over one rank is the
 * gradient itself); only stages 2 and 3 compute the clip norm differently (per-piece fp32 norms, squared and summed
 * in float64, instead of torch's fp32 norm of the per-tensor norms): a few fp32 ulps, so 1e-6 relative on the norms
 * (the fp32 sum of five squares errs by at most 5 ulps, its square root by half that). The clip coefficient
 * inherits that relative difference, which AdamW's ratio m / sqrt(v) all but cancels (both scale with it), so each
 * step moves a weight by at most an ulp more or less of itself: 1e-6 absolute over 3 steps for weights below 2
 * (8 ulps at 1). The moments scale with the coefficient (exp_avg_sq with its square): 1e-5 relative to their
 * largest value.
 */
class ZeroDeviceTest {
    static DistributedGroup group;
    static Device cpu;

    @BeforeAll
    static void join() throws Exception {
        TorchRuntime.boot(1);
        cpu = TorchRuntime.device("cpu");
        DistributedEnv env = new DistributedEnv(0, 1, 0, 1, "127.0.0.1", DataParallelEquivalenceTest.freePort());
        group = DistributedGroup.join(env, DistributedSetupTest.args(Map.of("ddp_timeout", 60)), false);
    }

    @AfterAll
    static void close() {
        if (group != null) {
            group.close();
        }
    }

    @Test
    void everyStageTrainsLikeOneProcessAndResumesItsMomentsExactly(@TempDir Path dir) throws Exception {
        Result plain = ZeroComponents.run(group, cpu, ScalarType.Float, Mode.PLAIN, null, null);
        for (Mode mode : List.of(Mode.STAGE1, Mode.STAGE2, Mode.STAGE2_LAYERWISE, Mode.STAGE3)) {
            Path ckpt = dir.resolve(mode.name());
            Result r = ZeroComponents.run(group, cpu, ScalarType.Float, mode, ckpt,
                    ZeroComponents.placedOn(cpu, ScalarType.Float));
            compare(mode.name() + " vs one process", plain, r, 1e-6, 1e-6, 1e-5);
            Map<String, float[]> resumed = ZeroComponents.resume(group, cpu, ScalarType.Float, mode, ckpt,
                    ZeroComponents.placedOn(cpu, ScalarType.Float));
            assertMomentsEqual(mode + " resumed from its staged file", r.moments(), resumed);
        }
    }

    /** Compares two runs; prints the measured differences. */
    static void compare(String what, Result a, Result b, double normRel, double weightAbs, double momentRel) {
        assertArrayEquals(a.losses(), b.losses(), 0.0, what + ": the loss sums (one rank: the loss itself)");
        double norm = 0;
        for (int s = 0; s < a.norms().length; s++) {
            norm = Math.max(norm, Math.abs(a.norms()[s] - b.norms()[s]) / a.norms()[s]);
            assertTrue(a.norms()[s] > ZeroComponents.MAX_NORM, "the clip acts: norm " + a.norms()[s]);
        }
        double weight = ZeroComponents.maxDiff(a.weights(), b.weights());
        double moment = 0;
        assertEquals(a.moments().keySet(), b.moments().keySet(), what + ": the state's keys");
        for (String k : a.moments().keySet()) {
            float[] x = a.moments().get(k);
            moment = Math.max(moment, ZeroComponents.maxDiff(x, b.moments().get(k))
                    / Math.max(Float.MIN_NORMAL, ZeroComponents.maxAbs(x)));
        }
        System.out.printf("%s: max rel. d norm %.2e, max |d weight| %.2e (weights up to %.2f), max rel. d moment"
                + " %.2e%n", what, norm, weight, ZeroComponents.maxAbs(a.weights()), moment);
        assertTrue(norm <= normRel, what + ": grad norms differ by " + norm + " relative");
        assertTrue(weight <= weightAbs, what + ": weights differ by " + weight);
        assertTrue(moment <= momentRel, what + ": moments differ by " + moment + " relative");
    }

    static void assertMomentsEqual(String what, Map<String, float[]> want, Map<String, float[]> got) {
        assertEquals(want.keySet(), got.keySet(), what);
        want.forEach((k, v) -> assertArrayEquals(v, got.get(k), what + ": " + k));
    }

    /** Buffers, moments and the stage-3 slice take the parameters' dtype: bf16 parameters give bf16 everywhere. */
    @Test
    void buffersAndMomentsFollowTheParametersDtype(@TempDir Path dir) throws Exception {
        for (Mode mode : List.of(Mode.STAGE1, Mode.STAGE2, Mode.STAGE2_LAYERWISE, Mode.STAGE3)) {
            Result r = ZeroComponents.run(group, cpu, ScalarType.BFloat16, mode, dir.resolve(mode.name()),
                    ZeroComponents.placedOn(cpu, ScalarType.BFloat16));
            for (float w : r.weights()) {
                assertTrue(Float.isFinite(w), mode + ": finite bf16 weights");
            }
            Map<String, float[]> resumed = ZeroComponents.resume(group, cpu, ScalarType.BFloat16, mode,
                    dir.resolve(mode.name()), ZeroComponents.placedOn(cpu, ScalarType.BFloat16));
            assertMomentsEqual(mode + " (bf16) resumed", r.moments(), resumed);
        }
    }

    /**
     * A GPU job with ZeRO is no longer refused by DataParallel.join: with {@code ddp_backend: gloo} it now reaches the
     * backend check (which comes before any native object is made), where the ZeRO refusal used to stop it first.
     * (No join that fails after its rendezvous started is tried in this JVM: one that timed out in Gloo's, or failed
     * at NCCL after it, was followed by a heap corruption abort of the test JVM.)
     */
    @Test
    void zeroOnAGpuJobIsNoLongerRefused() {
        DistributedEnv env = new DistributedEnv(0, 2, 0, 2, "127.0.0.1", 29400);
        for (String fsdp : List.of("full_shard auto_wrap", "shard_grad_op")) {
            DistributedArgs args = DistributedSetupTest.args(Map.of("fsdp", fsdp, "ddp_backend", "gloo"));
            ConfigException c = assertThrows(ConfigException.class, () -> DataParallel.join(env, args, true, s -> { }));
            assertTrue(c.getMessage().contains("use ddp_backend: nccl") && !c.getMessage().contains("ZeRO"),
                    c.getMessage());
        }
    }
}
