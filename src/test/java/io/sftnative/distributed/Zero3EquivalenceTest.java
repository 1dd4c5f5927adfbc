package io.sftnative.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.api.SftTrainer;
import io.sftnative.api.StepEvent;
import io.sftnative.api.TrainingListener;
import io.sftnative.testing.TempDatasetCache;

/**
 * ZeRO stage 3 (weights sharded, gathered per decoder layer) over 2 ranks (child JVMs on loopback) trains like one
 * process with the same global batch: full fine-tuning, packed rows, gradient accumulation, clipping, evaluation
 * during training; its checkpoints resume bit-exactly with the same world size and in one process.
 *
 * <p>Tolerances: DataParallelEquivalenceTest's (loss 1e-5, grad norm 1e-4 relative, weights 1e-5 relative to the
 * largest weight). Stage 3 computes every layer from weights that are exact copies of the owners' slices, so the
 * only differences from one process are the order in which gradients are summed (per micro-batch into the slice,
 * then over the ranks, instead of over the 4 micro-batches in one tensor) and the sharded norm (float64 sum of
 * per-slice squares): rounding of a few fp32 ulps, as for stage 2 (ZeroEquivalenceTest).
 */
@ExtendWith(TempDatasetCache.class)
class Zero3EquivalenceTest {
    @TempDir
    static Path shared;

    @TempDir
    Path dir;

    private static Path z3;

    static Map<String, Object> config() {
        Map<String, Object> m = DataParallelEquivalenceTest.common("full");
        m.put("packing", true);
        m.put("cutoff_len", 32); // packed rows: an epoch's last step has fewer micro-batches than ranks x 2
        m.put("max_grad_norm", 0.5); // the clip is active: the sharded norm decides every update
        m.put("save_steps", 2);
        m.put("per_device_train_batch_size", 1);
        return m;
    }

    /** The 2-rank × accumulation 2 stage-3 run (fsdp: full_shard), run once for the class. */
    static synchronized Path z3() throws Exception {
        if (z3 == null) {
            z3 = run(shared.resolve("z3"), List.of());
        }
        return z3;
    }

    static Path run(Path out, List<String> extra) throws Exception {
        return run(out, extra, List.of());
    }

    static Path run(Path out, List<String> extra, List<String> jvmOptions) throws Exception {
        Files.createDirectories(out);
        List<String> args = new ArrayList<>();
        config().forEach((k, v) -> args.add(k + "=" + v));
        args.add("gradient_accumulation_steps=2");
        args.add("output_dir=" + out.resolve("run"));
        args.add("fsdp=full_shard auto_wrap"); // HF's FSDP key: ZeRO-3
        args.addAll(extra);
        DataParallelEquivalenceTest.runRanks(2, args, out, jvmOptions);
        return out.resolve("run");
    }

