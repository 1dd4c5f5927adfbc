package io.sftnative.bench;

import java.lang.management.ManagementFactory;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.loss.CausalLmLoss;
import io.sftnative.loss.FusedCrossEntropyLoss;
import io.sftnative.model.AttentionContext;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.ModelConfig;
import io.sftnative.model.RandomInit;
import io.sftnative.torch.TorchRuntime;

/**
 * Times full-parameter fp32 training steps (forward + causal-LM loss + backward + AdamW) of a Qwen2-shaped decoder
 * and reports tokens/s and MFU against the fp32 GEMM rate measured in the same process.
 *
 * <pre>
 * OMP_WAIT_POLICY=PASSIVE java --enable-native-access=ALL-UNNAMED -cp target/sft-native.jar \
 *     io.sftnative.bench.DecoderStepBench [--threads 2] [--steps 4] [--warmup 1] [--batch 4] [--seq 512] \
 *     [--hidden 512] [--layers 8] [--heads 8] [--kv-heads 8] [--intermediate 1408] [--vocab 32000] [--profile]
 *     [--loss fused|plain] [--optimizer adamw-fused|adamw|libtorch]
 * </pre>
 *
 * <p>Defaults are what {@code train} runs for this model: the fused linear cross-entropy (LM head and loss chunk by
 * chunk, logits never whole) and {@code optim: adamw_torch_fused} (io.sftnative.optim.AdamW with the native one-pass
 * kernel). {@code --loss plain} materialises the (B, T, V) logits and calls CausalLmLoss; {@code --optimizer adamw}
 * is the same optimizer on libtorch ops, {@code libtorch} is libtorch's own {@code torch::optim::AdamW}.
 *
 * <p>Model FLOPs per step follow PaLM (appendix B): {@code 6 * N * tokens + 12 * L * d_attn * T * tokens}, where N
 * counts the weights of all matrix multiplications (q/k/v/o, gate/up/down, lm_head; not the embedding lookup) and
 * the attention term counts the full T x T score matrix. Causal attention only needs half of it; the "causal" MFU
 * counts that half. The denominator is the best fp32 GEMM rate of this process on the same threads (a 2048^3
 * {@code torch.mm}), measured before and after the steps, so a machine shared with other jobs lowers both.
 */
public final class DecoderStepBench {
    private DecoderStepBench() {}

