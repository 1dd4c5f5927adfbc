package io.sftnative.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.checkpoint.TorchRng;
import io.sftnative.model.AttentionContext;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.LinearLayer;
import io.sftnative.model.Tensors;
import io.sftnative.quant.QuantizationSpec;
import io.sftnative.quant.QuantizedModels;
import io.sftnative.torch.Autocast;
import io.sftnative.torch.TorchRuntime;

/**
 * Gradient checkpointing and the fused LM-head loss give the plain computation's loss and gradients, on full
 * fine-tuning and on a quantized base with dropout (the RNG replays in the recomputation).
 */
@SuppressWarnings("try")
class MemoryEfficientLossTest {
    static final Path LLAMA = Path.of("src/test/resources/golden/model/llama_gqa/checkpoint");
    static final Path QWEN2 = Path.of("src/test/resources/golden/model/qwen2_tied_bf16/checkpoint");

    @BeforeAll
    static void boot() {
        io.sftnative.bindings.NativeTestSupport.assumeNativeBuilt(); // quantization / fused loss kernels
        TorchRuntime.boot(2);
    }

    /** A run's loss sum and gradients (by parameter name), as host copies. */
    record Run(double lossSum, Map<String, float[]> grads) {}

    static final long[] IDS = {5, 17, 42, 99, 3, 250, 7, 64, 128, 11, 200, 31, 8, 8, 77, 150, 2, 19, 33, 0, 0, 0};
    static final long[] LABELS = {-100, -100, 42, 99, 3, 250, 7, 64, -100, 11, 200, 31, -100, -100, 77, 150, 2, 19,
            33, -100, -100, -100};
    static final long[] MASK = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0};

    static Run run(DecoderModel model, MemoryEfficientLoss loss, long seed, double normaliser) {
        TorchRng.manualSeed(seed);
        try (PointerScope scope = new PointerScope()) {
            Tensor ids = Tensors.longs(IDS, 2, 11);
            Tensor labels = Tensors.longs(LABELS, 2, 11);
            AttentionContext ctx = model.paddedContext(Tensors.longs(MASK, 2, 11), null);
            double sum = loss.forwardBackward(model, ids, labels, ctx, normaliser);
            Map<String, float[]> grads = new LinkedHashMap<>();
            for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) {
                Tensor g = e.getValue().grad();
                if (g.defined()) {
                    grads.put(e.getKey(), Tensors.toFloats(g));
                    g.zero_();
                }
            }
            return new Run(sum, grads);
        }
    }

    /** max |a - b| / max |b| over every gradient, and the loss difference. */
    static double[] compare(Run a, Run ref) {
        assertEquals(ref.grads.keySet(), a.grads.keySet());
        double worst = 0;
        for (String k : ref.grads.keySet()) {
            float[] x = a.grads.get(k);
            float[] y = ref.grads.get(k);
            double diff = 0;
            double scale = 1e-30;
            for (int i = 0; i < y.length; i++) {
                diff = Math.max(diff, Math.abs(x[i] - y[i]));
                scale = Math.max(scale, Math.abs(y[i]));
            }
            worst = Math.max(worst, diff / scale);
        }
        return new double[] {Math.abs(a.lossSum - ref.lossSum) / Math.abs(ref.lossSum), worst};
    }

    @Test
    void checkpointingAndFusedLossMatchThePlainPathInFullFineTuning() throws Exception {
        for (Path dir : new Path[] {LLAMA, QWEN2}) {
            try (DecoderModel model = DecoderModel.load(dir, ScalarType.Float)) {
                model.setRequiresGrad(true);
                Run plain = run(model, new MemoryEfficientLoss(false, false, 0), 1, 13);
                assertTrue(plain.grads.size() == model.parameters().size());
                for (boolean ck : new boolean[] {false, true}) {
                    for (boolean fused : new boolean[] {false, true}) {
                        if (!ck && !fused) {
                            continue;
                        }
                        Run r = run(model, new MemoryEfficientLoss(ck, fused, 4), 1, 13);
                        double[] e = compare(r, plain);
                        System.out.printf("%s checkpointing=%s fused=%s: loss rel err %.3g, grad rel err %.3g%n",
                                dir.getParent().getFileName(), ck, fused, e[0], e[1]);
                        assertEquals(0, e[0], 1e-6);
                        assertEquals(0, e[1], 1e-5);
                    }
                }
            }
        }
    }

    /**
     * bf16 autocast over fp32 weights (full fine-tuning with bf16: true): the fused loss computes the LM head in bf16
     * like autocast's lm_head in the plain path, so loss and gradients agree within GoldenParityTest's bf16 rule (4
     * bf16 ulps relative: both sides round the logits and every matmul to bf16, possibly in different GEMM blockings).
     */
    @Test
    void fusedLossUnderBf16AutocastMatchesThePlainAutocastPath() throws Exception {
        try (DecoderModel model = DecoderModel.load(LLAMA, ScalarType.Float)) {
            model.setRequiresGrad(true);
            Run plain = run(model, new MemoryEfficientLoss(false, false, 0, Autocast.BF16), 1, 13);
            Run fp32 = run(model, new MemoryEfficientLoss(false, false, 0), 1, 13);
            for (boolean ck : new boolean[] {false, true}) {
                Run r = run(model, new MemoryEfficientLoss(ck, true, 4, Autocast.BF16), 1, 13);
                double[] e = compare(r, plain);
                double[] off = compare(fp32, plain);
                System.out.printf("bf16 autocast checkpointing=%s fused: loss rel err %.3g, grad rel err %.3g (fp32 run"
                        + " vs the plain bf16 one: %.3g, %.3g)%n", ck, e[0], e[1], off[0], off[1]);
                assertEquals(0, e[0], 4.0 / 256);
                assertEquals(0, e[1], 4.0 / 256);
            }
        }
    }

    /** Dropout in a wrapped slot (as LoRA applies it): masks must replay identically in the recomputation. */
    static final class DropoutSlot implements LinearLayer {
        final LinearLayer base;
        final double p;

        DropoutSlot(LinearLayer base, double p) {
            this.base = base;
            this.p = p;
        }

        @Override
        public Tensor forward(Tensor x) {
            return base.forward(p > 0 ? torch.dropout(x, p, true) : x.mul(new org.bytedeco.pytorch.Scalar(1.0)));
        }

        @Override
        public long inFeatures() {
            return base.inFeatures();
        }

        @Override
        public long outFeatures() {
            return base.outFeatures();
        }
    }

    @Test
    void quantizedBaseWithDropoutGivesTheSameLossAndGradientsWithCheckpointing() throws Exception {
        try (DecoderModel model = QuantizedModels.load(LLAMA, ScalarType.Float, QuantizationSpec.nf4(), w -> { })) {
            for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) {
                e.getValue().requires_grad_(!e.getKey().equals("model.embed_tokens.weight")); // norms, lm_head train
            }
            for (String p : new String[] {"model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"}) {
                model.setLinear(p, new DropoutSlot(model.linear(p), 0.3));
            }
            // a wrapped (e.g. LoRA-adapted) head: the fused loss then runs chunk by chunk through autograd. No dropout
            // there: chunks draw their masks separately, so they could not match the unchunked run bit for bit
            model.setLinear("lm_head", new DropoutSlot(model.linear("lm_head"), 0));
            Run plain = run(model, new MemoryEfficientLoss(false, false, 0), 7, 20);
            Run again = run(model, new MemoryEfficientLoss(false, false, 0), 7, 20);
            assertEquals(plain.lossSum, again.lossSum, 0.0, "dropout is not seeded");
            Run other = run(model, new MemoryEfficientLoss(false, false, 0), 8, 20);
            assertTrue(Math.abs(other.lossSum - plain.lossSum) > 1e-6, "dropout has no effect");
            for (boolean fused : new boolean[] {false, true}) {
                Run r = run(model, new MemoryEfficientLoss(true, fused, 4), 7, 20);
                double[] e = compare(r, plain);
                System.out.printf("NF4 base + dropout, checkpointing, fused=%s: loss rel err %.3g, grad rel err %.3g%n",
                        fused, e[0], e[1]);
                assertEquals(0, e[0], 1e-6);
                assertEquals(0, e[1], 1e-5);
            }
            // after a checkpointed step the generator continues where the forward pass left it
            TorchRng.manualSeed(3);
            run(model, new MemoryEfficientLoss(true, false, 0), 3, 20);
            byte[] afterCheckpointed = TorchRng.cpuState();
            run(model, new MemoryEfficientLoss(false, false, 0), 3, 20);
            assertTrue(java.util.Arrays.equals(afterCheckpointed, TorchRng.cpuState()));
        }
    }

    @Test
    void evaluationLossSumIsThePlainOne() throws Exception {
        try (DecoderModel model = DecoderModel.load(LLAMA, ScalarType.Float); PointerScope scope = new PointerScope()) {
            Tensor ids = Tensors.longs(IDS, 2, 11);
            Tensor labels = Tensors.longs(LABELS, 2, 11);
            AttentionContext ctx = model.paddedContext(Tensors.longs(MASK, 2, 11), null);
            double plain = new MemoryEfficientLoss(false, false, 0).lossSum(model, ids, labels, ctx);
            double chunked = new MemoryEfficientLoss(false, true, 3).lossSum(model, ids, labels, ctx);
            double reference = CausalLmLoss.sum(model.forward(ids, ctx), labels).sum().item_double();
            System.out.printf("eval loss sum: full logits %.7f, chunked %.7f (rel diff %.2g)%n", reference, chunked,
                    Math.abs(chunked - reference) / Math.abs(reference));
            assertEquals(reference, plain, 0.0);
            assertEquals(reference, chunked, 1e-5 * Math.abs(reference));
        }
    }
}
