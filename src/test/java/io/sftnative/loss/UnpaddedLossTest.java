package io.sftnative.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.batch.Batch;
import io.sftnative.batch.Collator;
import io.sftnative.batch.Unpadding;
import io.sftnative.data.Example;
import io.sftnative.lora.LoraAdapters;
import io.sftnative.lora.LoraSpec;
import io.sftnative.model.AttentionKernel;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.Tensors;
import io.sftnative.torch.Autocast;
import io.sftnative.torch.TorchRuntime;

/**
 * A right-padded batch run padding-free ({@link Unpadding}, chosen by {@link LossComputation#upload}) gives the
 * padded run's loss and gradients, for full fine-tuning and LoRA, through the plain loss, the fused LM-head loss and
 * gradient checkpointing, on model families with GQA, sliding windows, soft-capping and q/k norms; neat-packed
 * batches too.
 *
 * <p>Tolerance: both runs compute the same sums over the same terms in another order and blocking (GEMMs of N rows
 * instead of B·T, attention tiles aligned to another start). Reordering a sum of K fp32 terms moves it by at most
 * K·u·Σ|terms| (u = 2^-24); the longest sums here are the weight gradients over the B·T positions and the GEMMs
 * over the intermediate size, K ≤ B·T + I. Relative to the largest gradient entry we allow 4·K·u for each gradient
 * (a few stacked reorderings through the layers) and K·u for the loss sum.
 */