    public static void main(String[] args) {
        Map<String, String> a = parse(args);
        int threads = Integer.parseInt(a.getOrDefault("threads", "2"));
        int steps = Integer.parseInt(a.getOrDefault("steps", "4"));
        int warmup = Integer.parseInt(a.getOrDefault("warmup", "1"));
        int batch = Integer.parseInt(a.getOrDefault("batch", "4"));
        int seq = Integer.parseInt(a.getOrDefault("seq", "512"));
        boolean profile = a.containsKey("profile");
        boolean fusedLoss = a.getOrDefault("loss", "fused").equals("fused");
        String optimizer = a.getOrDefault("optimizer", "adamw-fused");
        if (!List.of("adamw-fused", "adamw", "libtorch").contains(optimizer)) {
            throw new IllegalArgumentException("--optimizer must be adamw-fused, adamw or libtorch, got " + optimizer);
        }
        Map<String, Object> keys = new LinkedHashMap<>();
        keys.put("model_type", "qwen2");
        keys.put("hidden_size", Integer.parseInt(a.getOrDefault("hidden", "512")));
        keys.put("num_hidden_layers", Integer.parseInt(a.getOrDefault("layers", "8")));
        keys.put("num_attention_heads", Integer.parseInt(a.getOrDefault("heads", "8")));
        keys.put("num_key_value_heads", Integer.parseInt(a.getOrDefault("kv-heads", "8")));
        keys.put("intermediate_size", Integer.parseInt(a.getOrDefault("intermediate", "1408")));
        keys.put("vocab_size", Integer.parseInt(a.getOrDefault("vocab", "32000")));
        keys.put("tie_word_embeddings", false);
        keys.put("rope_theta", 1000000.0);
        ModelConfig config = ModelConfig.fromMap(keys);

        TorchRuntime.Info rt = TorchRuntime.boot(threads);
        System.out.printf("sft-native DecoderStepBench  %s  threads=%d  OMP_WAIT_POLICY=%s  cpu=%s  load=%s%n",
                Instant.now(), rt.threads(), rt.ompWaitPolicy(), cpuName(), loadAverage());

        GemmProbe gemm = new GemmProbe();
        for (int i = 0; i < 5; i++) {
            gemm.sample();
        }
        System.out.printf("fp32 GEMM rate (2048^3 mm) so far: %.1f GFLOP/s%n", gemm.best() / 1e9);

        long tokens = (long) batch * seq;
        try (DecoderModel model = RandomInit.create(config, 1234, ScalarType.Float)) {
            model.setRequiresGrad(true);
            long matmulWeights = matmulWeights(config);
            double attn = 12.0 * config.numHiddenLayers() * config.numAttentionHeads() * config.headDim() * seq;
            double flopsPalm = (6.0 * matmulWeights + attn) * tokens;
            double flopsCausal = (6.0 * matmulWeights + attn / 2) * tokens;
            System.out.printf("model: qwen2 hidden=%d layers=%d heads=%d/%d intermediate=%d vocab=%d -> %,d parameters"
                    + " (%,d in matmuls); batch %dx%d = %d tokens; %.1f GFLOP/step (PaLM), %.1f (causal)%n",
                    config.hiddenSize(), config.numHiddenLayers(), config.numAttentionHeads(),
                    config.numKeyValueHeads(), config.intermediateSize(), config.vocabSize(), model.parameterCount(),
                    matmulWeights, batch, seq, tokens, flopsPalm / 1e9, flopsCausal / 1e9);

            System.out.printf("loss: %s; optimizer: %s%n", fusedLoss ? "fused linear cross-entropy" : "plain (full"
                    + " logits + CausalLmLoss)", optimizer);
            TensorVector params = new TensorVector();
            model.parameters().values().forEach(params::push_back);
            AdamWOptions opts = new AdamWOptions(1e-4);
            opts.weight_decay().put(0.0);
            AdamW adamw = optimizer.equals("libtorch") ? new AdamW(params, opts) : null;
            io.sftnative.optim.AdamW ours = optimizer.equals("libtorch") ? null
                    : new io.sftnative.optim.AdamW(model.parameters(), 0.0, n -> false, 0.9, 0.999, 1e-8)
                            .fused(optimizer.equals("adamw-fused"));
            FusedCrossEntropyLoss fusedCe = new FusedCrossEntropyLoss(0);
            Tensor ids;
            try (PointerScope s = new PointerScope()) {
                ids = torch.randint(config.vocabSize(), new long[] {batch, seq},
                        new TensorOptions(ScalarType.Long)); // (B, T)
                ids.retainReference();
            }
            List<Double> times = new ArrayList<>();
            double[] stepPhase = new double[4];
            double[] cleanPhase = new double[4];
            double[] cpuTotal = new double[2];
            List<Double> cleanTimes = new ArrayList<>();
            for (int i = 0; i < warmup + steps; i++) {
                double[] c0 = cpuSeconds();
                double busy0 = machineBusySeconds();
                long t0 = System.nanoTime();
                double loss;
                try (PointerScope step = new PointerScope()) {
                    AttentionContext ctx = model.causalContext(batch, seq);
                    long t1;
                    long t2;
                    if (fusedLoss) {
                        Tensor hidden = model.hidden(ids, ctx); // (B, T, H) after the final norm
                        t1 = System.nanoTime();
                        t2 = t1; // the fused loss runs inside the backward phase: counted there
                        // LM head + loss + their backward chunk by chunk; then backward through the decoder
                        loss = fusedCe.backward(hidden, model.lmHeadWeight(), ids, 0).loss();
                    } else {
                        Tensor logits = model.forward(ids, ctx); // (B, T, V)
                        t1 = System.nanoTime();
                        Tensor l = CausalLmLoss.mean(logits, ids);
                        loss = l.item_double();
                        t2 = System.nanoTime();
                        l.backward();
                    }
                    long t3 = System.nanoTime();
                    if (ours != null) {
                        ours.step(1e-4);
                        ours.zeroGrad();
                    } else {
                        adamw.step();
                        adamw.zero_grad(true);
                    }
                    long t4 = System.nanoTime();
                    stepPhase[0] = (t1 - t0) / 1e9;
                    stepPhase[1] = (t2 - t1) / 1e9;
                    stepPhase[2] = (t3 - t2) / 1e9;
                    stepPhase[3] = (t4 - t3) / 1e9;
                }
                double sec = (System.nanoTime() - t0) / 1e9;
                double[] c1 = cpuSeconds();
                gemm.sample(); // the GEMM rate right after each step, under the same conditions
                double others = (machineBusySeconds() - busy0 - (c1[0] - c0[0]) - (c1[1] - c0[1]))
                        / (sec * Runtime.getRuntime().availableProcessors()); // share of the machine used by others
                System.out.printf("step %d%s: %.3f s  loss %.4f  %.0f tokens/s  cpu user %.2f s sys %.2f s  minor faults"
                        + " %.0f  other processes %.0f%%%n", i, i < warmup ? " (warm-up)" : "", sec, loss,
                        tokens / sec, c1[0] - c0[0], c1[1] - c0[1], c1[2] - c0[2], 100 * Math.max(0, others));
                if (i >= warmup) {
                    times.add(sec);
                    if (others < CLEAN) {
                        cleanTimes.add(sec);
                        for (int ph = 0; ph < 4; ph++) {
                            cleanPhase[ph] += stepPhase[ph];
                        }
                    }
                    cpuTotal[0] += c1[0] - c0[0];
                    cpuTotal[1] += c1[1] - c0[1];
                }
            }
            ids.releaseReference();
            if (adamw != null) {
                adamw.close();
            } else {
                ours.close();
            }
            for (int i = 0; i < 5; i++) {
                gemm.sample();
            }
            double peak = gemm.best();
            boolean clean = !cleanTimes.isEmpty();
            double median = median(clean ? cleanTimes : times);
            System.out.printf("%d of %d timed steps ran while other processes used < %.0f%% of the CPUs%s%n",
                    cleanTimes.size(), times.size(), 100 * CLEAN, clean ? "; RESULT uses those"
                            : "; none did, RESULT uses all steps and is contended");
            if (clean) {
                int n = cleanTimes.size();
                System.out.printf("phases of the clean steps (mean s): forward %.3f  loss %.3f  backward %.3f  adamw"
                        + " %.3f%n", cleanPhase[0] / n, cleanPhase[1] / n, cleanPhase[2] / n, cleanPhase[3] / n);
            }
            System.out.printf("fp32 GEMM rate: best %.1f GFLOP/s of %d samples (%d clean)%s%n", peak / 1e9,
                    gemm.samples, gemm.cleanSamples, gemm.cleanSamples == 0 ? " - contended" : "");
            System.out.printf("RESULT%s median step %.3f s  %.0f tokens/s  achieved %.1f GFLOP/s  MFU %.1f%% (PaLM"
                    + " convention)  %.1f%% (causal attention counted)  load %s%n", clean ? "" : " (contended)",
                    median, tokens / median, flopsPalm / median / 1e9, 100 * flopsPalm / median / peak,
                    100 * flopsCausal / median / peak, loadAverage());
            double flopsAllParams = 6.0 * model.parameterCount() * tokens;
            System.out.printf("(for comparison only: 6 x all %,d parameters x tokens, embedding lookup included,"
                    + " would read as %.1f%% MFU)%n", model.parameterCount(), 100 * flopsAllParams / median / peak);
            double cpuPerStep = (cpuTotal[0] + cpuTotal[1]) / steps;
            System.out.printf("cpu per step: user %.2f s, sys %.2f s; if all %d threads were ours: %.0f%% of the"
                    + " wall time busy (below 100%% means waiting: other jobs on the machine or serial parts)%n",
                    cpuTotal[0] / steps, cpuTotal[1] / steps, threads, 100 * cpuPerStep / threads / median);
            gemm.close();
            if (profile) {
                modelGemmRates(config, batch * seq);
            }
        }
    }

