package io.sftnative.train;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BooleanSupplier;

import org.bytedeco.javacpp.PointerScope;

import io.sftnative.api.CheckpointEvent;
import io.sftnative.api.TrainingListener;
import io.sftnative.batch.Batch;
import io.sftnative.batch.Collator;
import io.sftnative.checkpoint.TrainingCheckpoint;
import io.sftnative.data.Example;
import io.sftnative.data.ExampleSet;
import io.sftnative.distributed.GradientSync;
import io.sftnative.loss.LossComputation;
import io.sftnative.model.moe.RouterLog;
import io.sftnative.optim.Optimizer;
import io.sftnative.optim.GradClip;
import io.sftnative.optim.LossScaler;
import io.sftnative.optim.LrScheduler;

/**
 * The optimisation loop both recipes run (sft and pt differ in data and metrics, not here). One optimizer step:
 * <pre>
 *   collate this rank's micro-batches of the step (host arrays)
 *   T = target tokens of the whole step, over all ranks                                (GradientSync.totals)
 *   try (step scope) {
 *       for each micro-batch: upload → forward → loss sum → backward of (sum * scale / T)  (LossComputation)
 *           (the last one's backward starts summing gradients over the ranks: GradientSync.beforeBackward)
 *       finish summing gradients and loss over the ranks (nothing in one process)    (GradientSync.afterBackward)
 *       unscale (fp16 only) → clip the gradients' total norm (GradientSync.clipGradNorm; ZeRO-2: from the
 *       slices) → check it and the loss are finite → AdamW.step(lr) (ZeRO: this rank's slice, then all-gather)
 *       → zero grad                        (fp16: a step with overflowed gradients is skipped, the scale halves)
 *   }
 *   report scalars → evaluate (eval_strategy) → rank / early-stop → checkpoint (save_strategy)
 * </pre>
 * Dividing every micro-batch's summed loss by the token count of the whole accumulated batch makes accumulation
 * exact: the update is the same as for one big batch holding all micro-batches; over data-parallel ranks the same
 * division by the whole step's count and summed gradients make N ranks train like one process.
 */
final class TrainLoop {
    private TrainLoop() {}

    /**
     * When to evaluate and save. {@code evalEvery} / {@code saveEvery} 0 = not by step count; the last step is
     * saved unless {@code saveNever} (save_strategy: no).
     */
    record Cadence(long saveEvery, boolean saveEachEpoch, boolean saveNever, long evalEvery, boolean evalEachEpoch,
            boolean evalOnStart) {}

    /** What the loop works with; built by the recipes from the config. */
    record Parts(TrainableModel model, ExampleSet train, Collator collator, DataOrder order, LossComputation loss,
            Optimizer optimizer, LrScheduler scheduler, LossScaler scaler, double maxGradNorm, long totalSteps,
            Cadence cadence, Evaluator evaluator, BestModel best, Checkpointer checkpointer, RunRecord record,
            TrainingListener listener, BooleanSupplier cancelled, long seed, double epochs, GradientSync sync) {}

    /** Runs an evaluation over the validation split. */
    interface Evaluator {
        Evaluation run();
    }

    /** Metrics with HF names (eval_loss, ...) and what the evaluation took. */
    record Evaluation(Map<String, Double> metrics, double runtimeSeconds, long examples, long batches) {}

    enum End { COMPLETED, CANCELLED, EARLY_STOPPED }

