package io.sftnative.data;

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
 */
public record LoadedData(ExampleSet train, ExampleSet eval, PreprocessReport trainReport,
        PreprocessReport evalReport, int padId, boolean neatPacking, AutoCloseable owner) implements AutoCloseable {

    @Override
    public void close() {
        try {
            owner.close();
        } catch (Exception e) {
            throw new IllegalStateException("cannot release the tokenized cache: " + e.getMessage(), e);
        }
    }
}
