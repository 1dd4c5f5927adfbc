package io.sftnative.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.function.Supplier;

import io.sftnative.data.DatasetSampling.MixStrategy;
import io.sftnative.data.RecordReader.RawRecord;

/**
 * The records of a dataset list in the order LLaMA-Factory feeds them to preprocessing: per dataset
 * {@code num_samples} then {@code max_samples}, then merged by {@code mix_strategy}.
 *
 * <p>The common case (concat, no num_samples) streams file by file holding one record. Sampling and interleaving
 * need each dataset's length and random access, so those datasets' records (after max_samples) are held in memory
 * while the plan runs: LLaMA-Factory holds them as memory-mapped Arrow tables instead.
 */
final class RecordPlan implements Iterator<ChunkProcessor.Item>, AutoCloseable {

    /**
     * How the datasets of one list are drawn and merged.
     *
     * @param maxSamples at most this many records per dataset after num_samples (0 = all)
     * @param mix        how several datasets are merged
     * @param probs      interleave_probs (one per dataset), or null
     * @param seed       training seed: interleave's default_rng(seed)
     * @param rng        numpy's global state after set_seed(seed), shared by every dataset with num_samples (train
     *                   lists first, then eval lists), as LLaMA-Factory's np.random; asked for only when drawing
     */
    record Mixing(int maxSamples, MixStrategy mix, double[] probs, long seed, Supplier<NumpyRandomState> rng) {}

    private final List<DatasetSpec> specs;
    private final Mixing m;
    private final BiConsumer<RawRecord, DatasetSpec> firstRecord; // each dataset's first parseable record
    private final Consumer<String> log;
    private final boolean streaming;
    // streaming state
    private int specIndex;
    private int fileIndex;
    private long takenInSpec;
    private RecordSource reader;
    private long doneBytes;
    private long totalBytes;
    private DatasetSpec checkedSpec;
    // planned state
    private List<List<RawRecord>> held;
    private int[] order; // indices into the concatenation of held
    private int[] offsets;
    private int pos;

    RecordPlan(List<DatasetSpec> specs, Mixing m, Consumer<String> log,
            BiConsumer<RawRecord, DatasetSpec> firstRecord) {
        this.log = log;
        this.specs = List.copyOf(specs);
        this.m = m;
        this.firstRecord = firstRecord;
        boolean merged = specs.size() > 1 && m.mix() != MixStrategy.CONCAT;
        this.streaming = !merged && specs.stream().allMatch(s -> s.numSamples() == null);
        if (merged && m.probs() != null && m.probs().length != specs.size()) {
            throw new DataException("interleave_probs has " + m.probs().length + " values for " + specs.size()
                    + " datasets: give one probability per dataset", null, -1, "interleave_probs");
        }
        if (streaming) {
            for (DatasetSpec s : specs) {
                for (Path f : s.files()) {
                    totalBytes += size(f);
                }
            }
            return;
        }
        held = new ArrayList<>();
        for (DatasetSpec s : specs) {
            List<RawRecord> all = readAll(s);
            if (s.numSamples() != null) {
                if (all.isEmpty()) {
                    throw new DataException("dataset '" + s.name() + "' has no records to draw num_samples "
                            + s.numSamples() + " from", null, -1, s.name() + ".num_samples");
                }
                int[] idx = DatasetSampling.numSamples(m.rng().get(), all.size(), s.numSamples());
                List<RawRecord> picked = new ArrayList<>(idx.length);
                for (int i : idx) {
                    picked.add(all.get(i));
                }
                log.accept("sampled " + idx.length + " of " + all.size() + " records from dataset '" + s.name()
                        + "' (num_samples, seed " + m.seed() + ")");
                all = picked;
            }
            if (m.maxSamples() > 0 && all.size() > m.maxSamples()) {
                all = new ArrayList<>(all.subList(0, m.maxSamples()));
            }
            if (all.isEmpty()) {
                log.accept("warning: dataset '" + s.name() + "' has no records");
            }
            held.add(all);
        }
        int[] lengths = held.stream().mapToInt(List::size).toArray();
        offsets = new int[lengths.length];
        for (int d = 1; d < lengths.length; d++) {
            offsets[d] = offsets[d - 1] + lengths[d - 1];
        }
        if (merged) {
            checkInterleave(lengths);
            order = DatasetSampling.interleave(lengths, m.probs(), m.seed(), m.mix());
        } else {
            order = DatasetLoader.range(offsets[lengths.length - 1] + lengths[lengths.length - 1]);
        }
    }

