package io.sftnative.data;

/**
 * A read-only list of examples backed by the tokenized cache file (memory-mapped): any size, little heap.
 * Valid until the {@link LoadedData} it came from is closed; using it afterwards throws IllegalStateException.
 *
 * <p>With {@code streaming: true} the training set is instead an endless stream ({@link #streaming()}): example
 * {@code i} is position {@code i} of the shuffled stream, read in increasing order while training runs; its size is
 * unknown, so {@link #size()} is {@link Integer#MAX_VALUE} and the trainer's step count comes from max_steps.
 */
public final class ExampleSet {
    private final TokenizedStore store;
    private final int[] indices; // into the store, in this set's order
    private final StreamedExamples stream;

    ExampleSet(TokenizedStore store, int[] indices) {
        this.store = store;
        this.indices = indices;
        this.stream = null;
    }

    ExampleSet(StreamedExamples stream) {
        this.store = null;
        this.indices = null;
        this.stream = stream;
    }

    /** True for streamed training data (streaming: true): read in order, endless. */
    public boolean streaming() {
        return stream != null;
    }

    public int size() {
        return stream != null ? Integer.MAX_VALUE : indices.length;
    }

    public boolean isEmpty() {
        return stream == null && indices.length == 0;
    }

    public Example get(int i) {
        return stream != null ? stream.get(i) : store.get(indices[i]);
    }

    /** Length of example {@code i} without reading its tokens (for length-grouped batching). */
    public int length(int i) {
        requireStored();
        return store.length(indices[i]);
    }

    /** Where example {@code i} is in the cache (its position among all processed examples). */
    public int storeIndex(int i) {
        requireStored();
        return indices[i];
    }

    /** Records read from the data files so far (streamed data; for tests and progress). */
    long recordsRead() {
        return stream == null ? -1 : stream.recordsRead();
    }

    private void requireStored() {
        if (stream != null) {
            throw new UnsupportedOperationException("streamed training data has no random access");
        }
    }
}
