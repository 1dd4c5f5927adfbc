package io.sftnative.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.api.SftTrainer;
import io.sftnative.api.StepEvent;
import io.sftnative.api.TrainingListener;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.testing.TempDatasetCache;

/**
 * ZeRO stages 1 and 2 over 2 ranks (child JVMs on loopback) train like plain data parallelism (stage 0) with the
 * same ranks and accumulation, and a ZeRO checkpoint resumes bit-exactly with the same world size and re-slices
 * exactly for another.
 *
 * <p>Tolerances. Stage 1 sums the gradients with the same all-reduce as DDP, clips them with the same code, and
 * runs the same elementwise AdamW on each rank's slice of the flat parameters: every element sees the same inputs
 * and operations, so the weights may differ only where the vectorised and scalar code paths of the elementwise
 * kernels round differently (slice boundaries move the scalar tails). Stage 2's reduce-scatter adds the same two fp32
 * values per element as the 2-rank all-reduce (a + b is commutative in IEEE arithmetic), but the gradient norm is
 * summed in another order (per-slice squares in float64 instead of torch's fp32 norm of per-tensor norms): a relative
 * difference of a few fp32 ulps (~1e-7) in grad_norm and in the clip coefficient, which moves every update by the
 * same relative amount; over a few AdamW steps at lr 1e-2 that stays far below the 1e-5 relative weight tolerance
 * used for DDP vs one process (DataParallelEquivalenceTest derives it). Losses: step 1 is bit-equal (same weights,
 * same rows); later ones move only through the weights. Measured maxima are printed.
 */
@ExtendWith(TempDatasetCache.class)
class ZeroEquivalenceTest {
    @TempDir
    static Path shared;

    @TempDir
    Path dir;

    private static Path ddp;

    static Map<String, Object> config() {
        Map<String, Object> m = DataParallelEquivalenceTest.common("full");
        for (String k : List.of("val_size", "do_eval", "eval_steps", "per_device_eval_batch_size")) {
            m.remove(k);
        }
        m.put("max_grad_norm", 0.5); // the clip is active: the sharded norm decides every update
        m.put("save_steps", 2);
        return m;
    }

    /** The stage-0 (DDP) reference over 2 ranks × accumulation 2, run once for the class. */
    static synchronized Path ddp() throws Exception {
        if (ddp == null) {
            ddp = run(shared.resolve("ddp"), 0, List.of());
        }
        return ddp;
    }

    static Path run(Path out, int stage, List<String> extra) throws Exception {
        return run(out, stage, extra, List.of());
    }

    static Path run(Path out, int stage, List<String> extra, List<String> jvmOptions) throws Exception {
        Files.createDirectories(out);
        List<String> args = new ArrayList<>();
        config().forEach((k, v) -> args.add(k + "=" + v));
        args.add("gradient_accumulation_steps=2");
        args.add("output_dir=" + out.resolve("run"));
        if (stage == 2) {
            args.add("fsdp=shard_grad_op"); // HF's FSDP key: ZeRO-2
        } else if (stage > 0) { // a DeepSpeed file as LLaMA-Factory ships them
            Path json = out.resolve("ds_z" + stage + "_config.json");
            Files.writeString(json, "{\"train_micro_batch_size_per_gpu\": \"auto\", \"gradient_accumulation_steps\":"
                    + " \"auto\", \"gradient_clipping\": \"auto\", \"zero_optimization\": {\"stage\": " + stage
                    + ", \"overlap_comm\": false}}");
            args.add("deepspeed=" + json);
        }
        args.addAll(extra);
        DataParallelEquivalenceTest.runRanks(2, args, out, jvmOptions);
        return out.resolve("run");
    }

