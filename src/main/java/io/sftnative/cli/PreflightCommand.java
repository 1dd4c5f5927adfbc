package io.sftnative.cli;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import io.sftnative.config.SftConfig;
import io.sftnative.data.DataPipeline;
import io.sftnative.data.ExampleSet;
import io.sftnative.data.Preflight;
import io.sftnative.tokenizer.AddedTokens;
import io.sftnative.train.NewTokens;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code preflight config.yaml key=value ...}: builds the training data exactly as train would, and reports on it. */
@Command(name = "preflight", mixinStandardHelpOptions = true,
        footerHeading = "%nExample:%n",
        footer = {
                "  java -jar sft-native.jar preflight examples/qwen2_5_lora_sft.yaml --show 3 --dump processed.jsonl"},
        description = {"Check the data before training: reads, converts, templates and tokenizes the datasets as"
                + " train would (same config and overrides), then reports examples read/kept/dropped (with reasons"
                + " and file:line), truncation, token lengths, the trainable-token fraction, and one example with"
                + " its masked parts in «». Warns when the template does not match the model's chat_template.",
                "model_name_or_path may be a tokenizer-only directory (tokenizer.json or tokenizer.model, and"
                        + " tokenizer_config.json)."})
final class PreflightCommand implements Callable<Integer> {
    @Mixin
    ConfigArgs config;

    @Option(names = "--dump", paramLabel = "FILE.jsonl",
            description = "Write every processed example as a JSON line: split, input_ids, labels, text.")
    Path dump;

    @Option(names = "--show", paramLabel = "K", defaultValue = "0",
            description = "Which training example to show with its masked parts (default: ${DEFAULT-VALUE}).")
    int show;

    @Override
    public Integer call() throws Exception {
        PrintStream out = System.out;
        PrintStream err = System.err;
        SftConfig cfg = config.load();
        String model = cfg.model().modelNameOrPath();
        String stage = cfg.finetuning().stage();
        Path modelDir = model == null ? null : Path.of(model);
        try (AddedTokens added = NewTokens.stage(cfg.model().newTokens(), modelDir, m -> err.println(m));
                DataPipeline.Prepared p = DataPipeline.prepare(added != null ? added.directory() : modelDir,
                        cfg.data(), stage, cfg.training().seed(), true, m -> err.println(m))) {
            out.println("stage " + stage + ", template " + (p.template() == null ? "none" : p.template().name())
                    + ", cutoff_len " + cfg.data().cutoffLen() + (cfg.data().packingFor(stage) ? ", packing" : "")
                    + (cfg.data().neatPacking() ? " (neat)" : ""));
            p.templateWarning().ifPresent(w -> out.println(w));
            Preflight.printReport(out, "train (" + String.join(",", cfg.data().dataset()) + ")",
                    p.data().trainReport());
            if (p.data().evalReport() != null) {
                Preflight.printReport(out, "eval (" + String.join(",", cfg.data().evalDataset()) + ")",
                        p.data().evalReport());
            }
            ExampleSet train = p.data().train();
            out.printf("rows: %d train, %d eval%n", train.size(), p.data().eval().size());
            if (show >= 0 && show < train.size()) {
                var e = train.get(show);
                out.printf("== training example %d: %d tokens, %d trained; text that takes no loss is in «»%n",
                        show, e.length(), e.trainableTokens());
                out.println(Preflight.showExample(p.tokenizer(), e));
            } else {
                out.println("(no training example " + show + " to show; there are " + train.size() + ")");
            }
            if (dump != null) {
                Preflight.dump(dump, p.data(), p.tokenizer());
                out.println("wrote " + (train.size() + p.data().eval().size()) + " examples to " + dump);
            }
        }
        return 0;
    }
}
