package io.sftnative.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.checkpoint.TorchRng;
import io.sftnative.loss.MemoryEfficientLoss;
import io.sftnative.lora.LoraAdapters;
import io.sftnative.lora.LoraSpec;
import io.sftnative.model.AttentionContext;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.ModelConfig;
import io.sftnative.model.RandomInit;
import io.sftnative.optim.AdamW;
import io.sftnative.quant.QuantizationSpec;
import io.sftnative.quant.QuantizedModels;
import io.sftnative.torch.Autocast;
import io.sftnative.torch.TorchRuntime;

/**
 * Memory and time of LoRA vs QLoRA training steps on a random-initialised Qwen2-shaped model of about 0.5B parameters
 * (Qwen2.5-0.5B's shapes: hidden 896, 24 layers, 14 heads / 2 KV heads, intermediate 4864, vocab 151936, tied
 * embeddings), one configuration per JVM so that each process's peak resident memory (VmHWM) is its own.
 *
 * <pre>
 * benchmarks/run-java.sh QloraBench prepare DIR                     # writes the bf16 checkpoint once (~1 GB)
 * benchmarks/run-java.sh QloraBench CONFIG DIR [--seq 1024] [--warmup 1] [--steps 2] [--threads 2]
 *   CONFIG: lora-bf16 | qlora-nf4 | qlora-nf4-ckpt-fused | lora-bf16-ckpt-fused | qlora-nf4-fused | ...
 *           (lora|qlora-nf4|qlora-int8)[-ckpt][-fused]
 * </pre>
 *
 * <p>Each step is the trainer's: LoRA r=8, alpha 16, dropout 0.05 on every linear layer (fp32 adapters), bf16
 * autocast, {@link MemoryEfficientLoss} (plain = the materialised-logits loss), AdamW. Batch 1, every token a target.
 * Reported: step times, peak RSS of the whole process (VmHWM, includes loading), peak RSS during the steps only (VmHWM
 * reset after loading; Linux clear_refs), RSS after loading, bytes per parameter of the base weights, load average.
 */
public final class QloraBench {
    private QloraBench() {}

