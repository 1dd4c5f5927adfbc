package io.sftnative.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

import io.sftnative.batch.Batch;
import io.sftnative.batch.Collator;
import io.sftnative.data.Example;
import io.sftnative.data.ExampleSet;
import io.sftnative.loss.CausalLmLoss;
import io.sftnative.loss.LossComputation;
import io.sftnative.loss.MicroBatch;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.Tensors;
import io.sftnative.torch.Autocast;

/**
 * The evaluation loss of a model over a set of examples: used by the trainer every {@code eval_steps} and by the
 * {@code eval} command, so both report the same number.
 *
 * <p>{@code eval_loss} is the mean causal-LM cross-entropy over every target token of the set (labels shifted by
 * one, -100 ignored): the summed loss of all batches divided by the total target-token count, so the value does not
 * depend on the batch size. (HF Trainer averages per-batch means instead, which weighs tokens of short batches more.)
 */
@SuppressWarnings("try") // scopes and guards are held for their side effect
public final class LossEvaluator {
    private LossEvaluator() {}

    /**
     * @param loss         mean loss per target token (NaN when the set has no target token)
     * @param examples     examples evaluated
     * @param batches      batches run
     * @param targetTokens target tokens the loss is averaged over
     * @param accuracy     mean per-example accuracy, or NaN when not computed
     */
    public record Result(double loss, long targetTokens, long examples, long batches, double accuracy,
            double runtimeSeconds) {}

    /**
     * Which share of the batches this process evaluates: batch {@code i} on rank {@code i mod world}, then
     * {@code sum} adds the ranks' loss sums, target counts and accuracy parts (an all-reduce), so every rank gets
     * the value one process computes over the whole set.
     */
    public record Shard(int rank, int world, UnaryOperator<double[]> sum) {
        public static final Shard NONE = new Shard(0, 1, v -> v);
    }

    /**
     * Evaluates {@code set} in order, {@code batchSize} rows at a time.
     *
     * @param loss     the micro-batch loss (its {@code lossSum}); the trainer passes its own, so variants agree
     * @param accuracy also compute LLaMA-Factory's token accuracy (needs the full logits: plain forward)
     */
    public static Result evaluate(DecoderModel model, ExampleSet set, Collator collator, int batchSize,
            LossComputation loss, Autocast autocast, boolean accuracy) {
        return evaluate(model, set, collator, batchSize, loss, autocast, accuracy, Shard.NONE);
    }

    /** {@link #evaluate} over this rank's share of the batches, reduced over the ranks ({@link Shard}). */
    public static Result evaluate(DecoderModel model, ExampleSet set, Collator collator, int batchSize,
            LossComputation loss, Autocast autocast, boolean accuracy, Shard shard) {
        long start = System.nanoTime();
        double sum = 0;
        long targets = 0;
        long batches = 0;
        TokenAccuracy acc = accuracy ? new TokenAccuracy() : null;
        for (int from = 0; from < set.size(); from += batchSize) {
            if ((from / batchSize) % shard.world() != shard.rank()) {
                continue; // another rank's batch
            }
            List<Example> rows = new ArrayList<>();
            for (int i = from; i < Math.min(from + batchSize, set.size()); i++) {
                rows.add(set.get(i));
            }
            Batch b = collator.collate(rows);
            try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
                MicroBatch mb = MicroBatch.upload(b, model);
                if (acc == null) {
                    sum += loss.lossSum(model, mb);
                } else {
                    Tensor logits; // (B, T, V)
                    try (Autocast.Scope cast = autocast.enter()) {
                        logits = model.forward(mb.inputIds(), mb.context());
                        sum += CausalLmLoss.sum(logits, mb.labels()).sum().item_double();
                    }
                    long[] predicted = Tensors.toLongs(logits.argmax(new LongOptional(2), false)); // (B*T)
                    for (int r = 0; r < b.batchSize(); r++) {
                        int len = rows.get(r).length();
                        long[] p = new long[len];
                        long[] l = new long[len];
                        System.arraycopy(predicted, r * b.seqLen(), p, 0, len);
                        System.arraycopy(b.labels(), r * b.seqLen(), l, 0, len);
                        acc.add(p, l);
                    }
                }
            }
            targets += b.targetTokens();
            batches++;
        }
        double[] parts = acc == null ? new double[] {0, 0} : acc.parts();
        double[] all = shard.world() == 1 ? new double[] {sum, targets, batches, parts[0], parts[1]}
                : shard.sum().apply(new double[] {sum, targets, batches, parts[0], parts[1]});
        double mean = all[1] == 0 ? Double.NaN : all[0] / all[1];
        return new Result(mean, (long) all[1], set.size(), (long) all[2],
                acc == null ? Double.NaN : TokenAccuracy.result(all[3], all[4]), (System.nanoTime() - start) / 1e9);
    }
}
