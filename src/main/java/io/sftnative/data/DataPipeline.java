package io.sftnative.data;

import java.nio.file.Path;
import java.util.Optional;
import java.util.function.Consumer;

import io.sftnative.config.DataArgs;
import io.sftnative.template.Template;
import io.sftnative.template.TemplateDoctor;
import io.sftnative.template.TemplateOptions;
import io.sftnative.template.Templates;
import io.sftnative.tokenizer.Tokenizer;

/**
 * The data half of a run, from config to examples: tokenizer, template (checked against the model's own
 * chat_template), datasets. The trainer and {@code preflight} both start here.
 */
public final class DataPipeline {
    private DataPipeline() {}

    /**
     * Everything the trainer needs from the data side. Closing it releases the tokenizer and the caches.
     *
     * @param tokenizer       null when no model_name_or_path is set (pre-tokenized data only)
     * @param template        the chat template (null for pt without one, or without a tokenizer)
     * @param templateWarning the template doctor's warning, if any (already logged)
     */
    public record Prepared(Tokenizer tokenizer, Template template, LoadedData data, Optional<String> templateWarning)
            implements AutoCloseable {
        @Override
        public void close() {
            try {
                data.close();
            } finally {
                if (tokenizer != null) {
                    tokenizer.close();
                }
            }
        }
    }

    /**
     * @param modelDir model_name_or_path: a directory with tokenizer.json or tokenizer.model (weights not needed),
     *                 or null when every dataset is pre-tokenized
     * @param stage    sft or pt
     * @param seed     the val_size split's seed
     * @param log      user-facing messages (template warning, cache reuse, preprocessing summary)
     */
    public static Prepared prepare(Path modelDir, DataArgs data, String stage, long seed, boolean progress,
            Consumer<String> log) {
        return prepare(modelDir, data, stage, seed, progress, log, false);
    }

    /**
     * As {@link #prepare(Path, DataArgs, String, long, boolean, Consumer)}; {@code forTraining} honours
     * {@code streaming: true} (the train data then streams while training runs). Everything else (preflight,
     * evaluation) reads the data whole, streaming or not.
     */
    public static Prepared prepare(Path modelDir, DataArgs data, String stage, long seed, boolean progress,
            Consumer<String> log, boolean forTraining) {
        Tokenizer tok = modelDir == null ? null : Tokenizer.load(modelDir);
        try {
            Template template = null;
            Optional<String> warning = Optional.empty();
            if (tok != null && ("sft".equals(stage) || data.template() != null)) {
                TemplateOptions options = new TemplateOptions(data.template(), data.defaultSystem(),
                        data.toolFormat(), data.enableThinking(), data.preserveThinking(), data.maskHistory());
                template = Templates.resolve(options, tok);
                Templates.note(options, template).ifPresent(log);
                warning = TemplateDoctor.check(template, tok);
                warning.ifPresent(log);
            }
            DatasetLoader.Options o = DatasetLoader.options(data, stage, seed).withProgress(progress);
            if (!forTraining) {
                o = o.withStreaming(0);
            }
            LoadedData loaded = DatasetLoader.load(o, tok, template, log);
            return new Prepared(tok, template, loaded, warning);
        } catch (RuntimeException e) {
            if (tok != null) {
                tok.close();
            }
            throw e;
        }
    }
}