@SuppressWarnings("try")
class UnpaddedLossTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/model");
    static final String[] MODELS = {"llama_gqa", "qwen2_tied_bf16", "mistral_swa", "gemma2_softcap",
        "qwen3_qknorm"};
    static final double U = Math.ulp(1.0f) / 2; // 2^-24

    @BeforeAll
    static void boot() {
        io.sftnative.bindings.NativeTestSupport.assumeNativeBuilt(); // our attention kernel
        TorchRuntime.boot(2);
    }

    static Example example(int len, int seed, int[] segmentLengths) {
        int[] ids = new int[len];
        int[] labels = new int[len];
        int[] mask = new int[len];
        int[] pos = new int[len];
        int seg = 1;
        int start = 0;
        for (int i = 0; i < len; i++) {
            if (segmentLengths != null && i - start == segmentLengths[seg - 1]) {
                seg++;
                start = i;
            }
            ids[i] = 1 + (seed * 37 + i * 11) % 250;
            labels[i] = i % 5 == 1 ? -100 : ids[i]; // some prompt-like holes
            mask[i] = segmentLengths != null ? seg : 1;
            pos[i] = i - start;
        }
        return new Example(ids, labels, mask, pos);
    }

    /** Three rows of 9, 4 and 13 tokens, right-padded to 16 (27 real tokens of 48). */
    static Batch padded() {
        return new Collator(0, 8, false).collate(List.of(example(9, 1, null), example(4, 2, null),
                example(13, 3, null)));
    }

    /** Two neat-packed rows (segments 5 + 6 and 3 + 4 + 2), right-padded to 16. */
    static Batch neatPacked() {
        return new Collator(0, 8, true).collate(List.of(example(11, 4, new int[] {5, 6}),
                example(9, 5, new int[] {3, 4, 2})));
    }

    record Run(double lossSum, long rows, Map<String, float[]> grads) {}

    static Run run(DecoderModel model, LossComputation loss, MicroBatch mb, Map<String, Tensor> params) {
        double sum = loss.forwardBackward(model, mb, 7.0);
        Map<String, float[]> grads = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            Tensor g = e.getValue().grad();
            if (g.defined()) {
                grads.put(e.getKey(), Tensors.toFloats(g));
                g.zero_();
            }
        }
        return new Run(sum, mb.inputIds().size(0), grads);
    }

    /** Checks every run of {@code loss} without padding against the padded run; returns the worst errors. */
    static double[] check(String name, DecoderModel model, LossComputation loss, Batch b, Map<String, Tensor> params) {
        long k = (long) b.batchSize() * b.seqLen() + model.config().intermediateSize();
        double lossTol = k * U;
        double gradTol = 4 * k * U;
        double[] worst = new double[2];
        try (PointerScope scope = new PointerScope()) {
            Run ref = run(model, loss, MicroBatch.upload(b, model), params);
            assertEquals(b.batchSize(), ref.rows);
            List<MicroBatch> variants = new ArrayList<>();
            MicroBatch chosen = loss.upload(b, model); // what the trainer runs: rows for 2 threads here
            assertTrue(chosen.host().segmentIds() && realTokens(chosen.host()) == realTokens(b)
                    && chosen.inputIds().numel() < (long) b.batchSize() * b.seqLen(), name + ": not unpadded");
            variants.add(chosen);
            variants.add(MicroBatch.upload(Unpadding.unpad(b, 2), model)); // rows for more threads
            for (MicroBatch mb : variants) {
                Run r = run(model, loss, mb, params);
                assertEquals(ref.grads.keySet(), r.grads.keySet(), name);
                assertTrue(!ref.grads.isEmpty(), name + ": no gradients");
                double le = Math.abs(r.lossSum - ref.lossSum) / Math.abs(ref.lossSum);
                double ge = 0;
                String where = "";
                for (String p : ref.grads.keySet()) {
                    double e = relErr(r.grads.get(p), ref.grads.get(p));
                    if (e > ge) {
                        ge = e;
                        where = p;
                    }
                }
                System.out.printf("%s, %d row(s): loss rel err %.3g (tol %.3g), worst grad rel err %.3g at %s"
                        + " (tol %.3g)%n", name, r.rows, le, lossTol, ge, where, gradTol);
                assertTrue(le <= lossTol, name + ": loss " + r.lossSum + " vs padded " + ref.lossSum);
                assertTrue(ge <= gradTol, name + ": gradient of " + where + " differs by " + ge);
                worst[0] = Math.max(worst[0], le);
                worst[1] = Math.max(worst[1], ge);
            }
        }
        return worst;
    }

    static long realTokens(Batch b) {
        long n = 0;
        for (long m : b.attentionMask()) {
            n += m != 0 ? 1 : 0;
        }
        return n;
    }

    /** max |a - b| / max |b|. */
    static double relErr(float[] a, float[] b) {
        double diff = 0;
        double scale = 1e-30;
        for (int i = 0; i < b.length; i++) {
            diff = Math.max(diff, Math.abs((double) a[i] - b[i]));
            scale = Math.max(scale, Math.abs(b[i]));
        }
        return diff / scale;
    }

    static List<LossComputation> computations() {
        return List.of(new PlainLossComputation(Autocast.OFF), new MemoryEfficientLoss(false, true, 8),
                new MemoryEfficientLoss(true, false, 0));
    }

    @Test
    void fullFineTuningGivesThePaddedLossAndGradients() throws Exception {
        for (String m : MODELS) {
            try (DecoderModel model = DecoderModel.load(GOLDEN.resolve(m).resolve("checkpoint"), ScalarType.Float)) {
                model.attentionKernel(AttentionKernel.NATIVE);
                model.setRequiresGrad(true);
                assertTrue(model.attendsBySegments(), m);
                for (LossComputation loss : computations()) {
                    check(m + " full " + loss.name(), model, loss, padded(), model.parameters());
                }
                check(m + " full neat-packed", model, computations().get(1), neatPacked(), model.parameters());
            }
        }
    }

    @Test
    void loraGivesThePaddedLossAndGradients() throws Exception {
        for (String m : new String[] {"llama_gqa", "qwen2_tied_bf16"}) {
            try (DecoderModel model = DecoderModel.load(GOLDEN.resolve(m).resolve("checkpoint"), ScalarType.Float);
                    LoraAdapters lora = LoraAdapters.attach(model, new LoraSpec(4, 8, 0.0, List.of("all"), false,
                            List.of()), 3)) {
                model.attentionKernel(AttentionKernel.NATIVE);
                try (NoGradGuard g = new NoGradGuard()) { // B = 0 would leave every A gradient zero
                    Generator gen = torch.make_generator_cpu(11);
                    for (Map.Entry<String, Tensor> e : lora.trainableParameters().entrySet()) {
                        if (e.getKey().endsWith("lora_B.weight")) {
                            e.getValue().normal_(0.0, 0.05, new GeneratorOptional(gen));
                        }
                    }
                }
                for (LossComputation loss : computations()) {
                    check(m + " lora " + loss.name(), model, loss, padded(), lora.trainableParameters());
                }
            }
        }
    }

    @Test
    void sdpaAndAutocastKeepThePaddedBatch() throws Exception {
        try (DecoderModel model = DecoderModel.load(GOLDEN.resolve("llama_gqa/checkpoint"), ScalarType.Float);
                PointerScope scope = new PointerScope()) {
            model.attentionKernel(AttentionKernel.SDPA);
            assertEquals(48, new PlainLossComputation(Autocast.OFF).upload(padded(), model).inputIds().numel());
            model.attentionKernel(AttentionKernel.NATIVE);
            assertEquals(48, new PlainLossComputation(Autocast.BF16).upload(padded(), model).inputIds().numel());
            model.neftune(5.0); // noise scaled by the row length
            assertEquals(48, new MemoryEfficientLoss(false, true, 0).upload(padded(), model).inputIds().numel());
        }
    }
}
