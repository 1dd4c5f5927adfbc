package io.sftnative.bench;

import java.io.BufferedWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.bytedeco.pytorch.global.torch.ScalarType;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.distributed.LocalLauncher;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.ModelConfig;
import io.sftnative.model.RandomInit;
import io.sftnative.torch.TorchRuntime;

/**
 * Data parallel at equal total cores, side by side in one invocation: the DecoderStepBench model (58M Qwen2-shaped
 * decoder, fp32, full fine-tuning) trained by {@code train} as (A) 1 rank × 2 threads with accumulation 2, (B) 2
 * ranks × 1 thread, gradients reduced during backward (default), (C) 2 ranks × 1 thread, reduced after backward
 * ({@code -Dsft.ddp.overlap=false}). Same micro-batches (batch 2 × seq tokens, random ids), same global batch. Step
 * time and tokens/s come from rank 0's trainer_log.jsonl (steady state: from the end of step 1 to the last step);
 * the synchronisation time left after backward from rank 0's "gradient sync" line. C's after-backward time is the
 * whole communication (pack, all-reduce, unpack); 1 − B/C is the share that backward hid.
 *
 * With {@code --runs A,B,C,D,E} also (D) 1 rank × 1 thread with accumulation 2 while the other core idles, and
 * (E) two unrelated 1-thread trainings at once, each B's micro-batch per step without any job: D and E tell the
 * cost of one thread per micro-batch from the cost of two processes sharing the machine.
 *
 * <pre>benchmarks/run-java.sh DdpBench [--steps 6] [--seq 512] [--layers 8] [--runs A,B,C,D,E]</pre>
 */
