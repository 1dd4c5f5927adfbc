package io.sftnative.train;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.sftnative.api.TrainResult;
import io.sftnative.config.SftConfig;
import io.sftnative.config.TrainingArgs;
import io.sftnative.data.ExampleSet;
import io.sftnative.eval.LossEvaluator;

/**
 * Pretraining (stage {@code pt}), LLaMA-Factory's {@code run_pt} as one recipe: texts (each + EOS) concatenated
 * and cut into {@code cutoff_len} blocks with every token a target; from a checkpoint, or from scratch with
 * {@code train_from_scratch: true}.
 * <ol>
 *   <li>setup ({@link RunSetup}); 2. train ({@link TrainPhase}, {@link TrainLoop});</li>
 *   <li>evaluate ({@code do_eval}): eval_loss and {@code perplexity = exp(eval_loss)} → eval_results.json;</li>
 *   <li>predict ({@code do_predict}): the loss on the validation blocks as {@code predict_loss}.</li>
 * </ol>
 */
public final class PretrainRecipe {
    private PretrainRecipe() {}

    public static TrainResult run(SftConfig cfg, RunOptions opts) throws IOException {
        TrainingArgs t = cfg.training();
        Map<String, Object> results = new LinkedHashMap<>();
        try (RunSetup run = RunSetup.open(cfg, "pt", opts)) {
            ExampleSet evalSet = run.data.data().eval();
            boolean main = run.parallel.isMain(); // in a data-parallel job rank 0 alone writes results
            Map<String, ExampleSet> each = run.data.data().evalSets();
            TrainLoop.Evaluator evaluator = evalSet.isEmpty() ? null
                    : () -> SftRecipe.eachDataset(each, evalSet, s -> evaluate(run, s, "eval"));
            long step = run.resume == null ? 0 : run.resume.position().globalStep();
            java.nio.file.Path lastCheckpoint = run.resume == null ? null : run.resume.dir();
            if (t.doTrain()) {
                TrainPhase.Outcome trained = TrainPhase.run(run, evaluator, List.of("loss", "eval_loss"));
                if (trained.cancelled()) {
                    run.parallel.finish();
                    return trained.result();
                }
                results.putAll(trained.metrics());
                step = trained.step();
                lastCheckpoint = trained.lastCheckpoint();
            }
            run.model.setTraining(false);
            if (t.doEval()) {
                TrainLoop.Evaluation e = SftRecipe.eachDataset(each, evalSet, s -> evaluate(run, s, "eval"));
                if (main) { // the evaluation is sharded over the ranks; rank 0 writes it
                    results.putAll(SftRecipe.save(run, "eval", e, results.get("epoch")));
                }
            }
            if (t.doPredict()) {
                TrainLoop.Evaluation e = evaluate(run, evalSet, "predict");
                if (main) {
                    results.putAll(SftRecipe.save(run, "predict", e, results.get("epoch")));
                }
            }
            run.parallel.finish();
            return new TrainResult(TrainResult.Status.COMPLETED, step, step,
                    SftRecipe.doubleOr(results.get("train_loss")), run.outputDir, lastCheckpoint, results);
        }
    }

    /** Loss and perplexity on the validation blocks, named {@code <prefix>_loss}, {@code perplexity}. */
    static TrainLoop.Evaluation evaluate(RunSetup run, ExampleSet set, String prefix) {
        LossEvaluator.Result r = LossEvaluator.evaluate(run.model.model(), set, run.collator,
                run.cfg.training().perDeviceEvalBatchSize(), run.loss, run.autocast, false, run.evalShard());
        Map<String, Double> m = new LinkedHashMap<>();
        m.put(prefix + "_loss", r.loss());
        m.put("perplexity", Math.exp(r.loss()));
        return new TrainLoop.Evaluation(m, r.runtimeSeconds(), r.examples(), r.batches());
    }
}
