package io.sftnative.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.data.DatasetLoader;
import io.sftnative.data.LoadedData;
import io.sftnative.files.AtomicFiles;
import io.sftnative.template.Templates;
import io.sftnative.tokenizer.Tokenizer;

/**
 * Data pipeline throughput: examples/s of the whole sft preprocessing (read JSON, convert, qwen template, tokenize,
 * labels, write and verify the cache) for alpaca_en_demo with the Qwen2.5 tokenizer, next to the raw tokenizer on the
 * same texts (each example's instruction, input and output as one string: the floor), with the same thread count.
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -Dai.djl.offline=true -cp target/classes:$(cat target/cp.txt) \
 *     io.sftnative.bench.DataBench [threads=2] [repeats=7] [shared=../shared]
 * </pre>
 */
public final class DataBench {
    private DataBench() {}

    public static void main(String[] args) throws Exception {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        int repeats = args.length > 1 ? Integer.parseInt(args[1]) : 7;
        Path shared = Path.of(args.length > 2 ? args[2] : "../shared");
        Path data = shared.resolve("data/llamafactory-demo");
        Path cache = Files.createTempDirectory("sft-databench");
        List<String> texts = new ArrayList<>();
        for (JsonNode r : new ObjectMapper().readTree(data.resolve("alpaca_en_demo.json").toFile())) {
            String input = r.path("input").asText();
            texts.add(r.path("instruction").asText() + (input.isEmpty() ? "" : "\n" + input)
                    + r.path("output").asText());
        }
        int n = texts.size();
        try (Tokenizer tok = Tokenizer.load(shared.resolve("assets/tokenizers/qwen2_5"))) {
            var template = Templates.named("qwen");
            var opts = new DatasetLoader.Options(List.of("alpaca_en_demo"), List.of(), data, "sft", 2048, 0, 0,
                    false, false, false, false, threads, true, cache, 42, false);
            double[] raw = new double[repeats];
            double[] pipe = new double[repeats];
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            long tokens = 0;
            for (int rep = -2; rep < repeats; rep++) { // two warm-up rounds
                long t0 = System.nanoTime();
                tokens = rawTokenize(pool, tok, texts, threads);
                long t1 = System.nanoTime();
                int rows;
                try (LoadedData d = DatasetLoader.load(opts, tok, template, m -> {})) {
                    rows = d.train().size();
                }
                long t2 = System.nanoTime();
                if (rows != n) {
                    throw new IllegalStateException("pipeline kept " + rows + " of " + n);
                }
                if (rep >= 0) {
                    raw[rep] = n / ((t1 - t0) / 1e9);
                    pipe[rep] = n / ((t2 - t1) / 1e9);
                }
            }
            pool.shutdown();
            Arrays.sort(raw);
            Arrays.sort(pipe);
            double rawMed = raw[repeats / 2];
            double pipeMed = pipe[repeats / 2];
            System.out.printf("alpaca_en_demo: %d examples, %d raw tokens; %d threads, median of %d%n", n, tokens,
                    threads, repeats);
            System.out.printf("raw tokenizer (floor): %.0f examples/s (%.0f tokens/s)%n", rawMed,
                    rawMed * tokens / n);
            System.out.printf("sft pipeline (qwen template, labels, cache write+verify): %.0f examples/s"
                    + " = %.0f%% of raw%n", pipeMed, 100 * pipeMed / rawMed);
        } finally {
            AtomicFiles.deleteRecursively(cache);
        }
    }

    private static long rawTokenize(ExecutorService pool, Tokenizer tok, List<String> texts, int threads)
            throws Exception {
        List<Future<Long>> parts = new ArrayList<>();
        int per = (texts.size() + threads - 1) / threads;
        for (int t = 0; t < threads; t++) {
            List<String> slice = texts.subList(Math.min(texts.size(), t * per), Math.min(texts.size(),
                    (t + 1) * per));
            parts.add(pool.submit(() -> {
                long c = 0;
                for (String s : slice) {
                    c += tok.encode(s).length;
                }
                return c;
            }));
        }
        long total = 0;
        for (Future<Long> f : parts) {
            total += f.get();
        }
        return total;
    }
}
