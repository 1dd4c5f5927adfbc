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
        Map<String, Object> m = EvalRecipe.run(config, new RunOptions(l, () -> false, null, false));
        for (Map.Entry<String, Object> e : m.entrySet()) {
            if (e.getValue() instanceof Number n && !Double.isFinite(n.doubleValue())) {
                // {"eval_loss": NaN} is not JSON, and with exit 0 it reads as a result
                throw new IllegalStateException("'" + e.getKey() + "' is " + n + ": the model's outputs are not"
                        + " finite on this data (NaN/Inf weights, or an overflow in bf16?)");
            }
        }
        return m;
    }
}
