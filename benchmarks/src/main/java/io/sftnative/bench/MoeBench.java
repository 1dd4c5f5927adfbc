package io.sftnative.bench;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.batch.Batch;
import io.sftnative.loss.MemoryEfficientLoss;
import io.sftnative.loss.MicroBatch;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.ModelConfig;
import io.sftnative.model.RandomInit;
import io.sftnative.model.Tensors;
import io.sftnative.optim.AdamW;
import io.sftnative.torch.TorchRuntime;

/**
 * Mixture of experts vs dense with the same active parameters: full fp32 training steps (forward, fused LM-head
 * loss, the load-balancing loss for the MoE, backward, AdamW over every parameter) of
 * <ul>
 * <li>a qwen3_moe model: hidden 512, 8 layers, 8 heads, vocab 32000, 8 experts of 640 per layer, top-2
 * (~104M parameters, ~59M active), and</li>
 * <li>a qwen3 model with the same shapes and a dense MLP of 1280 = 2 x 640 (the active expert width).</li>
 * </ul>
 * Each runs in a child JVM of its own, one after the other, so that each peak RSS (VmHWM) is its own; the parent
 * prints both side by side and the step-time ratio. Not a test: nothing is asserted.
 * <pre>
 * benchmarks/run-java.sh MoeBench [--threads 2] [--steps 3] [--warmup 1] [--batch 2] [--seq 256]
 * </pre>
 */
public final class MoeBench {
    private MoeBench() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> a = new LinkedHashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        }
        if (a.containsKey("model")) {
            runOne(a);
            return;
        }
        List<String> lines = new ArrayList<>();
        for (String model : new String[] {"dense", "moe"}) {
            List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                    "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-Xmx4g", "-cp",
                    System.getProperty("java.class.path"), MoeBench.class.getName(), "--model", model));
            a.forEach((k, v) -> cmd.addAll(List.of("--" + k, v)));
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(),
                    StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null;) {
                    System.out.println("  [" + model + "] " + line);
                    if (line.startsWith("RESULT ")) {
                        lines.add(line.substring(7));
                    }
                }
            }
            if (p.waitFor() != 0) {
                throw new IllegalStateException(model + " run failed");
            }
        }
        System.out.println("model   params(M)  active(M)  step(s)  tokens/s  peak RSS (MB)");
        double[] step = new double[2];
        for (int i = 0; i < lines.size(); i++) {
            String[] f = lines.get(i).split(" ");
            step[i] = Double.parseDouble(f[3]);
            System.out.printf("%-7s %9s  %9s  %7s  %8s  %s%n", f[0], f[1], f[2], f[3], f[4], f[5]);
        }
        System.out.printf("MoE / dense step time: %.2fx (goal <= 1.5x)%n", step[1] / step[0]);
    }

    static ModelConfig config(boolean moe) {
        Map<String, Object> k = new LinkedHashMap<>();
        k.put("model_type", moe ? "qwen3_moe" : "qwen3");
        k.put("hidden_size", 512);
        k.put("num_hidden_layers", 8);
        k.put("num_attention_heads", 8);
        k.put("num_key_value_heads", 8);
        k.put("head_dim", 64);
        k.put("vocab_size", 32000);
        k.put("tie_word_embeddings", false);
        k.put("intermediate_size", 1280);
        if (moe) {
            k.put("num_experts", 8);
            k.put("num_experts_per_tok", 2);
            k.put("moe_intermediate_size", 640);
            k.put("norm_topk_prob", true);
            k.put("router_aux_loss_coef", 0.001);
        }
        return ModelConfig.fromMap(k);
    }

    static void runOne(Map<String, String> a) {
        boolean moe = a.get("model").equals("moe");
        int threads = Integer.parseInt(a.getOrDefault("threads", "2"));
        int steps = Integer.parseInt(a.getOrDefault("steps", "3"));
        int warmup = Integer.parseInt(a.getOrDefault("warmup", "1"));
        int batch = Integer.parseInt(a.getOrDefault("batch", "2"));
        int seq = Integer.parseInt(a.getOrDefault("seq", "256"));
        TorchRuntime.boot(threads);
        ModelConfig config = config(moe);
        try (DecoderModel model = RandomInit.create(config, 7, ScalarType.Float)) {
            model.setRequiresGrad(true);
            long params = model.parameterCount();
            long active = params;
            if (moe) {
                long expert = 3L * config.hiddenSize() * model.moe().expertIntermediate();
                active -= (long) config.numHiddenLayers() * (model.moe().numExperts() - model.moe().topK()) * expert;
            }
            AdamW opt = new AdamW(model.parameters(), 0.0, n -> false, 0.9, 0.999, 1e-8).fused(true);
            MemoryEfficientLoss loss = new MemoryEfficientLoss(false, true, 0);
            long n = (long) batch * seq;
            long[] ids;
            try (PointerScope s = new PointerScope()) {
                ids = Tensors.toLongs(torch.randint(config.vocabSize(), new long[] {n},
                        new TensorOptions(ScalarType.Long)));
            }
            long[] mask = new long[(int) n];
            long[] pos = new long[(int) n];
            java.util.Arrays.fill(mask, 1);
            for (int i = 0; i < n; i++) {
                pos[i] = i % seq;
            }
            Batch b = new Batch(batch, seq, ids, ids.clone(), mask, pos, (long) batch * (seq - 1), false);
            double total = 0;
            for (int i = 0; i < warmup + steps; i++) {
                long t0 = System.nanoTime();
                double l;
                try (PointerScope step = new PointerScope()) {
                    MicroBatch mb = MicroBatch.upload(b, model);
                    l = loss.forwardBackward(model, mb, mb.targetTokens()) / mb.targetTokens();
                    opt.step(1e-4);
                    opt.zeroGrad();
                }
                double sec = (System.nanoTime() - t0) / 1e9;
                double aux = model.routerLog() != null ? model.routerLog().takeStepAux() : Double.NaN;
                System.out.printf("step %d: %.3f s, loss %.4f%s%n", i, sec, l,
                        Double.isNaN(aux) ? "" : String.format(", aux_loss %.4f", aux));
                if (i >= warmup) {
                    total += sec;
                }
            }
            double perStep = total / steps;
            System.out.printf("RESULT %s %.1f %.1f %.3f %.0f %d%n", moe ? "moe" : "dense", params / 1e6,
                    active / 1e6, perStep, n / perStep, ProcStatus.kb("VmHWM") / 1024);
        }
    }

}
