package io.sftnative.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.Map;

import io.sftnative.api.TrainResult;
import io.sftnative.config.ConfigException;
import io.sftnative.config.SftConfig;
import io.sftnative.config.TrainingArgs;
import io.sftnative.data.ExampleSet;
import io.sftnative.eval.GenerationPredictor;
import io.sftnative.eval.LossEvaluator;
import io.sftnative.model.GenerationOptions;
import io.sftnative.tokenizer.Tokenizer;
import io.sftnative.train.log.LogHistory;
import io.sftnative.train.log.LossPlot;
import io.sftnative.train.log.ResultsWriter;

/**
 * Supervised fine-tuning (stage {@code sft}), LLaMA-Factory's {@code run_sft} as one recipe:
 * <ol>
 *   <li>setup: libtorch, seed, resume point, data (template, labels masked on prompts), model with its trainable
 *       part (full / freeze / LoRA), loss ({@link RunSetup});</li>
 *   <li>train ({@code do_train}): the optimisation loop with eval loss every {@code eval_steps} and checkpoints
 *       every {@code save_steps}, then the weights or adapter, logs, metrics and loss plot in output_dir
 *       ({@link TrainPhase}, {@link TrainLoop});</li>
 *   <li>evaluate ({@code do_eval}): loss (and token accuracy with {@code compute_accuracy}) on the validation
 *       split → eval_results.json;</li>
 *   <li>predict ({@code do_predict} or {@code predict_with_generate}): generate an answer for every validation
 *       prompt → generated_predictions.jsonl, BLEU-4 and ROUGE-1/2/L → predict_results.json.</li>
 * </ol>
 */
public final class SftRecipe {
    private SftRecipe() {}

    public static TrainResult run(SftConfig cfg, RunOptions opts) throws IOException {
        TrainingArgs t = cfg.training();
        boolean accuracy = cfg.finetuning().computeAccuracy();
        if (accuracy && t.predictWithGenerate()) {
            throw new ConfigException("compute_accuracy and predict_with_generate cannot both be true (LLaMA-Factory"
                    + " rejects the combination): accuracy scores the teacher-forced logits, predict_with_generate"
                    + " free generation");
        }
        Map<String, Object> results = new LinkedHashMap<>();
        try (RunSetup run = RunSetup.open(cfg, "sft", opts)) {
            ExampleSet evalSet = run.data.data().eval();
            boolean main = run.parallel.isMain(); // in a data-parallel job rank 0 alone writes results and predicts
            Map<String, ExampleSet> each = run.data.data().evalSets();
            if (!each.isEmpty() && (t.doPredict() || t.predictWithGenerate())) {
                throw new ConfigException("do_predict / predict_with_generate with eval_on_each_dataset: not"
                        + " implemented in sft-native (prediction writes one generated_predictions.jsonl; LLaMA-Factory"
                        + " predicts on one eval dataset too): set eval_on_each_dataset: false for the predict run");
            }
            TrainLoop.Evaluator evaluator = evalSet.isEmpty() ? null
                    : () -> eachDataset(each, evalSet, s -> evaluate(run, s, accuracy));
            long step = run.resume == null ? 0 : run.resume.position().globalStep();
            Path lastCheckpoint = run.resume == null ? null : run.resume.dir();
            if (t.doTrain()) {
                TrainPhase.Outcome trained = TrainPhase.run(run, evaluator, LossPlot.SFT_KEYS);
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
                // sharded over the ranks
                TrainLoop.Evaluation e = eachDataset(each, evalSet, s -> evaluate(run, s, accuracy));
                if (main) {
                    results.putAll(save(run, "eval", e, results.get("epoch")));
                }
            }
            if ((t.doPredict() || t.predictWithGenerate()) && main) {
                results.putAll(predict(run, evalSet));
            }
            run.parallel.finish();
            return new TrainResult(TrainResult.Status.COMPLETED, step, step, doubleOr(results.get("train_loss")),
                    run.outputDir, lastCheckpoint, results);
        }
    }