    /** Weights that take part in a matmul per token: every linear projection and lm_head. */
    static long matmulWeights(ModelConfig c) {
        long h = c.hiddenSize();
        long q = (long) c.numAttentionHeads() * c.headDim();
        long kv = (long) c.numKeyValueHeads() * c.headDim();
        long perLayer = h * q + 2 * h * kv + q * h + 3 * h * c.intermediateSize();
        return perLayer * c.numHiddenLayers() + (long) c.vocabSize() * h;
    }

    /**
     * Samples the fp32 GEMM rate of a 2048 x 2048 x 2048 matmul; the peak is the best sample taken while other
     * processes left the CPUs alone (or the best of all samples if that never happened).
     */
    static final class GemmProbe {
        private static final int N = 2048;
        private final Tensor x;
        private final Tensor y;
        double bestClean;
        double bestAny;
        int samples;
        int cleanSamples;

        GemmProbe() {
            try (PointerScope s = new PointerScope()) {
                x = torch.randn(N, N).retainReference();
                y = torch.randn(N, N).retainReference();
                torch.mm(x, y); // warm-up
            }
        }

        void sample() {
            try (PointerScope s = new PointerScope()) {
                double[] c0 = cpuSeconds();
                double busy0 = machineBusySeconds();
                long t0 = System.nanoTime();
                torch.mm(x, y);
                double sec = (System.nanoTime() - t0) / 1e9;
                double[] c1 = cpuSeconds();
                double others = (machineBusySeconds() - busy0 - (c1[0] - c0[0]) - (c1[1] - c0[1]))
                        / (sec * Runtime.getRuntime().availableProcessors());
                double rate = 2.0 * N * N * N / sec;
                samples++;
                bestAny = Math.max(bestAny, rate);
                if (others < CLEAN) {
                    cleanSamples++;
                    bestClean = Math.max(bestClean, rate);
                }
            }
        }