    @Test
    void stage1TrainsLikeDdp() throws Exception {
        Path ref = ddp();
        Path z1 = run(dir.resolve("z1"), 1, List.of());
        assertTrue(DataParallelEquivalenceTest.log(dir.resolve("z1"), 0).contains("ZeRO stage 1"),
                DataParallelEquivalenceTest.log(dir.resolve("z1"), 0));
        compare("stage 1", ref, z1);
        Path ck = z1.resolve("checkpoint-2");
        assertTrue(Files.isRegularFile(ck.resolve(ZeroCheckpoint.shardName(0, 2))));
        assertTrue(Files.isRegularFile(ck.resolve(ZeroCheckpoint.shardName(1, 2))));
        assertTrue(!Files.exists(z1.resolve(".zero-shards")), "the staging directory is cleaned up");
        // the shards put together hold DDP's moments of step 2
        double[] d = stateDiff(ref.resolve("checkpoint-2"), ck);
        System.out.printf("stage 1 vs DDP optimizer state at step 2: max |diff| %.3g (max %.3g)%n", d[0], d[1]);
        assertTrue(d[0] <= 1e-5 * Math.max(1, d[1]), "moments " + d[0]);
    }

    private static Path z2;

    /** The stage-2 run (fsdp: shard_grad_op), 2 ranks × accumulation 2, run once for the class. */
    static synchronized Path z2() throws Exception {
        if (z2 == null) {
            z2 = run(shared.resolve("z2"), 2, List.of());
        }
        return z2;
    }

    @Test
    void stage2TrainsLikeDdp() throws Exception {
        Path z = z2();
        assertTrue(DataParallelEquivalenceTest.log(shared.resolve("z2"), 0).contains("ZeRO-2 gradients:")
                && DataParallelEquivalenceTest.log(shared.resolve("z2"), 0).contains("gradients reduced per unit"));
        compare("stage 2", ddp(), z);
    }

    /**
     * Without gradient checkpointing there are no layer hooks: stage 2 reduce-scatters the whole gradient after
     * the step's last backward instead of reducing each layer's during it.
     */
    @Test
    void stage2WithoutCheckpointingReduceScattersAfterBackward() throws Exception {
        Path z = run(dir.resolve("z2nock"), 2, List.of("disable_gradient_checkpointing=true"));
        String log = DataParallelEquivalenceTest.log(dir.resolve("z2nock"), 0);
        assertTrue(log.contains("reduce-scatter in buckets"), log);
        compare("stage 2 without gradient checkpointing", ddp(), z);
    }

    /**
     * Same world size: resumed from checkpoint-2, every later step and the final weights are bit-identical. The
     * resumed run waits for each unit's gradient reduces at once ({@code -Dsft.zero.overlap=false}) where the first
     * one let them run during the next unit's backward: the overlap changes no bit either.
     */
    @Test
    void stage2ResumesBitExactlyWithTheSameWorldSize() throws Exception {
        Path z = z2();
        Path resumed = run(dir.resolve("z2r"), 2, List.of("resume_from_checkpoint=" + z.resolve("checkpoint-2")),
                List.of("-Dsft.zero.overlap=false"));
        assertTrue(DataParallelEquivalenceTest.log(dir.resolve("z2r"), 0).contains(", synchronously"),
                DataParallelEquivalenceTest.log(dir.resolve("z2r"), 0));
        Map<Long, Double> a = losses(z);
        Map<Long, Double> b = losses(resumed);
        assertEquals(a.size() - 2, b.size(), "steps 3.. after the resume: " + b);
        for (Map.Entry<Long, Double> e : b.entrySet()) {
            assertEquals(a.get(e.getKey()), e.getValue(), 0.0, "loss of step " + e.getKey());
        }
        List<double[]> na = DataParallelEquivalenceTest.stepsOf(z);
        List<double[]> nb = gradNorms(resumed);
        for (int i = 2; i < na.size(); i++) {
            assertEquals(na.get(i)[1], nb.get(i)[1], 0.0, "grad_norm of step " + (i + 1));
        }
        assertEquals(0.0, DataParallelEquivalenceTest.maxDiff(z.resolve("model.safetensors"),
                resumed.resolve("model.safetensors"))[0], "resumed weights are bit-identical");
    }

