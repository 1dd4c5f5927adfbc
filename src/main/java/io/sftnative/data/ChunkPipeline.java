package io.sftnative.data;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * The parallel half of {@link DatasetLoader}: records stream in from the {@link RecordPlan}, sub-chunks are encoded
 * on {@code workers} threads, and the rows of each completed 1000-record chunk are written in record order, so the
 * cache is the same whatever the thread count. At most {@code 4 × workers} sub-chunks are in flight (bounded memory).
 */
final class ChunkPipeline {
    private ChunkPipeline() {}

    /** Reads every record, processes chunks in parallel, writes their rows in order; returns the report. */
    static PreprocessReport run(List<DatasetSpec> specs, DatasetLoader.Options o, ChunkProcessor.Settings settings,
            int workers, TokenizedStore.Writer writer, Consumer<String> log, String what, RecordPlan.Mixing mixing)
            throws IOException {
        ChunkProcessor processor = new ChunkProcessor(settings);
        PreprocessReport.Builder total = new PreprocessReport.Builder(o.cutoffLen());
        ExecutorService pool = Executors.newFixedThreadPool(workers, r -> {
            Thread t = new Thread(r, "sft-preprocess");
            t.setDaemon(true);
            return t;
        });
        Deque<Task> inFlight = new ArrayDeque<>();
        List<int[][]> pending = new ArrayList<>(ChunkProcessor.CHUNK); // examples of the chunk being completed
        try (RecordPlan plan = new RecordPlan(specs, mixing, log,
                (r, spec) -> ColumnCheck.firstRecord(r, spec, o.pretrain(), log));
                ProgressBar bar = o.progress() && stderrIsTerminal() ? progressBar(what, plan) : null) {
            List<ChunkProcessor.Item> chunk = new ArrayList<>(ChunkProcessor.SUB_CHUNK);
            long submitted = 0;
            while (plan.hasNext()) {
                chunk.add(plan.next());
                if (chunk.size() == ChunkProcessor.SUB_CHUNK) {
                    List<ChunkProcessor.Item> full = chunk;
                    submitted += full.size();
                    inFlight.add(new Task(pool.submit(() -> processor.encode(full)),
                            submitted % ChunkProcessor.CHUNK == 0));
                    chunk = new ArrayList<>(ChunkProcessor.SUB_CHUNK);
                    while (inFlight.size() > 4 * workers) {
                        drain(inFlight.poll(), pending, processor, writer, total);
                    }
                    if (bar != null) {
                        bar.stepTo(plan.done());
                    }
                }
            }
            if (!chunk.isEmpty()) {
                List<ChunkProcessor.Item> last = chunk;
                inFlight.add(new Task(pool.submit(() -> processor.encode(last)), true));
            }
            while (!inFlight.isEmpty()) {
                drain(inFlight.poll(), pending, processor, writer, total);
            }
            if (!pending.isEmpty()) { // the last chunk ended on a sub-chunk boundary
                writeRows(processor.rows(pending, total), writer);
            }
            if (bar != null) {
                bar.stepTo(bar.getMax());
            }
        } finally {
            pool.shutdownNow();
        }
        return total.build();
    }

    private static ProgressBar progressBar(String what, RecordPlan plan) {
        boolean bytes = plan.countsBytes();
        long total = plan.total();
        boolean big = total >= 64L << 20;
        return new ProgressBarBuilder().setTaskName("Tokenizing " + what).setInitialMax(Math.max(1, total))
                .setUnit(!bytes ? " records" : big ? " MiB" : " KiB", !bytes ? 1 : big ? 1 << 20 : 1 << 10)
                .setStyle(ProgressBarStyle.ASCII).setConsumer(new ConsoleProgressBarConsumer(System.err))
                .setUpdateIntervalMillis(500).showSpeed().build();
    }

    /** An encoding task and whether its sub-chunk completes a 1000-record chunk. */
    private record Task(Future<ChunkProcessor.Encoded> future, boolean endsChunk) {}

    private static void drain(Task task, List<int[][]> pending, ChunkProcessor processor,
            TokenizedStore.Writer writer, PreprocessReport.Builder total) throws IOException {
        ChunkProcessor.Encoded r;
        try {
            r = task.future().get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while preprocessing", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException re) {
                throw re;
            }
            throw new IOException(e.getCause());
        }
        total.merge(r.report());
        pending.addAll(r.examples());
        if (task.endsChunk()) {
            writeRows(processor.rows(pending, total), writer);
            pending.clear();
        }
    }

    private static void writeRows(List<Packing.Row> rows, TokenizedStore.Writer writer) throws IOException {
        for (Packing.Row row : rows) {
            writer.add(row.ids(), row.labels(), row.segLens());
        }
    }

    /**
     * A carriage-return progress bar only makes sense on a terminal; in logs and pipes it interleaves with other
     * output (its last frame has no newline), so it is drawn only when the console is interactive.
     */
    private static boolean stderrIsTerminal() {
        java.io.Console c = System.console();
        return c != null && c.isTerminal();
    }
}