    /** {prefetched, gathers} from a stage-3 rank's "weight gathers: ..." summary line. */
    static long[] gatherCounts(String log) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("weight gathers: (\\d+) of (\\d+) unit gathers")
                .matcher(log);
        assertTrue(m.find(), log);
        return new long[] {Long.parseLong(m.group(1)), Long.parseLong(m.group(2))};
    }

    /** One process, accumulation 4 (the same global batch); returns its (loss, grad_norm) per step. */
    private static List<double[]> single(Path out, Map<String, Object> extra) throws Exception {
        SftTrainer.Builder b = SftTrainer.builder();
        config().forEach(b::set);
        extra.forEach(b::set);
        b.set("gradient_accumulation_steps", 4).set("output_dir", out.toString());
        List<double[]> steps = new ArrayList<>();
        b.listener(new TrainingListener() {
            @Override
            public void onStep(StepEvent e) {
                steps.add(new double[] {e.loss(), e.gradNorm()});
            }
        });
        b.build().run();
        return steps;
    }

    @Test
    void stage3TrainsLikeOneProcess() throws Exception {
        Path z = z3();
        String log = DataParallelEquivalenceTest.log(shared.resolve("z3"), 0);
        assertTrue(log.contains("ZeRO-3 gradients") && log.contains("weights gathered per unit"), log);
        java.util.regex.Matcher rows = java.util.regex.Pattern.compile("(\\d+) training rows").matcher(log);
        assertTrue(rows.find(), log);
        int micro = Integer.parseInt(rows.group(1)); // batch 1
        assertTrue(micro % 4 % 2 == 1, micro + " micro-batches per epoch: the last step of an epoch gives rank 1 one"
                + " fewer than rank 0, so it replays rank 0's collectives without data");
        Path single = dir.resolve("single");
        List<double[]> ref = single(single, Map.of());
        List<double[]> got = DataParallelEquivalenceTest.stepsOf(z);
        double[] stepDiff = DataParallelEquivalenceTest.stepDiffs(ref, got);
        double loss = stepDiff[0];
        double norm = stepDiff[1];
        double[] w = DataParallelEquivalenceTest.maxDiff(single.resolve("model.safetensors"),
                z.resolve("model.safetensors"));
        List<Double> ea = DataParallelEquivalenceTest.evalLosses(single);
        List<Double> eb = DataParallelEquivalenceTest.evalLosses(z);
        double eval = 0;
        assertEquals(ea.size(), eb.size(), "evaluations");
        for (int i = 0; i < ea.size(); i++) {
            eval = Math.max(eval, Math.abs(ea.get(i) - eb.get(i)));
        }
        System.out.printf("stage 3, 2 ranks x accumulation 2 vs 1 x 4 (packed, clipped): %d steps, max |loss diff|"
                + " %.3g, max rel grad-norm diff %.3g, max |weight diff| %.3g (max |weight| %.3g), %d evaluations,"
                + " max |eval_loss diff| %.3g%n", ref.size(), loss, norm, w[0], w[1], ea.size(), eval);
        assertEquals(ref.get(0)[0], got.get(0)[0], 1e-12, "step 1 sees identical weights and rows");
        assertTrue(loss < 1e-5, "loss diff " + loss);
        assertTrue(norm < 1e-4, "grad norm rel diff " + norm);
        assertTrue(w[0] < 1e-5 * Math.max(1, w[1]), "weight diff " + w[0]);
        assertTrue(ea.size() >= 3 && eval < 1e-5, "eval_loss " + ea + " vs " + eb);
        Path ck = z.resolve("checkpoint-2");
        assertTrue(Files.isRegularFile(ck.resolve(ZeroCheckpoint.shardName(0, 2))));
        assertTrue(Files.isRegularFile(ck.resolve(ZeroCheckpoint.shardName(1, 2))));
        assertTrue(Files.isRegularFile(ck.resolve("model.safetensors")), "the whole HF weights, written once");
    }

    /**
     * Same world size: resumed from checkpoint-2, every later step and the final weights are bit-identical. The
     * resumed run makes every collective synchronous ({@code -Dsft.zero.overlap=false}) while the first one
     * prefetched the next unit's weights during each unit's compute and reduced each unit's gradients during the
     * next one's, so this also proves that the overlap changes no bit: steps 3.. (an epoch's uneven last step with
     * its replayed collectives among them), grad norms, evaluations and final weights, for the cost of no extra run.
     */
    @Test
    void stage3ResumesBitExactlyWithTheSameWorldSizeAndWithoutPrefetch() throws Exception {
        Path z = z3();
        Path resumed = run(dir.resolve("z3r"), List.of("resume_from_checkpoint=" + z.resolve("checkpoint-2")),
                List.of("-Dsft.zero.overlap=false"));
        long[] on = gatherCounts(DataParallelEquivalenceTest.log(shared.resolve("z3"), 0));
        int layers = new com.fasterxml.jackson.databind.ObjectMapper().readTree(z.resolve("config.json").toFile())
                .get("num_hidden_layers").asInt();
        // per micro-batch 2L + 3 unit gathers (embedding, layers, head, layers, embedding): all but the first
        assertEquals(on[1] * (2 * layers + 2), on[0] * (2 * layers + 3), "prefetched of all gathers: " + on[0]
                + " of " + on[1]);
        String offLog = DataParallelEquivalenceTest.log(dir.resolve("z3r"), 0);
        assertEquals(0, gatherCounts(offLog)[0], offLog);
        assertTrue(offLog.contains("(overlap off)"), offLog);
        Map<Long, Double> a = ZeroEquivalenceTest.losses(z);
        Map<Long, Double> b = ZeroEquivalenceTest.losses(resumed);
        assertEquals(a.size() - 2, b.size(), "steps 3.. after the resume: " + b);
        for (Map.Entry<Long, Double> e : b.entrySet()) {
            assertEquals(a.get(e.getKey()), e.getValue(), 0.0, "loss of step " + e.getKey());
        }
        List<double[]> na = DataParallelEquivalenceTest.stepsOf(z);
        List<double[]> nb = ZeroEquivalenceTest.gradNorms(resumed);
        for (int i = 2; i < na.size(); i++) {
            assertEquals(na.get(i)[1], nb.get(i)[1], 0.0, "grad_norm of step " + (i + 1));
        }
        assertEquals(0.0, DataParallelEquivalenceTest.maxDiff(z.resolve("model.safetensors"),
                resumed.resolve("model.safetensors"))[0], "resumed weights are bit-identical");
        List<Double> ea = DataParallelEquivalenceTest.evalLosses(z);
        List<Double> eb = DataParallelEquivalenceTest.evalLosses(resumed);
        assertEquals(ea.subList(ea.size() - 2, ea.size()), eb.subList(eb.size() - 2, eb.size()),
                "step 4's evaluation and the final one are bit-identical");
    }

    /** Another world size: one process (plain AdamW) resumes the 2-rank stage-3 checkpoint, its state re-sliced. */
    @Test
    void aStage3CheckpointResumesInOneProcess() throws Exception {
        Path z = z3();
        Path single = dir.resolve("single");
        List<double[]> steps = single(single, Map.of("resume_from_checkpoint", z.resolve("checkpoint-2").toString()));
        double[] w = DataParallelEquivalenceTest.maxDiff(z.resolve("model.safetensors"),
                single.resolve("model.safetensors"));
        System.out.printf("2-rank stage-3 checkpoint resumed in one process: final max |weight diff| %.3g (max %.3g)%n",
                w[0], w[1]);
        assertTrue(w[0] < 1e-5 * Math.max(1, w[1]), "weight diff " + w[0]);
        assertEquals(ZeroEquivalenceTest.losses(z).get(3L), steps.get(0)[0], 1e-5, "the first resumed step's loss");
    }

    /**
     * LoRA under ZeRO-3: the adapters are what is sharded and gathered per layer (the frozen base stays replicated
     * and is never communicated); 2 ranks x accumulation 2 vs one process x accumulation 4.
     */
    @Test
    void loraAdaptersShardUnderStage3LikeOneProcess() throws Exception {
        compareWithOneProcess("LoRA", DataParallelEquivalenceTest.common("lora"), 2, 2);
    }

    /**
     * Freeze fine-tuning under ZeRO-3: only the last decoder layer trains, so it is the one unit gathered (twice per
     * micro-batch: the prefetch started at its forward gather serves its backward gather); packed rows, 2 ranks x
     * accumulation 2 vs one process x 4.
     */
    @Test
    void freezeUnderStage3LikeOneProcess() throws Exception {
        compareWithOneProcess("freeze", DataParallelEquivalenceTest.common("freeze"), 2, 2);
        long[] g = gatherCounts(DataParallelEquivalenceTest.log(dir, 0));
        assertEquals(g[1], 2 * g[0], "the backward gather of the one trained layer is prefetched: " + g[0] + " of "
                + g[1]);
    }

    /**
     * Three ranks (the flat partition's slices then cut parameters at other places), full fine-tuning with this
     * class's packed, clipped, evaluated config, no accumulation, vs one process x accumulation 3.
     */
    @Test
    void threeRanksAtStage3TrainLikeOneProcess() throws Exception {
        compareWithOneProcess("full", config(), 3, 1);
        List<Double> ea = DataParallelEquivalenceTest.evalLosses(dir.resolve("single"));
        List<Double> eb = DataParallelEquivalenceTest.evalLosses(dir.resolve("multi"));
        assertEquals(ea.size(), eb.size(), "evaluations");
        double eval = 0;
        for (int i = 0; i < ea.size(); i++) {
            eval = Math.max(eval, Math.abs(ea.get(i) - eb.get(i)));
        }
        System.out.printf("stage 3, 3 ranks: %d evaluations, max |eval_loss diff| %.3g%n", ea.size(), eval);
        assertTrue(ea.size() >= 3 && eval < 1e-5, "eval_loss " + ea + " vs " + eb);
    }

    /** {@code ranks} x accumulation {@code acc} at stage 3 vs one process x ranks·acc, this class's tolerances. */
    private void compareWithOneProcess(String what, Map<String, Object> cfg, int ranks, int acc) throws Exception {
        Path single = dir.resolve("single");
        List<double[]> ref = new ArrayList<>();
        SftTrainer.Builder sb = SftTrainer.builder();
        cfg.forEach(sb::set);
        sb.set("gradient_accumulation_steps", ranks * acc).set("output_dir", single.toString());
        sb.listener(new TrainingListener() {
            @Override
            public void onStep(StepEvent e) {
                ref.add(new double[] {e.loss(), e.gradNorm()});
            }
        });
        sb.build().run();
        List<String> args = new ArrayList<>();
        cfg.forEach((k, v) -> args.add(k + "=" + v));
        args.addAll(List.of("gradient_accumulation_steps=" + acc, "output_dir=" + dir.resolve("multi"),
                "fsdp=full_shard"));
        DataParallelEquivalenceTest.runRanks(ranks, args, dir);
        assertTrue(DataParallelEquivalenceTest.log(dir, 0).contains("weights gathered per unit"),
                DataParallelEquivalenceTest.log(dir, 0));
        List<double[]> got = DataParallelEquivalenceTest.stepsOf(dir.resolve("multi"));
        double[] stepDiff = DataParallelEquivalenceTest.stepDiffs(ref, got);
        double loss = stepDiff[0];
        double norm = stepDiff[1];
        String file = cfg.get("finetuning_type").equals("lora") ? "adapter_model.safetensors" : "model.safetensors";
        double[] w = DataParallelEquivalenceTest.maxDiff(single.resolve(file), dir.resolve("multi").resolve(file));
        System.out.printf("%s stage 3, %d ranks x accumulation %d vs 1 x %d: %d steps, max |loss diff| %.3g, max rel"
                + " grad-norm diff %.3g, max |weight diff| %.3g (max |weight| %.3g)%n", what, ranks, acc, ranks * acc,
                ref.size(), loss, norm, w[0], w[1]);
        assertEquals(ref.get(0)[0], got.get(0)[0], 1e-12, "step 1 sees identical weights and rows");
        assertTrue(loss < 1e-5, "loss diff " + loss);
        assertTrue(norm < 1e-4, "grad norm rel diff " + norm);
        assertTrue(w[0] < 1e-5 * Math.max(1, w[1]), "weight diff " + w[0]);
    }
}