    /** Another world size: one process (plain AdamW) resumes the 2-rank stage-2 checkpoint, its state re-sliced. */
    @Test
    void aZeroCheckpointResumesInOneProcess() throws Exception {
        Path z = z2();
        Path single = dir.resolve("single");
        SftTrainer.Builder sb = SftTrainer.builder();
        config().forEach(sb::set);
        List<double[]> steps = new ArrayList<>();
        sb.set("gradient_accumulation_steps", 4).set("output_dir", single.toString())
                .set("resume_from_checkpoint", z.resolve("checkpoint-2").toString());
        sb.listener(new TrainingListener() {
            @Override
            public void onStep(StepEvent e) {
                steps.add(new double[] {e.loss(), e.gradNorm()});
            }
        });
        sb.build().run();
        double[] w = DataParallelEquivalenceTest.maxDiff(z.resolve("model.safetensors"),
                single.resolve("model.safetensors"));
        System.out.printf("2-rank stage-2 checkpoint resumed in one process: final max |weight diff| %.3g (max %.3g)%n",
                w[0], w[1]);
        assertTrue(w[0] < 1e-5 * Math.max(1, w[1]), "weight diff " + w[0]);
        assertEquals(losses(z).get(3L), steps.get(0)[0], 1e-5, "the first resumed step's loss");
    }

    /**
     * LoRA under ZeRO-2: the adapters are the sharded parameters (the frozen base stays replicated and is never
     * communicated); 2 ranks × accumulation 2 vs one process × accumulation 4, with DataParallelEquivalenceTest's
     * tolerances (the reduction order differs as for DDP).
     */
    @Test
    void loraAdaptersShardUnderStage2LikeOneProcess() throws Exception {
        Map<String, Object> cfg = DataParallelEquivalenceTest.common("lora");
        Path single = dir.resolve("single");
        List<double[]> ref = new ArrayList<>();
        SftTrainer.Builder sb = SftTrainer.builder();
        cfg.forEach(sb::set);
        sb.set("gradient_accumulation_steps", 4).set("output_dir", single.toString());
        sb.listener(new TrainingListener() {
            @Override
            public void onStep(StepEvent e) {
                ref.add(new double[] {e.loss(), e.gradNorm()});
            }
        });
        sb.build().run();
        List<String> args = new ArrayList<>();
        cfg.forEach((k, v) -> args.add(k + "=" + v));
        args.addAll(List.of("gradient_accumulation_steps=2", "output_dir=" + dir.resolve("multi"),
                "fsdp=shard_grad_op"));
        DataParallelEquivalenceTest.runRanks(2, args, dir);
        assertTrue(DataParallelEquivalenceTest.log(dir, 0).contains("ZeRO stage 2"), DataParallelEquivalenceTest
                .log(dir, 0));
        List<double[]> got = DataParallelEquivalenceTest.stepsOf(dir.resolve("multi"));
        double[] stepDiff = DataParallelEquivalenceTest.stepDiffs(ref, got);
        double loss = stepDiff[0];
        double norm = stepDiff[1];
        double[] w = DataParallelEquivalenceTest.maxDiff(single.resolve("adapter_model.safetensors"),
                dir.resolve("multi").resolve("adapter_model.safetensors"));
        System.out.printf("LoRA stage 2, 2 ranks x accumulation 2 vs 1 x 4: %d steps, max |loss diff| %.3g, max rel"
                + " grad-norm diff %.3g, max |weight diff| %.3g (max |weight| %.3g)%n", ref.size(), loss, norm, w[0],
                w[1]);
        assertTrue(loss < 1e-5, "loss diff " + loss);
        assertTrue(norm < 1e-4, "grad norm rel diff " + norm);
        assertTrue(w[0] < 1e-5 * Math.max(1, w[1]), "weight diff " + w[0]);
    }

    /** loss by step from trainer_log.jsonl (the steps this run trained). */
    static Map<Long, Double> losses(Path out) throws Exception {
        Map<Long, Double> m = new java.util.TreeMap<>();
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        for (String line : Files.readAllLines(out.resolve("trainer_log.jsonl"))) {
            var n = json.readTree(line);
            if (n.has("loss")) {
                m.put(n.get("current_steps").asLong(), n.get("loss").asDouble());
            }
        }
        return m;
    }

