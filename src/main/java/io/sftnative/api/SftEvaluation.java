package io.sftnative.api;

import java.io.IOException;
import java.util.Map;
import java.util.function.Consumer;

import io.sftnative.config.SftConfig;
import io.sftnative.train.EvalRecipe;
import io.sftnative.train.RunOptions;

/**
 * The evaluation loss of a model (and adapter) over a dataset, as {@code sft-native eval} computes it: the same
 * data pipeline and loss code as training's evaluation.
 */
public final class SftEvaluation {
    private SftEvaluation() {}

    /**
     * @param messages receives progress messages (data summary); may be null
     * @return {@code eval_loss}, {@code eval_tokens}, {@code eval_examples}, {@code perplexity}, ... (see
     *         {@link EvalRecipe#run})
     */
    public static Map<String, Object> run(SftConfig config, Consumer<String> messages) throws IOException {
        TrainingListener l = new TrainingListener() {
            @Override
            public void onMessage(String message) {
                if (messages != null) {
                    messages.accept(message);
                }
            }
        };
        return EvalRecipe.run(config, new RunOptions(l, () -> false, null, false));
    }
}
