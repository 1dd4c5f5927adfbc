package io.sftnative.bench;

import java.io.BufferedReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.batch.Batch;
import io.sftnative.batch.Unpadding;
import io.sftnative.loss.LossComputation;
import io.sftnative.loss.MemoryEfficientLoss;
import io.sftnative.loss.MicroBatch;
import io.sftnative.loss.PlainLossComputation;
import io.sftnative.lora.LoraAdapters;
import io.sftnative.model.AttentionKernel;
import io.sftnative.model.DecoderModel;
import io.sftnative.torch.Autocast;
import io.sftnative.torch.TorchRuntime;

/**
 * Padded vs padding-free forward + loss + backward ({@link Unpadding}) on the end-to-end benchmark's own model and
 * padded batches, in one process, alternating the two layouts batch by batch so that both meet the same
 * contention; reports process CPU time and wall time per layout (no optimizer step: it is the same for both).
 *
 * <pre>
 * benchmarks/run.sh --quick --modes full-padded-plain     # once: writes target/bench-e2e (model, batches)
 * OMP_WAIT_POLICY=PASSIVE java --enable-native-access=ALL-UNNAMED -cp target/sft-native.jar \
 *     io.sftnative.bench.UnpadBench --work target/bench-e2e [--lora] [--loss plain|fused] [--batches 8] \
 *     [--rounds 2] [--threads 2]
 * </pre>
 */
public final class UnpadBench {
    private UnpadBench() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            String k = args[i].substring(2);
            boolean flag = i + 1 >= args.length || args[i + 1].startsWith("--");
            a.put(k, flag ? "true" : args[++i]);
        }
        Path work = Path.of(a.getOrDefault("work", "target/bench-e2e"));
        boolean lora = a.containsKey("lora");
        boolean fused = a.getOrDefault("loss", "plain").equals("fused");
        int nBatches = Integer.parseInt(a.getOrDefault("batches", "8"));
        int rounds = Integer.parseInt(a.getOrDefault("rounds", "2"));
        TorchRuntime.boot(Integer.parseInt(a.getOrDefault("threads", "2")));
        List<Batch> batches = read(work.resolve("data/batches-padded.jsonl"), nBatches);
        try (DecoderModel model = DecoderModel.load(work.resolve("model"), ScalarType.Float)) {
            model.attentionKernel(AttentionKernel.NATIVE);
            LoraAdapters adapters = lora ? LoraAdapters.load(model, work.resolve("adapter_init"), true) : null;
            if (!lora) {
                model.setRequiresGrad(true);
            }
            Map<String, Tensor> trainable = lora ? adapters.trainableParameters() : model.parameters();
            LossComputation loss = fused ? new MemoryEfficientLoss(false, true, 0)
                    : new PlainLossComputation(Autocast.OFF);
            double[] cpu = new double[2];
            double[] wall = new double[2];
            long real = 0;
            long positions = 0;
            for (int r = 0; r < rounds + 1; r++) { // round 0 warms up
                for (int i = 0; i < batches.size(); i++) {
                    Batch b = batches.get(i);
                    for (int k = 0; k < 2; k++) {
                        int v = (i + r + k) % 2; // alternate which layout goes first
                        double[] c0 = DecoderStepBench.cpuSeconds();
                        long t0 = System.nanoTime();
                        try (PointerScope scope = new PointerScope()) {
                            MicroBatch mb = v == 0 ? MicroBatch.upload(b, model) : loss.upload(b, model);
                            loss.forwardBackward(model, mb, Math.max(1, b.targetTokens()));
                            for (Tensor p : trainable.values()) {
                                if (p.grad().defined()) {
                                    p.grad().zero_();
                                }
                            }
                        }
                        double[] c1 = DecoderStepBench.cpuSeconds();
                        double dc = c1[0] - c0[0] + c1[1] - c0[1];
                        double dw = (System.nanoTime() - t0) / 1e9;
                        System.out.printf("round %d batch %d (B %d, T %d) %-12s cpu %.2f s wall %.2f s%n", r, i,
                                b.batchSize(), b.seqLen(), v == 0 ? "padded" : "padding-free", dc, dw);
                        if (r > 0) {
                            cpu[v] += dc;
                            wall[v] += dw;
                        }
                    }
                    if (r > 0) {
                        for (long m : b.attentionMask()) {
                            real += m != 0 ? 1 : 0;
                        }
                        positions += b.attentionMask().length;
                    }
                }
                System.out.printf("round %d done (load %s)%n", r, DecoderStepBench.loadAverage());
            }
            System.out.printf("%s, %s loss, %d batches x %d rounds: %d real tokens of %d positions (%.0f%% padding)%n",
                    lora ? "LoRA" : "full fine-tuning", fused ? "fused" : "plain", batches.size(), rounds, real,
                    positions, 100.0 * (positions - real) / positions);
            String[] names = {"padded", "padding-free"};
            for (int v = 0; v < 2; v++) {
                System.out.printf("%-13s cpu %.2f s (%.0f real tokens per cpu-second)  wall %.2f s (%.0f tokens/s)%n",
                        names[v], cpu[v], real / cpu[v], wall[v], real / wall[v]);
            }
            System.out.printf("RESULT padded/padding-free: cpu %.2fx  wall %.2fx%n", cpu[0] / cpu[1],
                    wall[0] / wall[1]);
            if (adapters != null) {
                adapters.close();
            }
        }
    }

    /** The first n batches of the harness's batch plan. */
    static List<Batch> read(Path file, int n) throws Exception {
        ObjectMapper json = new ObjectMapper();
        List<Batch> out = new ArrayList<>();
        try (BufferedReader r = Files.newBufferedReader(file)) {
            String line;
            while (out.size() < n && (line = r.readLine()) != null) {
                JsonNode j = json.readTree(line);
                int b = j.get("B").asInt();
                int t = j.get("T").asInt();
                long[] labels = longs(j.get("labels"));
                long targets = 0;
                for (int row = 0; row < b; row++) {
                    for (int c = 1; c < t; c++) {
                        targets += labels[row * t + c] != -100 ? 1 : 0;
                    }
                }
                out.add(new Batch(b, t, longs(j.get("input_ids")), labels, longs(j.get("attention_mask")),
                        longs(j.get("position_ids")), targets, false));
            }
        }
        return out;
    }

    private static long[] longs(JsonNode arr) {
        long[] v = new long[arr.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = arr.get(i).asLong();
        }
        return v;
    }
}
