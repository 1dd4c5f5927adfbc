package io.sftnative.data;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * LLaMA-Factory's {@code streaming: true} for the training data: an endless stream of processed rows, read from the
 * files while training runs. A producer thread reads records, processes them in chunks of 1000 (template, labels,
 * packing or pt blocks, exactly as the tokenized cache would hold them), passes the rows through HF's shuffle buffer
 * ({@link ShuffleBuffer}, {@code buffer_size}, the run's seed) and hands them to training through a small queue.
 * When the files are used up, the next pass (epoch) starts with the epoch's shuffle seed, as HF's Trainer does with
 * {@code set_epoch}. Training reads position {@code i} of the stream in order; a resumed run skips the positions
 * its steps already used (HF likewise re-reads and skips the consumed batches). Memory: one chunk, the shuffle
 * buffer and the queue, never the whole file.
 */
final class StreamedExamples implements AutoCloseable {
    private static final Object END = new Object();
    private static final int QUEUE = 256;

    private final List<DatasetSpec> specs;
    private final ChunkProcessor processor;
    private final int cutoffLen;
    private final boolean neat;
    private final int bufferSize;
    private final long seed;
    private final boolean pretrain;
    private final Consumer<String> log;
    private final ExecutorService pool;
    private final BlockingQueue<Object> queue = new ArrayBlockingQueue<>(QUEUE);
    private final AtomicLong recordsRead = new AtomicLong();
    private final Thread producer;
    private volatile boolean closed;
    private long next; // the stream position the queue's head holds

    StreamedExamples(List<DatasetSpec> specs, ChunkProcessor.Settings settings, boolean neat, int bufferSize,
            long seed, int workers, Consumer<String> log) {
        this.specs = List.copyOf(specs);
        this.processor = new ChunkProcessor(settings);
        this.cutoffLen = settings.cutoffLen();
        this.neat = neat;
        this.bufferSize = bufferSize;
        this.seed = seed;
        this.pretrain = settings.pretrain();
        this.log = log;
        this.pool = Executors.newFixedThreadPool(workers, r -> {
            Thread t = new Thread(r, "sft-stream-encode");
            t.setDaemon(true);
            return t;
        });
        producer = new Thread(this::produce, "sft-stream");
        producer.setDaemon(true);
        producer.start();
    }

    /** Records read from the files so far (all passes). */
    long recordsRead() {
        return recordsRead.get();
    }

    /** Row {@code i} of the stream; positions are read in increasing order (skipped ones are discarded). */
    Example get(long i) {
        if (i < next) {
            throw new IllegalStateException("streamed training rows are read in order: position " + i
                    + " was already passed (" + next + ")");
        }
        while (true) {
            Object o;
            try {
                o = queue.take();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for streamed data", e);
            }
            if (o instanceof RuntimeException e) {
                queue.offer(e); // later calls fail the same way
                throw e;
            }
            if (o instanceof Error e) {
                queue.offer(e);
                throw e;
            }
            if (o == END) {
                queue.offer(END);
                throw new IllegalStateException("the data stream was closed");
            }
            if (next++ == i) {
                return (Example) o;
            }
        }
    }

    private void produce() {
        try {
            for (long epoch = 0; !closed; epoch++) {
                Consumer<String> say = epoch == 0 ? log : m -> { }; // notes once, not every pass
                ShuffleBuffer<Example> buffer = new ShuffleBuffer<>(bufferSize, seed, epoch);
                PreprocessReport.Builder report = new PreprocessReport.Builder(cutoffLen);
                RecordPlan.Mixing mixing = new RecordPlan.Mixing(0, DatasetSampling.MixStrategy.CONCAT, null, seed,
                        () -> {
                            throw new IllegalStateException("num_samples is refused with streaming");
                        });
                long rows = 0;
                try (RecordPlan plan = new RecordPlan(specs, mixing, say,
                        (r, spec) -> ColumnCheck.firstRecord(r, spec, pretrain, say))) {
                    List<ChunkProcessor.Item> chunk = new ArrayList<>(ChunkProcessor.CHUNK);
                    while (plan.hasNext() && !closed) {
                        chunk.add(plan.next());
                        recordsRead.incrementAndGet();
                        if (chunk.size() == ChunkProcessor.CHUNK) {
                            rows += process(chunk, report, buffer);
                            chunk = new ArrayList<>(ChunkProcessor.CHUNK);
                        }
                    }
                    if (!chunk.isEmpty()) {
                        rows += process(chunk, report, buffer);
                    }
                }
                if (closed) {
                    return;
                }
                buffer.finish(this::put);
                if (epoch == 0) {
                    PreprocessReport r = report.build();
                    log.accept("streamed train data, first pass: " + r.summary());
                    if (rows == 0) {
                        throw new DataException("dataset " + specs.stream().map(DatasetSpec::name).toList()
                                + " gives no training rows: " + r.summary(), null, -1, "dataset");
                    }
                }
            }
        } catch (Stopped s) {
            // closed while waiting for room in the queue
        } catch (RuntimeException | Error e) {
            putQuietly(e);
        }
    }

    /** Encodes a chunk (sub-chunks in parallel), builds its rows and feeds them to the shuffle buffer. */
    private long process(List<ChunkProcessor.Item> chunk, PreprocessReport.Builder report,
            ShuffleBuffer<Example> buffer) {
        List<Future<ChunkProcessor.Encoded>> parts = new ArrayList<>();
        for (int from = 0; from < chunk.size(); from += ChunkProcessor.SUB_CHUNK) {
            int to = Math.min(chunk.size(), from + ChunkProcessor.SUB_CHUNK);
            List<ChunkProcessor.Item> sub = chunk.subList(from, to);
            parts.add(pool.submit(() -> processor.encode(sub)));
        }
        List<int[][]> examples = new ArrayList<>(chunk.size());
        for (Future<ChunkProcessor.Encoded> f : parts) {
            ChunkProcessor.Encoded e;
            try {
                e = f.get();
            } catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
                throw new Stopped();
            } catch (ExecutionException ex) {
                throw ex.getCause() instanceof RuntimeException re ? re : new IllegalStateException(ex.getCause());
            }
            report.merge(e.report());
            examples.addAll(e.examples());
        }
        List<Packing.Row> rows = processor.rows(examples, report);
        for (Packing.Row row : rows) {
            buffer.add(TokenizedStore.example(row.ids(), row.labels(), row.segLens(), neat), this::put);
        }
        return rows.size();
    }

    private void put(Object o) {
        try {
            while (!queue.offer(o, 100, TimeUnit.MILLISECONDS)) {
                if (closed) {
                    throw new Stopped();
                }
            }
        } catch (InterruptedException e) {
            throw new Stopped();
        }
    }

    private void putQuietly(Object o) {
        try {
            put(o);
        } catch (Stopped s) {
            // nobody is reading any more
        }
    }

    /** Unwinds the producer when training ends before the stream does. */
    private static final class Stopped extends RuntimeException {
        Stopped() {
            super(null, null, false, false);
        }
    }

    @Override
    public void close() {
        closed = true;
        producer.interrupt();
        pool.shutdownNow();
        try {
            producer.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