    /** (step, grad_norm) of every step in trainer_state.json's log history (the resumed history included). */
    static List<double[]> gradNorms(Path out) throws Exception {
        List<double[]> l = new ArrayList<>();
        for (var e : new com.fasterxml.jackson.databind.ObjectMapper().readTree(out.resolve("trainer_state.json")
                .toFile()).get("log_history")) {
            if (e.has("grad_norm")) {
                l.add(new double[] {e.get("step").asDouble(), e.get("grad_norm").asDouble()});
            }
        }
        return l;
    }

    /** Losses, grad norms and final weights of a ZeRO run vs the DDP reference; prints the maxima. */
    static void compare(String what, Path ref, Path got) throws Exception {
        List<double[]> r = DataParallelEquivalenceTest.stepsOf(ref);
        List<double[]> g = DataParallelEquivalenceTest.stepsOf(got);
        double[] stepDiff = DataParallelEquivalenceTest.stepDiffs(r, g);
        double loss = stepDiff[0];
        double norm = stepDiff[1];
        double[] w = DataParallelEquivalenceTest.maxDiff(ref.resolve("model.safetensors"),
                got.resolve("model.safetensors"));
        System.out.printf("%s vs DDP (2 ranks x accumulation 2): %d steps, max |loss diff| %.3g, max rel grad-norm"
                + " diff %.3g, max |weight diff| %.3g (max |weight| %.3g)%n", what, r.size(), loss, norm, w[0], w[1]);
        assertEquals(r.get(0)[0], g.get(0)[0], 1e-12, "step 1 sees identical weights and rows");
        assertTrue(loss < 1e-5, "loss diff " + loss);
        assertTrue(norm < 1e-4, "grad norm rel diff " + norm);
        assertTrue(w[0] < 1e-5 * Math.max(1, w[1]), "weight diff " + w[0]);
    }

    /** max |a - b| between DDP's optimizer.safetensors and the ZeRO shards put together, and max |a|. */
    static double[] stateDiff(Path plain, Path sharded) throws Exception {
        Set<String> names = new TreeSet<>();
        Map<String, ZeroCheckpoint.Slice> whole = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(plain.resolve("optimizer.safetensors"));
                PointerScope scope = new PointerScope()) {
            for (String k : f.names()) {
                if (k.endsWith(".exp_avg")) {
                    String name = k.substring(0, k.length() - 8);
                    Tensor t = f.view(k);
                    long[] shape = new long[(int) t.dim()];
                    for (int i = 0; i < shape.length; i++) {
                        shape[i] = t.size(i);
                    }
                    names.add(name);
                    whole.put(name, new ZeroCheckpoint.Slice(0, t.numel(), shape));
                }
            }
            Map<String, Tensor> a = ZeroCheckpoint.read(plain, whole, names);
            Map<String, Tensor> b = ZeroCheckpoint.read(sharded, whole, names);
            assertEquals(a.keySet(), b.keySet());
            double diff = 0;
            double max = 0;
            for (String k : a.keySet()) {
                diff = Math.max(diff, a.get(k).sub(b.get(k)).abs().max().item_double());
                max = Math.max(max, a.get(k).abs().max().item_double());
            }
            // another world size: 3 slices cut from the 2 files equal the whole, element for element
            long total = 0;
            for (ZeroCheckpoint.Slice s : whole.values()) {
                total += s.length();
            }
            for (String name : names) {
                ZeroCheckpoint.Slice s = whole.get(name);
                long third = Math.max(1, s.length() / 3);
                for (long from = 0; from < s.length(); from += third) {
                    long len = Math.min(third, s.length() - from);
                    Map<String, Tensor> part = ZeroCheckpoint.read(sharded, Map.of(name, new ZeroCheckpoint.Slice(
                            from, len, new long[] {len})), names);
                    assertTrue(part.get(name + ".exp_avg").equal(b.get(name + ".exp_avg").reshape(-1)
                            .narrow(0, from, len)), name + " re-sliced at " + from);
                }
            }
            assertTrue(total > 0);
            return new double[] {diff, max};
        }
    }
}
