package io.sftnative.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.ModelConfig;
import io.sftnative.model.RandomInit;
import io.sftnative.torch.TorchRuntime;

/**
 * Per-rank peak memory of full fine-tuning at world size 2: plain data parallelism (ZeRO stage 0) vs ZeRO stages 1,
 * 2 and 3. A Qwen2-shaped fp32 decoder of ~106M parameters (hidden 768, 8 layers, 12 heads, intermediate 2048,
 * vocab 32000, untied head) is random-initialised once and saved as an HF directory; then, stage by stage, two
 * ranks of the real trainer ({@code train}, child JVMs with torchrun's environment on loopback, 1 thread each) run
 * a few AdamW steps on pre-tokenized rows, while this process samples each rank's VmHWM (peak resident set) from
 * /proc. Not a test: nothing is asserted.
 * <pre>
 * mvn -o -q test-compile && benchmarks/run-java.sh ZeroMemoryBench [--steps 3] [--stages 0,1,2,3] [--seq 128]
 * </pre>
 */
public final class ZeroMemoryBench {
    private ZeroMemoryBench() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> a = new LinkedHashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        }
        Path work = Path.of(a.getOrDefault("dir", "target/zero-bench"));
        int steps = Integer.parseInt(a.getOrDefault("steps", "3"));
        int seq = Integer.parseInt(a.getOrDefault("seq", "128"));
        Path model = work.resolve("model");
        long params = createModel(model);
        Path data = work.resolve("train.jsonl");
        writeData(data, 32, seq);
        System.out.printf(Locale.ROOT, "model: %,d parameters (fp32, %.0f MB of weights)%n", params, params * 4 / 1e6);
        List<long[]> peaks = new ArrayList<>();
        List<Integer> stages = new ArrayList<>();
        for (String s : a.getOrDefault("stages", "0,1,2,3").split(",")) {
            int stage = Integer.parseInt(s.trim());
            long[] kb = runStage(work, model, data, stage, steps, seq);
            stages.add(stage);
            peaks.add(kb);
            System.out.printf(Locale.ROOT, "stage %d: peak RSS rank 0 %,d MB, rank 1 %,d MB%n", stage, kb[0] / 1024,
                    kb[1] / 1024);
        }
        System.out.println("stage  peak RSS rank0 (MB)  rank1 (MB)  saved vs stage 0 (bytes/param, mean of ranks)");
        double base = stages.get(0) == 0 ? (peaks.get(0)[0] + peaks.get(0)[1]) / 2.0 : Double.NaN;
        for (int i = 0; i < stages.size(); i++) {
            double mean = (peaks.get(i)[0] + peaks.get(i)[1]) / 2.0;
            System.out.printf(Locale.ROOT, "%5d  %19d  %10d  %.2f%n", stages.get(i), peaks.get(i)[0] / 1024,
                    peaks.get(i)[1] / 1024, (base - mean) * 1024 / params);
        }
    }

    static ModelConfig config() {
        Map<String, Object> k = new LinkedHashMap<>();
        k.put("model_type", "qwen2");
        k.put("hidden_size", 768);
        k.put("num_hidden_layers", 8);
        k.put("num_attention_heads", 12);
        k.put("num_key_value_heads", 12);
        k.put("intermediate_size", 2048);
        k.put("vocab_size", 32000);
        k.put("tie_word_embeddings", false);
        k.put("max_position_embeddings", 2048);
        return ModelConfig.fromMap(k);
    }

    /** Saves the random-initialised model once (seed 42); returns its parameter count. */
    static long createModel(Path dir) throws IOException {
        TorchRuntime.boot(1);
        try (DecoderModel m = RandomInit.create(config(), 42, ScalarType.Float)) {
            if (!Files.isRegularFile(dir.resolve("config.json"))) {
                Files.createDirectories(dir);
                m.save(dir);
            }
            return m.parameterCount();
        }
    }

    /** Pre-tokenized rows: random ids below the vocabulary, every token a target. */
    static void writeData(Path file, int rows, int seq) throws IOException {
        Random r = new Random(7);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < rows; i++) {
            StringBuilder ids = new StringBuilder();
            for (int t = 0; t < seq; t++) {
                ids.append(t == 0 ? "" : ", ").append(2 + r.nextInt(31990));
            }
            sb.append("{\"input_ids\": [").append(ids).append("], \"labels\": [").append(ids).append("]}\n");
        }
        Files.writeString(file, sb);
    }

    /** Two ranks of {@code train} at ZeRO {@code stage}; returns each rank's peak RSS in kB. */
    static long[] runStage(Path work, Path model, Path data, int stage, int steps, int seq) throws Exception {
        Path out = work.resolve("stage" + stage);
        Files.createDirectories(out);
        Path ds = out.resolve("ds_z" + stage + "_config.json");
        Files.writeString(ds, "{\"train_micro_batch_size_per_gpu\": \"auto\", \"gradient_accumulation_steps\":"
                + " \"auto\", \"gradient_clipping\": \"auto\", \"zero_optimization\": {\"stage\": " + stage + "}}");
        List<String> args = new ArrayList<>(List.of("model_name_or_path=" + model, "dataset=" + data,
                "stage=sft", "finetuning_type=full", "cutoff_len=" + seq, "per_device_train_batch_size=1",
                "gradient_accumulation_steps=1", "max_steps=" + steps, "learning_rate=1e-5", "logging_steps=1",
                "save_strategy=no", "plot_loss=false", "preprocessing_num_workers=1", "overwrite_output_dir=true",
                "output_dir=" + out.resolve("run"), "deepspeed=" + ds));
        int port;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            port = s.getLocalPort();
        }
        List<Process> ranks = new ArrayList<>();
        for (int r = 0; r < 2; r++) {
            List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                    "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
                    "-XX:+UseSerialGC", "-Xmx1g", "-cp", System.getProperty("java.class.path"),
                    "io.sftnative.cli.Main", "train"));
            cmd.addAll(args);
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                    .redirectOutput(out.resolve("rank" + r + ".log").toFile());
            Map<String, String> env = pb.environment();
            env.put("SFT_NATIVE_NO_RELAUNCH", "1");
            env.put("OMP_WAIT_POLICY", "PASSIVE");
            env.put("SFT_THREADS", "1");
            env.put("RANK", String.valueOf(r));
            env.put("LOCAL_RANK", String.valueOf(r));
            env.put("WORLD_SIZE", "2");
            env.put("LOCAL_WORLD_SIZE", "2");
            env.put("MASTER_ADDR", "127.0.0.1");
            env.put("MASTER_PORT", String.valueOf(port));
            ranks.add(pb.start());
        }
        long[] peak = new long[2];
        while (ranks.stream().anyMatch(Process::isAlive)) {
            for (int r = 0; r < 2; r++) {
                peak[r] = Math.max(peak[r], hwmKb(ranks.get(r).pid()));
            }
            Thread.sleep(100);
        }
        for (int r = 0; r < 2; r++) {
            if (ranks.get(r).exitValue() != 0) {
                throw new IllegalStateException("stage " + stage + " rank " + r + " failed: see "
                        + out.resolve("rank" + r + ".log"));
            }
        }
        return peak;
    }

    /** VmHWM of a live process in kB (0 once it is gone). */
    static long hwmKb(long pid) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", ""));
                }
            }
        } catch (IOException | RuntimeException e) {
            return 0;
        }
        return 0;
    }
}
