package io.sftnative.bench;

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
import io.sftnative.torch.Autocast;
import io.sftnative.torch.TorchRuntime;

/**
 * bf16 vs fp32 training steps of the trainer's own step ({@link MemoryEfficientLoss} with the fused linear
 * cross-entropy, AdamW) on DecoderStepBench's 58M Qwen2-shaped model, as {@code bf16: true} builds it: full
 * fine-tuning keeps fp32 weights and runs the forward under bf16 autocast; LoRA holds the frozen base in bf16 with
 * fp32 adapters (r 16, every linear layer) under autocast. The two precisions alternate step by step in one process,
 * so that both see the same machine load; reported per precision: wall and process CPU seconds per step (median of
 * the timed steps) and the mean loss of the same batches.
 *
 * <pre>
 * benchmarks/run-java.sh Bf16StepBench [--mode full|lora] [--batch 2] [--seq 512] [--steps 3] [--warmup 1]
 *     [--threads 2] [--ckpt] [--only fp32|bf16]
 * </pre>
 */
public final class Bf16StepBench {
    private Bf16StepBench() {}

    public static void main(String[] args) {
        Map<String, String> a = DecoderStepBench.parse(args);
        String mode = a.getOrDefault("mode", "full");
        int batch = Integer.parseInt(a.getOrDefault("batch", "2"));
        int seq = Integer.parseInt(a.getOrDefault("seq", "512"));
        int steps = Integer.parseInt(a.getOrDefault("steps", "3"));
        int warmup = Integer.parseInt(a.getOrDefault("warmup", "1"));
        int threads = Integer.parseInt(a.getOrDefault("threads", "2"));
        boolean ckpt = a.containsKey("ckpt");
        String only = a.get("only");
        if (!mode.equals("full") && !mode.equals("lora")) {
            throw new IllegalArgumentException("--mode must be full or lora, got " + mode);
        }
        Map<String, Object> keys = new LinkedHashMap<>();
        keys.put("model_type", "qwen2");
        keys.put("hidden_size", 512);
        keys.put("num_hidden_layers", 8);
        keys.put("num_attention_heads", 8);
        keys.put("num_key_value_heads", 8);
        keys.put("intermediate_size", 1408);
        keys.put("vocab_size", 32000);
        keys.put("tie_word_embeddings", false);
        keys.put("rope_theta", 1000000.0);
        ModelConfig config = ModelConfig.fromMap(keys);
        TorchRuntime.Info rt = TorchRuntime.boot(threads);
        System.out.printf(Locale.ROOT, "Bf16StepBench mode=%s batch=%dx%d ckpt=%s threads=%d cpu=%s load=%s%n", mode,
                batch, seq, ckpt, rt.threads(), DecoderStepBench.cpuName(), DecoderStepBench.loadAverage());
        List<Run> runs = new ArrayList<>();
        for (boolean bf16 : new boolean[] {false, true}) {
            if (only == null || only.equals(bf16 ? "bf16" : "fp32")) {
                runs.add(new Run(config, mode.equals("lora"), bf16, ckpt));
            }
        }
        try {
            for (int s = 0; s < warmup + steps; s++) {
                for (Run r : runs) {
                    r.step(s, batch, seq, s >= warmup);
                }
            }
            for (Run r : runs) {
                r.report(batch * (long) seq);
            }
            if (runs.size() == 2) {
                System.out.printf(Locale.ROOT, "RESULT bf16/fp32 tokens/s (wall) %.2f, per CPU second %.2f; load %s%n",
                        runs.get(0).median(runs.get(0).wall) / runs.get(1).median(runs.get(1).wall),
                        runs.get(0).median(runs.get(0).cpu) / runs.get(1).median(runs.get(1).cpu),
                        DecoderStepBench.loadAverage());
            }
        } finally {
            for (Run r : runs) {
                r.close();
            }
        }
    }

    /** One model + optimizer in one precision. */
    private static final class Run implements AutoCloseable {
        final String name;
        final DecoderModel model;
        final LoraAdapters lora;
        final AdamW opt;
        final MemoryEfficientLoss loss;
        final List<Double> wall = new ArrayList<>();
        final List<Double> cpu = new ArrayList<>();
        final List<Double> optimizerSeconds = new ArrayList<>();
        double lossSum;
        int lossCount;

        Run(ModelConfig config, boolean isLora, boolean bf16, boolean ckpt) {
            name = (isLora ? "lora" : "full") + (bf16 ? " bf16" : " fp32");
            // as TrainableModel: the frozen LoRA base is bf16 under bf16: true, full fine-tuning keeps fp32 weights
            model = RandomInit.create(config, 1234, isLora && bf16 ? ScalarType.BFloat16 : ScalarType.Float);
            if (isLora) {
                lora = LoraAdapters.attach(model, new LoraSpec(16, 32, 0.0, List.of("all"), false, List.of()), 42);
                lora.setTraining(true);
                opt = AdamW.withHfGroups(lora.trainableParameters(), 0.0, 0.9, 0.999, 1e-8);
            } else {
                lora = null;
                model.setRequiresGrad(true);
                opt = new AdamW(model.parameters(), 0.0, n -> false, 0.9, 0.999, 1e-8).fused(true);
            }
            loss = new MemoryEfficientLoss(ckpt, true, 0, bf16 ? Autocast.BF16 : Autocast.OFF);
        }

        void step(int s, int batch, int seq, boolean timed) {
            long t = System.nanoTime();
            long c = QloraBench.cpuNanos();
            double l;
            long t1;
            try (PointerScope scope = new PointerScope()) {
                TorchRng.manualSeed(7);
                Generator g = torch.make_generator_cpu(100 + s);
                Tensor ids = torch.randint(0, model.config().vocabSize(), new long[] {batch, seq},
                        new GeneratorOptional(g), new TensorOptions(ScalarType.Long)); // (B, T)
                AttentionContext ctx = model.causalContext(batch, seq);
                l = loss.forwardBackward(model, ids, ids, ctx, batch * (seq - 1.0)) / (batch * (seq - 1.0));
                t1 = System.nanoTime();
                opt.step(1e-5);
                opt.zeroGrad();
            }
            double sec = (System.nanoTime() - t) / 1e9;
            double cs = (QloraBench.cpuNanos() - c) / 1e9;
            System.out.printf(Locale.ROOT, "%s step %d%s: %.2f s wall (optimizer %.2f s), %.2f s CPU, loss %.5f,"
                    + " load %s%n", name, s, timed ? "" : " (warm-up)", sec, (System.nanoTime() - t1) / 1e9, cs, l,
                    DecoderStepBench.loadAverage());
            if (timed) {
                wall.add(sec);
                cpu.add(cs);
                optimizerSeconds.add((System.nanoTime() - t1) / 1e9);
                lossSum += l;
                lossCount++;
            }
        }

        double median(List<Double> v) {
            List<Double> c = new ArrayList<>(v);
            c.sort(null);
            return c.get(c.size() / 2);
        }

        void report(long tokens) {
            System.out.printf(Locale.ROOT, "RESULT %s: median %.2f s wall (%.0f tokens/s), %.2f s CPU per step,"
                    + " optimizer %.2f s; mean loss %.5f%n", name, median(wall), tokens / median(wall), median(cpu),
                    median(optimizerSeconds), lossSum / lossCount);
        }

        @Override
        public void close() {
            opt.close();
            if (lora != null) {
                lora.close();
            }
            model.close();
        }
    }
}