    /**
     * Replays the num_samples draws of these datasets without keeping their records, so that the shared numpy
     * state is where LLaMA-Factory's would be when the train data came from the tokenized cache.
     */
    static void advance(List<DatasetSpec> specs, NumpyRandomState rng) {
        for (DatasetSpec s : specs) {
            if (s.numSamples() != null) {
                int n = 0;
                for (Path f : s.files()) {
                    try (RecordSource r = RecordSource.open(f, s)) {
                        while (r.hasNext()) {
                            r.next();
                            n++;
                        }
                    }
                }
                if (n > 0) {
                    DatasetSampling.numSamples(rng, n, s.numSamples());
                }
            }
        }
    }

    private void checkInterleave(int[] lengths) {
        for (int d = 0; d < lengths.length; d++) {
            if (lengths[d] == 0) {
                throw new DataException("mix_strategy " + m.mix().key + ": dataset '" + specs.get(d).name()
                        + "' has no records, so it can never be interleaved", null, -1, "mix_strategy");
            }
        }
        double[] p = m.probs();
        if (p == null) {
            return;
        }
        double sum = 0;
        for (int d = 0; d < p.length; d++) {
            if (!(p[d] >= 0) || Double.isInfinite(p[d])) {
                throw new DataException("interleave_probs must be non-negative numbers, got " + p[d], null, -1,
                        "interleave_probs");
            }
            if (p[d] == 0 && m.mix() != MixStrategy.INTERLEAVE_UNDER) {
                throw new DataException("interleave_probs gives dataset '" + specs.get(d).name() + "' probability 0"
                        + " but " + m.mix().key + " stops only when every dataset is used up, which would never"
                        + " happen (HF datasets loops forever): give it a probability > 0 or use interleave_under",
                        null, -1, "interleave_probs");
            }
            sum += p[d];
        }
        if (Math.abs(sum - 1.0) > Math.sqrt(Math.ulp(1.0))) { // numpy's tolerance in Generator.choice
            throw new DataException("interleave_probs must sum to 1 (numpy's rule), they sum to " + sum, null, -1,
                    "interleave_probs");
        }
    }

    private List<RawRecord> readAll(DatasetSpec s) {
        List<RawRecord> out = new ArrayList<>();
        boolean checked = false;
        for (Path f : s.files()) {
            try (RecordSource r = RecordSource.open(f, s)) {
                while (r.hasNext()) {
                    RawRecord rec = r.next();
                    if (!checked && rec.node() != null) {
                        firstRecord.accept(rec, s);
                        checked = true;
                    }
                    out.add(rec);
                }
            }
        }
        return out;
    }

    /** Progress so far in {@link #unit()}s. */
    long done() {
        return streaming ? doneBytes + (reader == null ? 0 : reader.bytesRead()) : pos;
    }

    long total() {
        return streaming ? totalBytes : order.length;
    }

    /** Bytes when streaming files, records when a sampled/interleaved plan is replayed. */
    boolean countsBytes() {
        return streaming;
    }

    @Override
    public boolean hasNext() {
        if (!streaming) {
            return pos < order.length;
        }
        while (true) {
            if (specIndex >= specs.size()) {
                return false;
            }
            DatasetSpec s = specs.get(specIndex);
            boolean full = m.maxSamples() > 0 && takenInSpec >= m.maxSamples();
            if (!full && reader != null && reader.hasNext()) {
                return true;
            }
            if (reader != null) {
                doneBytes += size(s.files().get(fileIndex));
                reader.close();
                reader = null;
                fileIndex++;
            }
            if (full || fileIndex >= s.files().size()) {
                if (takenInSpec == 0) {
                    log.accept("warning: dataset '" + s.name() + "' has no records");
                }
                specIndex++;
                fileIndex = 0;
                takenInSpec = 0;
                continue;
            }
            reader = RecordSource.open(s.files().get(fileIndex), s);
        }
    }

    @Override
    public ChunkProcessor.Item next() {
        if (!hasNext()) {
            throw new NoSuchElementException();
        }
        if (!streaming) {
            int g = order[pos++];
            int d = datasetOf(g);
            return new ChunkProcessor.Item(held.get(d).get(g - offsets[d]), specs.get(d));
        }
        DatasetSpec s = specs.get(specIndex);
        RawRecord r = reader.next();
        takenInSpec++;
        if (checkedSpec != s && r.node() != null) {
            firstRecord.accept(r, s);
            checkedSpec = s;
        }
        return new ChunkProcessor.Item(r, s);
    }

    private int datasetOf(int g) {
        int d = offsets.length - 1;
        while (offsets[d] > g) {
            d--;
        }
        return d;
    }

    @Override
    public void close() {
        if (reader != null) {
            reader.close();
            reader = null;
        }
    }

    private static long size(Path f) {
        try {
            return Files.size(f);
        } catch (IOException e) {
            throw new DataException("cannot read " + f + ": " + e.getMessage(), f, -1, null);
        }
    }
}