    /** Trains from {@code startStep} (0, or the step of the checkpoint being resumed) to the last step. */
    static End run(Parts p, long startStep) throws IOException {
        TrainableModel model = p.model();
        if (p.cadence().evalOnStart() && startStep == 0 && p.evaluator() != null) {
            evaluate(p, 0);
        }
        model.setTraining(true);
        for (long step = startStep; step < p.totalSteps(); step++) {
            List<Batch> micro = collate(p, step); // host arrays: this rank's share of the step
            long targets = 0;
            long tokens = 0;
            for (Batch b : micro) {
                targets += b.targetTokens();
                tokens += nonPadding(b);
            }
            GradientSync.StepTotals all = p.sync().totals(targets, tokens, micro.size(),
                    p.cancelled().getAsBoolean());
            if (all.stop()) { // every rank stops before the same step
                if (step > startStep || p.checkpointer().last() == null) {
                    checkpoint(p, step, false);
                }
                p.record().message("cancelled after step " + step + "; resume with resume_from_checkpoint: "
                        + p.checkpointer().last());
                return End.CANCELLED;
            }
            double normaliser = Math.max(1, all.targets());
            double lr = p.scheduler().lr(step);
            double lossSum = 0;
            double gradNorm;
            boolean skipped = false;
            try (PointerScope scope = new PointerScope()) {
                double scale = p.scaler().scale(); // 1 unless fp16
                for (int i = 0; i < micro.size(); i++) {
                    Batch b = micro.get(i);
                    p.sync().beforeBackward(i == micro.size() - 1); // the last one's backward may start the sync
                    lossSum += p.loss().forwardBackward(model.model(), p.loss().upload(b, model.model()),
                            normaliser / scale);
                }
                lossSum = p.sync().afterBackward(lossSum); // gradients and loss summed over the ranks
                p.scaler().unscale(model.trainable().values());
                gradNorm = p.sync().clipGradNorm(model.trainable().values(), p.maxGradNorm()); // ZeRO-2: sharded
                if (p.scaler().enabled() && !GradClip.isFinite(gradNorm)) {
                    skipped = true; // fp16 overflow: GradScaler skips the update and backs the scale off
                } else if (!Double.isFinite(lossSum) || !GradClip.isFinite(gradNorm)) {
                    p.optimizer().zeroGrad();
                    throw diverged(p, step + 1, lossSum / normaliser, gradNorm, lr);
                } else {
                    p.optimizer().step(lr);
                }
                p.optimizer().zeroGrad();
                p.scaler().update(skipped);
            }
            long done = step + 1;
            if (skipped) {
                p.record().message(String.format(Locale.ROOT, "step %d skipped: fp16 gradients overflowed; loss"
                        + " scale now %.0f (%d steps skipped so far)", done, p.scaler().scale(),
                        p.scaler().skippedSteps()));
            }
            // MoE: transformers' logged loss includes router_aux_loss_coef * aux_loss; aux_loss is logged apart
            // every rank holds the aux loss of its own micro-batches (weighted by their share of the global targets)
            RouterLog routers = model.model().routerLog();
            double aux = routers != null ? stepAux(routers.takeStepAux(), p.sync()) : Double.NaN;
            double loss = lossSum / normaliser + (Double.isNaN(aux) ? 0 : routers.auxLossCoef() * aux);
            p.record().step(done, p.order().epochAfter(done), loss, lr, gradNorm, all.targets(), all.tokens(), aux);
            boolean epochEnd = done % p.order().stepsPerEpoch() == 0;
            boolean stop = false;
            if (p.evaluator() != null && ((p.cadence().evalEvery() > 0 && done % p.cadence().evalEvery() == 0)
                    || (p.cadence().evalEachEpoch() && epochEnd))) {
                stop = evaluate(p, done);
                model.setTraining(true);
            }
            Cadence c = p.cadence();
            boolean last = done == p.totalSteps() || stop;
            if (!c.saveNever() && (last || (c.saveEvery() > 0 && done % c.saveEvery() == 0)
                    || (c.saveEachEpoch() && epochEnd))) {
                checkpoint(p, done, last);
            }
            if (stop) {
                p.record().message("early stopping at step " + done + ": " + p.best().metricKey() + " did not improve"
                        + " for " + p.best().badEvaluations() + " evaluations (early_stopping_steps); best "
                        + p.best().bestMetric());
                return End.EARLY_STOPPED;
            }
        }
        return End.COMPLETED;
    }

    /** The micro-batches of update {@code step}, collated on the host. */
    private static List<Batch> collate(Parts p, long step) {
        List<Batch> out = new ArrayList<>();
        for (int[] indices : p.order().microBatches(step)) {
            List<Example> rows = new ArrayList<>(indices.length);
            for (int i : indices) {
                rows.add(p.train().get(i));
            }
            out.add(p.collator().collate(rows));
        }
        return out;
    }

    private static long nonPadding(Batch b) {
        long n = 0;
        for (long m : b.attentionMask()) {
            if (m != 0) {
                n++;
            }
        }
        return n;
    }

    /** Evaluates, steps reduce_lr_on_plateau and ranks the metric; returns true when early stopping says stop. */
    static boolean evaluate(Parts p, long step) throws IOException {
        p.model().setTraining(false);
        Evaluation e = p.evaluator().run();
        p.record().eval(step, p.order().epochAfter(step), e.metrics(), e.runtimeSeconds(), e.examples(), e.batches());
        if (step == 0) {
            return false; // eval_on_start: a baseline, not a step of training
        }
        p.scheduler().onEvaluation(e.metrics(), p.best() != null ? p.best().metricKey() : "eval_loss");
        return p.best() != null && p.best().onEvaluation(step, e.metrics());
    }

    private static void checkpoint(Parts p, long step, boolean last) throws IOException {
        long perEpoch = p.order().stepsPerEpoch();
        TrainingCheckpoint.Position pos = new TrainingCheckpoint.Position(step, step / perEpoch, step % perEpoch,
                p.order().examples(), p.order().batchSize(), p.order().microBatchesPerStep(), p.seed(),
                p.record().tokensSeen());
        Path dir = p.checkpointer().save(pos, p.record().state(step, p.order().epochAfter(step),
                p.cadence().evalEvery(), p.cadence().saveEvery(), p.order().batchSize(), p.epochs(), 0, last),
                p.seed(), p.best() != null ? p.best() : null);
        p.record().message("saved " + dir);
        p.listener().onCheckpoint(new CheckpointEvent(step, dir));
    }

    private static TrainingDivergedException diverged(Parts p, long step, double loss, double gradNorm, double lr) {
        Path last = p.checkpointer().last();
        String what = !Double.isFinite(loss) ? "the loss is " + loss : "the gradient norm is " + gradNorm;
        return new TrainingDivergedException(String.format(Locale.ROOT, "training diverged at step %d: %s"
                + " (learning rate %.3g). The weights were not updated by this step; %s. Lower learning_rate, add"
                + " warmup (warmup_ratio) or keep max_grad_norm > 0, then resume%s.", step, what, lr,
                last == null ? "no checkpoint had been saved yet" : "the last good checkpoint is " + last,
                last == null ? " from the start" : " with resume_from_checkpoint: " + last), step);
    }

    /** The step's aux loss summed over the ranks; NaN when no rank added one (a rank with no micro-batch has NaN). */
    private static double stepAux(double local, GradientSync sync) {
        double[] sum = sync.sumOverRanks(new double[] {Double.isNaN(local) ? 0 : local, Double.isNaN(local) ? 0 : 1});
        return sum[1] > 0 ? sum[0] : Double.NaN;
    }
}