        double best() {
            return cleanSamples > 0 ? bestClean : bestAny;
        }

        void close() {
            x.releaseReference();
            y.releaseReference();
        }
    }

    /** With --profile: the rate of the model's own GEMM shapes (forward and the two backward products). */
    static void modelGemmRates(ModelConfig c, long m) {
        long h = c.hiddenSize();
        long[][] shapes = {{m, h, h}, {m, h, 3 * h}, {m, h, c.intermediateSize()}, {m, c.intermediateSize(), h},
                {m, h, c.vocabSize()}};
        for (long[] s : shapes) {
            try (PointerScope scope = new PointerScope()) {
                Tensor x = torch.randn(s[0], s[1]);
                Tensor w = torch.randn(s[2], s[1]);
                Tensor g = torch.randn(s[0], s[2]);
                double[] best = new double[3];
                for (int i = 0; i < 4; i++) {
                    try (PointerScope r = new PointerScope()) {
                        long t0 = System.nanoTime();
                        torch.linear(x, w); // forward: (m, k) x (k, n)^T
                        long t1 = System.nanoTime();
                        torch.mm(g, w); // grad input
                        long t2 = System.nanoTime();
                        torch.mm(g.t(), x); // grad weight
                        long t3 = System.nanoTime();
                        double f = 2.0 * s[0] * s[1] * s[2];
                        best[0] = Math.max(best[0], f / ((t1 - t0) / 1e9));
                        best[1] = Math.max(best[1], f / ((t2 - t1) / 1e9));
                        best[2] = Math.max(best[2], f / ((t3 - t2) / 1e9));
                    }
                }
                System.out.printf("gemm %s: forward %.1f  grad-input %.1f  grad-weight %.1f GFLOP/s%n",
                        Arrays.toString(s), best[0] / 1e9, best[1] / 1e9, best[2] / 1e9);
            }
        }
    }

    /** A step counts as clean when other processes used less than this share of the machine's CPUs meanwhile. */
    static final double CLEAN = 0.05;

    /** CPU seconds all processes of the machine spent busy so far (/proc/stat, all CPUs), or 0. */
    static double machineBusySeconds() {
        try {
            String first = java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/stat")).get(0);
            String[] f = first.trim().split("\\s+");
            long busy = 0;
            for (int i = 1; i < f.length; i++) {
                if (i != 4 && i != 5) { // idle, iowait
                    busy += Long.parseLong(f[i]);
                }
            }
            return busy / 100.0;
        } catch (java.io.IOException | RuntimeException e) {
            return 0;
        }
    }

    /** This process's user and system CPU seconds and minor page faults so far (Linux), or zeros. */
    static double[] cpuSeconds() {
        try {
            String stat = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/self/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return new double[] {Long.parseLong(f[11]) / 100.0, Long.parseLong(f[12]) / 100.0, Long.parseLong(f[7])};
        } catch (java.io.IOException | RuntimeException e) {
            return new double[3];
        }
    }

    static double median(List<Double> xs) {
        List<Double> s = new ArrayList<>(xs);
        s.sort(Double::compare);
        int n = s.size();
        return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
    }

    static String loadAverage() {
        return String.format("%.2f", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    }

    static String cpuName() {
        try {
            for (String l : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/cpuinfo"))) {
                if (l.startsWith("model name")) {
                    return l.substring(l.indexOf(':') + 1).trim();
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            // not Linux
        }
        return System.getProperty("os.arch");
    }

    static Map<String, String> parse(String[] args) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument '" + args[i] + "'");
            }
            String k = args[i].substring(2);
            if (k.equals("profile")) {
                m.put(k, "true");
            } else if (i + 1 < args.length) {
                m.put(k, args[++i]);
            } else {
                throw new IllegalArgumentException("--" + k + " needs a value");
            }
        }
        return m;
    }
}
