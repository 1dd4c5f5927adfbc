package io.sftnative.data;

import java.util.Map;

/**
 * The train and eval examples of a run and what preprocessing did. Owns the memory-mapped caches: close it when
 * training is done (the example sets fail loudly afterwards).
 *
 * @param train       training examples (shuffled by the val_size split when there is one; otherwise file order)
 * @param eval        evaluation examples (val_size split or eval_dataset), empty when neither is set
 * @param trainReport preprocessing of the {@code dataset} list
 * @param evalReport  preprocessing of {@code eval_dataset}, or null
 * @param padId       the id rows are padded with (the collator uses it too)
 * @param neatPacking whether attention masks hold segment ids (block-diagonal attention)
 * @param evalSets    with eval_on_each_dataset: each eval dataset's own examples by name (in eval_dataset order;
 *                    {@code eval} is then the first of them); otherwise empty
 */
public record LoadedData(ExampleSet train, ExampleSet eval, PreprocessReport trainReport,
        PreprocessReport evalReport, int padId, boolean neatPacking, AutoCloseable owner,
        Map<String, ExampleSet> evalSets) implements AutoCloseable {

    public LoadedData {
        evalSets = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(evalSets));
    }

    public LoadedData(ExampleSet train, ExampleSet eval, PreprocessReport trainReport, PreprocessReport evalReport,
            int padId, boolean neatPacking, AutoCloseable owner) {
        this(train, eval, trainReport, evalReport, padId, neatPacking, owner, Map.of());
    }

    @Override
    public void close() {
        try {
            owner.close();
        } catch (Exception e) {
            throw new IllegalStateException("cannot release the tokenized cache: " + e.getMessage(), e);
        }
    }
}