    static Map<String, Object> qwen2Shape() {
        Map<String, Object> k = new LinkedHashMap<>();
        k.put("model_type", "qwen2");
        k.put("hidden_size", 896);
        k.put("num_hidden_layers", 24);
        k.put("num_attention_heads", 14);
        k.put("num_key_value_heads", 2);
        k.put("intermediate_size", 4864);
        k.put("vocab_size", 151936);
        k.put("max_position_embeddings", 32768);
        k.put("rope_theta", 1000000.0);
        k.put("rms_norm_eps", 1e-6);
        k.put("tie_word_embeddings", true);
        k.put("torch_dtype", "bfloat16");
        return k;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: QloraBench prepare DIR | QloraBench CONFIG DIR [--seq N] [--warmup N]"
                    + " [--steps N] [--threads N]");
            System.exit(2);
        }
        Map<String, String> opt = new LinkedHashMap<>();
        for (int i = 2; i + 1 < args.length; i += 2) {
            opt.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        }
        int threads = Integer.parseInt(opt.getOrDefault("threads", "2"));
        TorchRuntime.boot(threads);
        Path dir = Path.of(args[1]);
        if (args[0].equals("prepare")) {
            prepare(dir);
            return;
        }
        run(args[0], dir, Integer.parseInt(opt.getOrDefault("seq", "1024")),
                Integer.parseInt(opt.getOrDefault("warmup", "1")), Integer.parseInt(opt.getOrDefault("steps", "2")),
                threads);
    }

    static void prepare(Path dir) throws IOException {
        ModelConfig config = ModelConfig.fromMap(qwen2Shape());
        Files.createDirectories(dir);
        try (DecoderModel m = RandomInit.create(config, 1234, ScalarType.BFloat16)) {
            m.save(dir);
            System.out.printf(Locale.ROOT, "wrote %s: %,d parameters%n", dir, m.parameterCount());
        }
    }

    static void run(String name, Path dir, int seq, int warmup, int steps, int threads) throws IOException {
        String[] parts = name.split("-");
        boolean ckpt = name.contains("-ckpt");
        boolean fused = name.contains("-fused");
        QuantizationSpec spec = name.startsWith("qlora-nf4") ? QuantizationSpec.nf4()
                : name.startsWith("qlora-int8") ? new QuantizationSpec(8, io.sftnative.quant.QuantType.NF4, false, 64)
                : null;
        if (!parts[0].equals("lora") && spec == null) {
            throw new IllegalArgumentException("unknown configuration " + name);
        }
        String load0 = loadAverage();
        long rssBoot = kb("VmRSS"); // JVM + libtorch loaded, nothing of the model yet
        long t0 = System.nanoTime();
        DecoderModel model = QuantizedModels.load(dir, ScalarType.BFloat16, spec, w -> System.err.println(w));
        double loadSeconds = (System.nanoTime() - t0) / 1e9;
        QuantizedModels.Summary summary = QuantizedModels.summary(model);
        long rssAfterLoad = kb("VmRSS");
        long hwmLoad = kb("VmHWM");
        List<Double> times = new ArrayList<>();
        List<Double> cpuTimes = new ArrayList<>();
        double lossSum = 0;
        long hwmSteps;
        try (LoraAdapters lora = LoraAdapters.attach(model, new LoraSpec(8, 16, 0.05, List.of("all"), false,
                List.of()), 42);
                AdamW opt = AdamW.withHfGroups(lora.trainableParameters(), 0.0, 0.9, 0.999, 1e-8)) {
            lora.setTraining(true);
            MemoryEfficientLoss loss = new MemoryEfficientLoss(ckpt, fused, 0, Autocast.BF16);
            TorchRng.manualSeed(7);
            boolean reset = resetPeak();
            long rssBefore = kb("VmRSS");
            for (int s = 0; s < warmup + steps; s++) {
                long t = System.nanoTime();
                long c = cpuNanos();
                try (PointerScope scope = new PointerScope()) {
                    Generator g = torch.make_generator_cpu(100 + s);
                    Tensor ids = torch.randint(0, 151936, new long[] {1, seq}, new GeneratorOptional(g),
                            new TensorOptions(ScalarType.Long)); // (1, T)
                    AttentionContext ctx = model.causalContext(1, seq);
                    lossSum = loss.forwardBackward(model, ids, ids, ctx, seq - 1);
                    opt.step(1e-4);
                    opt.zeroGrad();
                }
                double sec = (System.nanoTime() - t) / 1e9;
                double cpu = (cpuNanos() - c) / 1e9;
                System.out.printf(Locale.ROOT, "%s step %d: %.2f s wall, %.2f s CPU, loss %.4f, load %s%n", name, s,
                        sec, cpu, lossSum / (seq - 1), loadAverage());
                if (s >= warmup) {
                    times.add(sec);
                    cpuTimes.add(cpu);
                }
            }
            hwmSteps = reset ? kb("VmHWM") : -1;
            if (!reset) {
                System.err.println("clear_refs not writable: peak during steps not measured separately");
            }
            System.out.printf(Locale.ROOT, "RESULT %s: load %.1f s, steps %s s (mean %.2f s; CPU %s s, mean %.2f s), peak RSS %d MiB (process),"
                    + " peak RSS during steps %d MiB (RSS before steps %d MiB), RSS after load %d MiB, peak while"
                    + " loading %d MiB, RSS after boot %d MiB; base weights %.3f bytes/param (%s); loss step %s; load average %s -> %s;"
                    + " threads %d, seq %d%n", name, loadSeconds, fmt(times), mean(times), fmt(cpuTimes), mean(cpuTimes),
                    Math.max(kb("VmHWM"), hwmLoad) / 1024, hwmSteps / 1024, rssBefore / 1024,
                    rssAfterLoad / 1024, hwmLoad / 1024, rssBoot / 1024, summary.bytesPerParam(), summary, loss.name(), load0,
                    loadAverage(), threads, seq);
        } finally {
            model.close();
        }
    }

    static String fmt(List<Double> v) {
        List<String> s = new ArrayList<>();
        for (double d : v) {
            s.add(String.format(Locale.ROOT, "%.2f", d));
        }
        return String.join(", ", s);
    }

    static double mean(List<Double> v) {
        return v.stream().mapToDouble(Double::doubleValue).average().orElse(Double.NaN);
    }

    /** CPU time of the whole process (all threads). */
    static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
                .getOperatingSystemMXBean()).getProcessCpuTime();
    }

    /** kB field of /proc/self/status (VmRSS, VmHWM), or -1. */
    static long kb(String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(field + ":")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", ""));
                }
            }
        } catch (IOException e) {
            return -1;
        }
        return -1;
    }

    /** Resets VmHWM to the current RSS (Linux >= 4.0); false when not permitted. */
    static boolean resetPeak() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).split(" ")[0];
        } catch (IOException e) {
            return "?";
        }
    }
}
