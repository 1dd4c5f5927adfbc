package io.sftnative.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.config.ConfigException;
import io.sftnative.config.DistributedArgs;
import io.sftnative.config.RawConfig;
import io.sftnative.config.SftConfig;
import io.sftnative.train.DataOrder;

/** The pure parts of data parallelism: environment, keys, and how a step's examples are split over the ranks. */
class DistributedSetupTest {

    @Test
    void torchrunEnvironmentIsRead() {
        DistributedEnv e = DistributedEnv.from(Map.of("RANK", "3", "WORLD_SIZE", "4", "LOCAL_RANK", "1",
                "LOCAL_WORLD_SIZE", "2", "MASTER_ADDR", "node0", "MASTER_PORT", "29501"));
        assertEquals(new DistributedEnv(3, 4, 1, 2, "node0", 29501), e);
        assertFalse(e.isMain());
        assertTrue(e.distributed());
        assertEquals(DistributedEnv.SINGLE, DistributedEnv.from(Map.of()));
        ConfigException noRank = assertThrows(ConfigException.class,
                () -> DistributedEnv.from(Map.of("WORLD_SIZE", "2")));
        assertTrue(noRank.getMessage().contains("RANK is not set"), noRank.getMessage());
        assertThrows(ConfigException.class, () -> DistributedEnv.from(Map.of("WORLD_SIZE", "2", "RANK", "2")));
        assertThrows(ConfigException.class, () -> DistributedEnv.from(Map.of("WORLD_SIZE", "two", "RANK", "0")));
    }

    @Test
    void ddpKeysAreReadAndChecked() {
        DistributedArgs d = args(Map.of("ddp_timeout", 180000000, "ddp_find_unused_parameters", false,
                "ddp_backend", "gloo"));
        assertEquals(180000000L, d.timeoutSeconds());
        assertFalse(d.allowUnusedParameters());
        ConfigException mpi = assertThrows(ConfigException.class,
                () -> args(Map.of("ddp_backend", "mpi")));
        assertTrue(mpi.getMessage().contains("ddp_backend"), mpi.getMessage());
        ConfigException nccl = assertThrows(ConfigException.class, () -> DistributedGroup.checkBackend("nccl", false));
        assertTrue(nccl.getMessage().contains("use ddp_backend: gloo"), nccl.getMessage());
        ConfigException glooOnGpu = assertThrows(ConfigException.class,
                () -> DistributedGroup.checkBackend("gloo", true));
        assertTrue(glooOnGpu.getMessage().contains("use ddp_backend: nccl"), glooOnGpu.getMessage());
        DistributedGroup.checkBackend("nccl", true); // a GPU job: NCCL (also the default, null)
        DistributedGroup.checkBackend(null, true);
        assertThrows(ConfigException.class, () -> args(Map.of("ddp_timeout", 0)));
        assertEquals(25L << 20, args(Map.of()).bucketCapBytes(), "DDP's default bucket_cap_mb");
        assertEquals(1L << 19, args(Map.of("ddp_bucket_cap_mb", 0.5)).bucketCapBytes());
        ConfigException cap = assertThrows(ConfigException.class, () -> args(Map.of("ddp_bucket_cap_mb", 0)));
        assertTrue(cap.getMessage().contains("ddp_bucket_cap_mb"), cap.getMessage());
    }

    static DistributedArgs args(Map<String, Object> keys) {
        return SftConfig.from(RawConfig.of(keys), w -> { }).distributed();
    }

