package io.sftnative.bench.jmh;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import io.sftnative.batch.Batch;
import io.sftnative.batch.Collator;
import io.sftnative.data.Example;
import io.sftnative.data.Packing;

/**
 * Host-side batch work of every training step: the collator padding a batch of alpaca-sized examples (45-512 tokens,
 * prompt labels -100) to a multiple of 8, and the packing knapsack over one 1000-example preprocessing chunk.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class CollatorBench {
    @Param({"8", "32"})
    int batchSize;

    private List<Example> examples;
    private int[] chunkLengths;
    private final Collator collator = new Collator(0, 8, false);

    @Setup
    public void setup() {
        SplittableRandom rnd = new SplittableRandom(7);
        examples = new ArrayList<>();
        for (int i = 0; i < batchSize; i++) {
            int n = rnd.nextInt(45, 513);
            int[] ids = new int[n];
            int[] labels = new int[n];
            int prompt = n / 4;
            for (int t = 0; t < n; t++) {
                ids[t] = rnd.nextInt(151_665);
                labels[t] = t < prompt ? -100 : ids[t];
            }
            examples.add(Example.of(ids, labels));
        }
        chunkLengths = new int[1000];
        for (int i = 0; i < chunkLengths.length; i++) {
            chunkLengths[i] = rnd.nextInt(45, 512);
        }
    }

    @Benchmark
    public Batch collate() {
        return collator.collate(examples);
    }

    @Benchmark
    public List<int[]> packKnapsack1000() {
        return Packing.greedyKnapsack(chunkLengths, 511);
    }
}