public final class DdpBench {
    private DdpBench() {}

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = DecoderStepBench.parse(argv);
        int steps = Integer.parseInt(a.getOrDefault("steps", "6"));
        int seq = Integer.parseInt(a.getOrDefault("seq", "512"));
        Path work = Path.of(a.getOrDefault("work", "target/ddp-bench")).toAbsolutePath();
        long params = prepare(work, steps, seq, Integer.parseInt(a.getOrDefault("layers", "8")));
        Path model = work.resolve("model");
        Path data = work.resolve("data.jsonl");
        System.out.printf(Locale.ROOT, "DdpBench: %,d parameters, %d steps of 4 rows x %d tokens, load average %s%n",
                params, steps, seq, loadAverage());
        List<String> results = new ArrayList<>();
        String runs = a.getOrDefault("runs", "A,B,C");
        double[] single = run("A: 1 rank x 2 threads", 1, 2, 2, true, false, work, model, data, steps, seq, results);
        if (runs.contains("D")) { // one micro-batch on 1 thread with the other core idle
            run("D: 1 rank x 1 thread, other core idle", 1, 1, 2, true, false, work, model, data, steps, seq, results);
        }
        if (runs.contains("E")) { // B's compute without the job: two unrelated 1-thread trainings side by side
            run("E: 2 independent 1-thread processes", 2, 1, 1, true, true, work, model, data, steps, seq, results);
        }
        double[] overlap = run("B: 2 ranks x 1 thread, overlapped", 2, 1, 1, true, false, work, model, data, steps,
                seq, results);
        double[] after = run("C: 2 ranks x 1 thread, after backward", 2, 1, 1, false, false, work, model, data,
                steps, seq, results);
        System.out.println();
        results.forEach(System.out::println);
        System.out.printf(Locale.ROOT, "B/A tokens/s %.2f, C/A %.2f; communication per step (C, after backward)"
                + " %.0f ms = %.1f%% of C's step; left after backward with overlap (B) %.0f ms = %.1f%% of B's step;"
                + " hidden behind backward %.0f%%; load average at the end %s%n", overlap[1] / single[1],
                after[1] / single[1], after[2], 100 * after[2] / after[0], overlap[2], 100 * overlap[2] / overlap[0],
                100 * (1 - overlap[2] / after[2]), loadAverage());
    }

    /**
     * Writes the benchmark model ({@code work}/model: {@code layers} Qwen2-shaped layers, hidden 512, random weights,
     * seed 42) and 4·steps rows of {@code seq} random token ids ({@code work}/data.jsonl, seed 42); returns the
     * parameter count.
     */
    static long prepare(Path work, int steps, int seq, int layers) throws Exception {
        Files.createDirectories(work);
        Map<String, Object> keys = new LinkedHashMap<>();
        keys.put("model_type", "qwen2");
        keys.put("hidden_size", 512);
        keys.put("num_hidden_layers", layers);
        keys.put("num_attention_heads", 8);
        keys.put("num_key_value_heads", 8);
        keys.put("intermediate_size", 1408);
        keys.put("vocab_size", 32000);
        keys.put("tie_word_embeddings", false);
        keys.put("rope_theta", 1000000.0);
        Path model = work.resolve("model");
        long params;
        TorchRuntime.boot(1);
        try (DecoderModel m = RandomInit.create(ModelConfig.fromMap(keys), 42, ScalarType.Float)) {
            m.save(model);
            params = m.parameterCount();
        }
        Path data = work.resolve("data.jsonl");
        Random rnd = new Random(42);
        try (BufferedWriter w = Files.newBufferedWriter(data, StandardCharsets.UTF_8)) {
            for (int r = 0; r < 4 * steps; r++) {
                StringBuilder sb = new StringBuilder("{\"input_ids\": [");
                for (int t = 0; t < seq; t++) {
                    sb.append(t == 0 ? "" : ",").append(rnd.nextInt(32000));
                }
                w.write(sb.append("]}\n").toString());
            }
        }
        return params;
    }

    /** Returns {steady-state ms per step, tokens/s, ms per step after backward}. */
    static double[] run(String name, int ranks, int threads, int accumulation, boolean overlap, boolean independent,
            Path work, Path model, Path data, int steps, int seq, List<String> results) throws Exception {
        return run(name, ranks, threads, accumulation, overlap ? List.of() : List.of("-Dsft.ddp.overlap=false"),
                List.of(), independent, work, model, data, steps, seq, results);
    }

    /**
     * As above, with {@code jvmOptions} and {@code extraArgs} (train keys) for every rank; returns {steady-state ms
     * per step, tokens/s, ms per step after backward, ms per step in ZeRO-3 weight gathers and in gradient
     * reduces (NaN without)}.
     */
    static double[] run(String name, int ranks, int threads, int accumulation, List<String> jvmOptions,
            List<String> extraArgs, boolean independent, Path work, Path model, Path data, int steps, int seq,
            List<String> results) throws Exception {
        Path out = work.resolve(name.substring(0, 1));
        List<String> args = new ArrayList<>(List.of("model_name_or_path=" + model, "dataset=" + data,
                "stage=sft", "finetuning_type=full", "cutoff_len=" + seq, "per_device_train_batch_size=2",
                "gradient_accumulation_steps=" + accumulation, "max_steps=" + steps, "learning_rate=1e-4",
                "logging_steps=1", "save_strategy=no", "output_dir=" + out, "overwrite_output_dir=true",
                "plot_loss=false", "preprocessing_num_workers=1", "report_to=none", "overwrite_cache=true"));
        args.addAll(extraArgs);
        List<String> cmd = new ArrayList<>(LocalLauncher.trainCommand(args));
        cmd.addAll(1, jvmOptions);
        System.out.println("== " + name + " (load average " + loadAverage() + ")");
        int port = LocalLauncher.freePort();
        List<Process> procs = new ArrayList<>();
        for (int rank = 0; rank < ranks; rank++) { // as torchrun would start them, each rank's output in a file
            ProcessBuilder pb = new ProcessBuilder(new ArrayList<>(cmd)).redirectErrorStream(true)
                    .redirectOutput(work.resolve(name.substring(0, 1) + "-rank" + rank + ".log").toFile());
            Map<String, String> env = pb.environment();
            env.putAll(LocalLauncher.RANK_ENVIRONMENT);
            env.put("SFT_THREADS", String.valueOf(threads));
            if (independent) { // each its own job (rank 0 of 1) writing its own output
                String suffix = "-" + rank;
                pb.command().replaceAll(c -> c.startsWith("output_dir=") ? c + suffix : c);
            } else if (ranks > 1) {
                env.putAll(Map.of("RANK", "" + rank, "LOCAL_RANK", "" + rank, "WORLD_SIZE", "" + ranks,
                        "LOCAL_WORLD_SIZE", "" + ranks, "MASTER_ADDR", "127.0.0.1", "MASTER_PORT", "" + port));
            }
            procs.add(pb.start());
        }
        for (Process p : procs) {
            if (p.waitFor() != 0) {
                procs.forEach(Process::destroyForcibly);
                throw new IllegalStateException(name + " failed; see " + work + "/" + name.substring(0, 1) + "-rank*.log");
            }
        }
        List<double[]> lines = new ArrayList<>(); // (elapsed s, tokens)
        ObjectMapper json = new ObjectMapper();
        Path log = independent ? Path.of(out + "-0") : out;
        for (String l : Files.readAllLines(log.resolve("trainer_log.jsonl"))) {
            JsonNode n = json.readTree(l);
            if (n.has("throughput") && n.get("throughput").asDouble() > 0) {
                double tokens = n.get("total_tokens").asDouble();
                lines.add(new double[] {tokens / n.get("throughput").asDouble(), tokens});
            }
        }
        double[] first = lines.get(0);
        double[] last = lines.get(lines.size() - 1);
        double perStep = (last[0] - first[0]) / (lines.size() - 1);
        double tokensPerSecond = (last[1] - first[1]) / (last[0] - first[0]);
        String rank0 = ranks == 1 || independent ? ""
                : Files.readString(work.resolve(name.substring(0, 1) + "-rank0.log"));
        double afterBackward = rank0.isEmpty() ? 0 : lastNumber(rank0, "; ([0-9.]+) ms per step spent after backward");
        double gathers = lastNumber(rank0, "; ([0-9.]+) ms per step spent in weight gathers");
        double reduces = lastNumber(rank0, ", ([0-9.]+) ms in gradient reduces");
        String r = String.format(Locale.ROOT, "%-44s step %.2f s, %.0f tokens/s, %s", name, perStep, tokensPerSecond,
                Double.isNaN(gathers) ? String.format(Locale.ROOT, "sync after backward %.0f ms/step", afterBackward)
                        : String.format(Locale.ROOT, "in weight gathers %.0f ms/step, in gradient reduces %.0f"
                                + " ms/step", gathers, reduces));
        results.add(r);
        System.out.println(r);
        return new double[] {perStep * 1000, tokensPerSecond, afterBackward, gathers, reduces};
    }

    /** The number in the last match of {@code regex}'s group 1 in {@code log}, or NaN. */
    private static double lastNumber(String log, String regex) {
        Matcher m = Pattern.compile(regex).matcher(log);
        double v = Double.NaN;
        while (m.find()) {
            v = Double.parseDouble(m.group(1));
        }
        return v;
    }

    static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).trim();
        } catch (java.io.IOException e) {
            return "?";
        }
    }
}