    static Path write(Path dir, String name, String json) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, json);
        return p;
    }

    /** LLaMA-Factory's ds_z0/ds_z3 files: "auto" resolved, the stage read; ZeRO 3 refused over several ranks. */
    @Test
    void deepspeedFilesAreReadAndUnimplementedOptionsRefused(@TempDir Path dir) throws IOException {
        String z3 = """
                {"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto",
                 "gradient_accumulation_steps": "auto", "gradient_clipping": "auto",
                 "zero_allow_untested_optimizer": true,
                 "fp16": {"enabled": "auto", "loss_scale": 0}, "bf16": {"enabled": "auto"},
                 "zero_optimization": {"stage": 3, "overlap_comm": false, "reduce_bucket_size": "auto",
                   "stage3_gather_16bit_weights_on_model_save": true}}""";
        DistributedArgs d = args(Map.of("deepspeed", write(dir, "z3.json", z3).toString()));
        assertEquals(3, d.sharding().stage());
        DataParallel.checkSupported(d, 1); // one process: nothing to shard
        DataParallel.checkSupported(d, 2); // stage 3 runs (Zero3EquivalenceTest) ...
        DataParallel.checkStage3(d, 2, true, 0);
        ConfigException noCheckpointing = assertThrows(ConfigException.class,
                () -> DataParallel.checkStage3(d, 2, false, 0)); // ... with gradient checkpointing only
        assertTrue(noCheckpointing.getMessage().contains("disable_gradient_checkpointing"),
                noCheckpointing.getMessage());
        ConfigException qlora = assertThrows(ConfigException.class, () -> DataParallel.checkStage3(d, 2, true, 4));
        assertTrue(qlora.getMessage().contains("FSDP-QLoRA") && qlora.getMessage().contains("quantization_bit"),
                qlora.getMessage());
        DataParallel.checkStage3(d, 1, false, 4); // one process: nothing is sharded
        DistributedArgs z0 = args(Map.of("deepspeed", write(dir, "z0.json",
                z3.replace("\"stage\": 3", "\"stage\": 0")).toString()));
        DataParallel.checkSupported(z0, 2);
        DistributedArgs z2 = args(Map.of("deepspeed", write(dir, "z2.json",
                z3.replace("\"stage\": 3", "\"stage\": 2")).toString()));
        DataParallel.checkSupported(z2, 2); // stages 1 and 2 run (ZeroEquivalenceTest)
        DataParallel.checkOptimizer(z2, "adamw_torch_fused", 2);
        ConfigException sgd = assertThrows(ConfigException.class, () -> DataParallel.checkOptimizer(z2, "sgd", 2));
        assertTrue(sgd.getMessage().contains("optim: sgd"), sgd.getMessage());
        DataParallel.checkOptimizer(z2, "sgd", 1); // one process: nothing is sharded

        String offload = z3.replace("\"overlap_comm\": false", "\"offload_optimizer\": {\"device\": \"cpu\"}");
        ConfigException off = assertThrows(ConfigException.class,
                () -> args(Map.of("deepspeed", write(dir, "off.json", offload).toString())));
        assertTrue(off.getMessage().contains("zero_optimization.offload_optimizer"), off.getMessage());
        ConfigException clip = assertThrows(ConfigException.class, () -> args(Map.of("max_grad_norm", 1.0,
                "deepspeed", write(dir, "clip.json", z3.replace("\"gradient_clipping\": \"auto\"",
                        "\"gradient_clipping\": 0.5")).toString())));
        assertTrue(clip.getMessage().contains("gradient_clipping") && clip.getMessage().contains("max_grad_norm"),
                clip.getMessage());

        assertEquals(3, args(Map.of("fsdp", "full_shard auto_wrap")).sharding().stage());
        assertEquals(2, args(Map.of("fsdp", "shard_grad_op")).sharding().stage());
        assertEquals(0, args(Map.of("fsdp", "no_shard")).sharding().stage());
        assertThrows(ConfigException.class, () -> args(Map.of("fsdp", "full_shard offload")));
    }

    /** Every step's micro-batches over N ranks are exactly one process's with accumulation A × N. */
    @Test
    void ranksSplitEachStepOfTheSingleProcessOrder() {
        int examples = 23;
        int batch = 2;
        for (int ranks : new int[] {2, 3}) {
            for (int acc : new int[] {1, 2}) {
                DataOrder one = new DataOrder(examples, batch, acc * ranks, 7, true);
                List<DataOrder> parts = new ArrayList<>();
                for (int r = 0; r < ranks; r++) {
                    parts.add(new DataOrder(examples, batch, acc, 7, true, ranks, r));
                    assertEquals(one.stepsPerEpoch(), parts.get(r).stepsPerEpoch());
                }
                for (long step = 0; step < 3 * one.stepsPerEpoch(); step++) {
                    List<Integer> expected = flatten(one.microBatches(step));
                    List<Integer> got = new ArrayList<>();
                    for (DataOrder part : parts) {
                        assertTrue(part.microBatches(step).size() <= acc, "at most accumulation micro-batches");
                        got.addAll(flatten(part.microBatches(step)));
                    }
                    int[] e = expected.stream().mapToInt(Integer::intValue).sorted().toArray();
                    int[] g = got.stream().mapToInt(Integer::intValue).sorted().toArray();
                    assertArrayEquals(e, g, ranks + " ranks, accumulation " + acc + ", step " + step);
                }
            }
        }
    }

    private static List<Integer> flatten(List<int[]> micro) {
        List<Integer> out = new ArrayList<>();
        for (int[] m : micro) {
            Arrays.stream(m).forEach(out::add);
        }
        return out;
    }

    @Test
    void ncclOnTheCpuBuildSaysWhatItNeeds() {
        io.sftnative.torch.TorchRuntime.boot(1);
        ConfigException e = assertThrows(ConfigException.class, () -> NcclBackend.create(null, 0, 1, 1000));
        assertTrue(e.getMessage().contains("GPU build") && e.getMessage().contains("ddp_backend: gloo"),
                e.getMessage());
    }
}
