package io.sftnative.data;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * HF datasets' {@code IterableDataset.shuffle(seed, buffer_size)} (its BufferShuffledExamplesIterable), which
 * LLaMA-Factory applies to a streamed dataset: the first {@code bufferSize} examples fill a buffer; then each new
 * example replaces a randomly chosen buffered one, which is emitted; at the end the rest of the buffer is shuffled
 * and emitted. The random indices come 1000 at a time from {@code rng.integers(0, buffer_size, size=1000)} of
 * {@code np.random.default_rng(seed)}, and epoch {@code e > 0} reseeds with
 * {@code default_rng(default_rng(seed).integers(0, 2**63) - e)} (HF's effective generator), reimplemented bit for bit
 * ({@link NumpyGenerator}), so the order is HF's for the same seed (checked in StreamingTest).
 */
final class ShuffleBuffer<T> {
    private static final int RANDOM_BATCH = 1000;

    private final int size;
    private final NumpyGenerator rng;
    private final List<T> buffer;
    private int[] indices = new int[0];
    private int next;

    ShuffleBuffer(int size, long seed, long epoch) {
        if (size < 1) {
            throw new IllegalArgumentException("buffer_size must be >= 1");
        }
        this.size = size;
        this.rng = new NumpyGenerator(epochSeed(seed, epoch));
        this.buffer = new ArrayList<>(Math.min(size, 1 << 16));
    }

    /** HF's {@code _effective_generator} seed for {@code epoch}. */
    static long epochSeed(long seed, long epoch) {
        if (epoch == 0) {
            return seed;
        }
        long s = new NumpyGenerator(seed).integersBelow2To63() - epoch;
        return s < 0 ? Long.MAX_VALUE + (s + 1) : s; // (1 << 63) + s for a negative s, as HF does
    }

    /** Adds an example; when the buffer is full, a buffered one is emitted in its place. */
    void add(T example, Consumer<T> out) {
        if (buffer.size() < size) {
            buffer.add(example);
            return;
        }
        if (next == indices.length) {
            indices = rng.integers(size, RANDOM_BATCH);
            next = 0;
        }
        int i = indices[next++];
        out.accept(buffer.get(i));
        buffer.set(i, example);
    }

    /** The end of the data: what is left, shuffled. */
    void finish(Consumer<T> out) {
        rng.shuffle(buffer);
        buffer.forEach(out);
        buffer.clear();
    }
}
