package io.sftnative.cli;

import java.util.Map;
import java.util.concurrent.Callable;

import io.sftnative.api.SftEvaluation;
import io.sftnative.config.SftConfig;
import io.sftnative.json.PyJson;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** {@code eval config.yaml key=value ...}: the causal-LM loss of a model over a dataset; JSON on the last line. */
@Command(name = "eval", mixinStandardHelpOptions = true,
        footerHeading = "%nExample:%n",
        footer = {
                "  java -jar sft-native.jar eval examples/eval_loss.yaml dataset=data/tokenized_eval.jsonl"
                        + " cutoff_len=2048"},
        description = {"Compute the causal-LM loss of a model (plus adapter_name_or_path) over a dataset, with the"
                + " training data pipeline (any dataset train accepts, including pre-tokenized JSONL"
                + " dataset=/path/file.jsonl).",
                "Examples: eval_dataset when set, else the val_size split, else all of dataset.",
                "The last line of standard output is one JSON object: eval_loss (mean over target tokens, labels"
                        + " shifted by one), eval_tokens, eval_examples, eval_batches, perplexity, eval_runtime."})
final class EvalCommand implements Callable<Integer> {
    @Mixin
    ConfigArgs config;

    @Override
    public Integer call() throws Exception {
        SftConfig cfg = config.load();
        Map<String, Object> m = SftEvaluation.run(cfg, msg -> System.err.println(msg));
        System.out.println(PyJson.dumps(m));
        return 0;
    }
}
