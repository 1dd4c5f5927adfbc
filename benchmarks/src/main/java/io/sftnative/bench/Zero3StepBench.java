package io.sftnative.bench;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * ZeRO stage 3's step time against plain data parallel, side by side in one invocation on DdpBench's model and
 * micro-batches (58M Qwen2-shaped decoder, fp32, full fine-tuning, gradient checkpointing on as stage 3 needs it),
 * every run 2 ranks × 1 thread, batch 2 × seq tokens, no accumulation: (B) DDP (stage 0, gradients all-reduced
 * during backward), (P) stage 3 ({@code fsdp: full_shard}), the next unit's weights prefetched during the current
 * unit's compute and each unit's gradient reduce running during the next one's (the default), (S) stage 3 with
 * every collective synchronous ({@code -Dsft.zero.overlap=false}). Step time and tokens/s come from rank 0's
 * trainer_log.jsonl (steady state, from the end of step 1); the time per step rank 0 spent in weight gathers
 * (waiting for a unit's weights, starting the next unit's) and in gradient reduces (waiting for the previous unit's,
 * starting this one's) from its "weight gathers" line. 1 − P/S of that time is the share the overlap hid.
 *
 * <pre>benchmarks/run-java.sh Zero3StepBench [--steps 6] [--seq 512] [--layers 8]</pre>
 */
public final class Zero3StepBench {
    private Zero3StepBench() {}

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = DecoderStepBench.parse(argv);
        int steps = Integer.parseInt(a.getOrDefault("steps", "6"));
        int seq = Integer.parseInt(a.getOrDefault("seq", "512"));
        Path work = Path.of(a.getOrDefault("work", "target/zero3-bench")).toAbsolutePath();
        long params = DdpBench.prepare(work, steps, seq, Integer.parseInt(a.getOrDefault("layers", "8")));
        Path model = work.resolve("model");
        Path data = work.resolve("data.jsonl");
        System.out.printf(Locale.ROOT, "Zero3StepBench: %,d parameters, %d steps of 4 rows x %d tokens, load average"
                + " %s%n", params, steps, seq, DdpBench.loadAverage());
        List<String> results = new ArrayList<>();
        List<String> stage3 = List.of("fsdp=full_shard");
        double[] ddp = DdpBench.run("B: 2 ranks x 1 thread, DDP", 2, 1, 1, List.of(), List.of(), false, work, model,
                data, steps, seq, results);
        double[] pre = DdpBench.run("P: 2 ranks x 1 thread, ZeRO-3 overlapped", 2, 1, 1, List.of(), stage3, false,
                work, model, data, steps, seq, results);
        double[] sync = DdpBench.run("S: 2 ranks x 1 thread, ZeRO-3 synchronous", 2, 1, 1,
                List.of("-Dsft.zero.overlap=false"), stage3, false, work, model, data, steps, seq, results);
        System.out.println();
        results.forEach(System.out::println);
        double p = pre[3] + pre[4];
        double s = sync[3] + sync[4];
        System.out.printf(Locale.ROOT, "P/B tokens/s %.2f, S/B %.2f, P/S %.2f; in weight gathers + gradient reduces"
                + " per step: P %.0f + %.0f ms = %.1f%% of P's step, S %.0f + %.0f ms = %.1f%% of S's step; hidden by"
                + " the overlap %.0f%%; load average at the end %s%n", pre[1] / ddp[1], sync[1] / ddp[1],
                pre[1] / sync[1], pre[3], pre[4], 100 * p / pre[0], sync[3], sync[4], 100 * s / sync[0],
                100 * (1 - p / s), DdpBench.loadAverage());
    }
}
