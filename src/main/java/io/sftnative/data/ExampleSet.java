package io.sftnative.data;

/**
 * A read-only list of examples backed by the tokenized cache file (memory-mapped): any size, little heap.
 * Valid until the {@link LoadedData} it came from is closed; using it afterwards throws IllegalStateException.
 */
public final class ExampleSet {
    private final TokenizedStore store;
    private final int[] indices; // into the store, in this set's order

    ExampleSet(TokenizedStore store, int[] indices) {
        this.store = store;
        this.indices = indices;
    }

    public int size() {
        return indices.length;
    }

    public boolean isEmpty() {
        return indices.length == 0;
    }

    public Example get(int i) {
        return store.get(indices[i]);
    }

    /** Length of example {@code i} without reading its tokens (for length-grouped batching). */
    public int length(int i) {
        return store.length(indices[i]);
    }

    /** Where example {@code i} is in the cache (its position among all processed examples). */
    public int storeIndex(int i) {
        return indices[i];
    }
}