    /**
     * With eval_on_each_dataset, every eval dataset evaluated on its own and its metrics renamed as HF's Trainer
     * names them for a dict of eval datasets ({@code eval_NAME_loss}); the runtime and throughput are the totals.
     * Otherwise the one eval set.
     */
    static TrainLoop.Evaluation eachDataset(Map<String, ExampleSet> each, ExampleSet merged,
            java.util.function.Function<ExampleSet, TrainLoop.Evaluation> eval) {
        if (each.isEmpty()) {
            return eval.apply(merged);
        }
        Map<String, Double> m = new LinkedHashMap<>();
        double seconds = 0;
        long examples = 0;
        long batches = 0;
        for (Map.Entry<String, ExampleSet> d : each.entrySet()) {
            TrainLoop.Evaluation e = eval.apply(d.getValue());
            e.metrics().forEach((k, v) -> m.put("eval_" + d.getKey() + "_"
                    + (k.startsWith("eval_") ? k.substring("eval_".length()) : k), v));
            seconds += e.runtimeSeconds();
            examples += e.examples();
            batches += e.batches();
        }
        return new TrainLoop.Evaluation(m, seconds, examples, batches);
    }

    /** Validation loss (and accuracy) with HF's metric names. */
    static TrainLoop.Evaluation evaluate(RunSetup run, ExampleSet set, boolean accuracy) {
        LossEvaluator.Result r = LossEvaluator.evaluate(run.model.model(), set, run.collator,
                run.cfg.training().perDeviceEvalBatchSize(), run.loss, run.autocast, accuracy, run.evalShard());
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("eval_loss", r.loss());
        if (accuracy) {
            m.put("eval_accuracy", r.accuracy());
        }
        return new TrainLoop.Evaluation(m, r.runtimeSeconds(), r.examples(), r.batches());
    }

    /** Generates for every validation prompt; writes the predictions and their BLEU/ROUGE scores. */
    private static Map<String, Object> predict(RunSetup run, ExampleSet set) throws IOException {
        Tokenizer tok = run.data.tokenizer();
        if (tok == null) {
            throw new ConfigException("predict_with_generate decodes text: model_name_or_path needs tokenizer files");
        }
        TrainingArgs t = run.cfg.training();
        GenerationOptions options = GenerationOptions.from(run.cfg.generation(),
                new ArrayList<>(run.data.template().stopTokenIds(tok)), run.data.data().padId(), t.seed());
        run.opts.say("predicting " + set.size() + " validation examples with generate ("
                + (options.doSample() ? "sampling" : "greedy") + ", max_new_tokens " + options.maxNewTokens() + ")");
        GenerationPredictor.Result r = GenerationPredictor.predict(run.model.model(), tok, set,
                t.perDeviceEvalBatchSize(), options);
        Path file = GenerationPredictor.write(run.outputDir, r.predictions());
        Map<String, Object> m = new LinkedHashMap<>(GenerationPredictor.prefixed("predict", r.metrics()));
        m.putAll(LogHistory.speed("predict", r.runtimeSeconds(), r.predictions().size(),
                (r.predictions().size() + t.perDeviceEvalBatchSize() - 1) / t.perDeviceEvalBatchSize()));
        ResultsWriter.save(run.outputDir, "predict", m);
        run.opts.say(ResultsWriter.table("predict", m).stripTrailing());
        run.opts.say("generations written to " + file.toAbsolutePath());
        return m;
    }

    /** Writes {@code <split>_results.json} (and all_results.json) and prints HF's table. */
    static Map<String, Object> save(RunSetup run, String split, TrainLoop.Evaluation e, Object epoch)
            throws IOException {
        Map<String, Object> m = new LinkedHashMap<>();
        if (epoch != null) {
            m.put("epoch", epoch);
        }
        m.putAll(e.metrics());
        m.putAll(LogHistory.speed(split, e.runtimeSeconds(), e.examples(), e.batches()));
        Files.createDirectories(run.outputDir);
        ResultsWriter.save(run.outputDir, split, m);
        run.opts.say(ResultsWriter.table(split, m).stripTrailing());
        return m;
    }

    static double doubleOr(Object v) {
        return v instanceof Number n ? n.doubleValue() : Double.NaN;
    }
}
