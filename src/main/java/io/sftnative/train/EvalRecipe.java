package io.sftnative.train;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import io.sftnative.batch.Collator;
import io.sftnative.config.SftConfig;
import io.sftnative.data.DataPipeline;
import io.sftnative.data.ExampleSet;
import io.sftnative.eval.LossEvaluator;
import io.sftnative.loss.MemoryEfficientLoss;
import io.sftnative.tokenizer.AddedTokens;
import io.sftnative.torch.Autocast;
import io.sftnative.torch.TorchRuntime;

/**
 * The causal-LM loss of a model (plus {@code adapter_name_or_path}) over a dataset, built by the same data pipeline
 * as training and computed by the same {@link LossEvaluator} as the trainer's evaluation. Which examples:
 * {@code eval_dataset} when set, else the {@code val_size} split when set, else all of {@code dataset}.
 */
public final class EvalRecipe {
    private EvalRecipe() {}

    /**
     * @return {@code eval_loss} (mean over target tokens, labels shifted by one), {@code eval_tokens},
     *         {@code eval_examples}, {@code eval_batches}, {@code perplexity}, {@code eval_runtime} and, with
     *         {@code compute_accuracy}, {@code eval_accuracy}
     */
    public static Map<String, Object> run(SftConfig cfg, RunOptions opts) throws IOException {
        TorchRuntime.boot(cfg.model().threads() > 0 ? cfg.model().threads() : TorchRuntime.defaultThreads());
        TorchRuntime.deviceName(cfg.model().device()); // a GPU that cannot be used fails now, before the data work
        Path modelDir = TrainableModel.modelDir(cfg.model());
        String stage = cfg.finetuning().stage();
        try (AddedTokens added = NewTokens.stage(cfg.model().newTokens(), RunSetup.hasTokenizer(modelDir) ? modelDir
                : null, opts::say);
                DataPipeline.Prepared data = DataPipeline.prepare(added != null ? added.directory()
                        : RunSetup.hasTokenizer(modelDir) ? modelDir : null,
                        cfg.data(), stage, cfg.training().seed(), opts.console(), opts::say);
                TrainableModel model = TrainableModel.forInference(cfg.model(), cfg.training().bf16(),
                        NewTokens.plan(cfg.model().newTokens(), data.tokenizer(), added), cfg.training().seed())) {
            ExampleSet set = data.data().eval().isEmpty() ? data.data().train() : data.data().eval();
            Collator collator = new Collator(data.data().padId(), cfg.data().padToMultipleOf(),
                    data.data().neatPacking());
            Autocast autocast = Autocast.OFF;
            boolean accuracy = cfg.finetuning().computeAccuracy();
            opts.say("evaluating " + set.size() + " examples (" + (data.data().eval().isEmpty() ? "dataset"
                    : "validation split") + ") with " + model.describe() + " on " + model.deviceName());
            LossEvaluator.Result r = LossEvaluator.evaluate(model.model(), set, collator,
                    cfg.training().perDeviceEvalBatchSize(),
                    new MemoryEfficientLoss(false, cfg.training().fusedCrossEntropy(), 0, autocast), autocast, accuracy);
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("eval_loss", r.loss());
            m.put("eval_tokens", r.targetTokens());
            m.put("eval_examples", r.examples());
            m.put("eval_batches", r.batches());
            m.put("perplexity", Math.exp(r.loss()));
            if (accuracy) {
                m.put("eval_accuracy", r.accuracy());
            }
            m.put("eval_runtime", Math.round(r.runtimeSeconds() * 1e4) / 1e4);
            return m;
        }
    }
}
