package io.sftnative.bench.jmh;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import io.sftnative.files.AtomicFiles;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.model.safetensors.SafetensorsWriter;
import io.sftnative.torch.TorchRuntime;

/**
 * Loading a 128 MiB fp32 safetensors file (8 tensors of 2048 x 2048, in the page cache after the first read): the
 * header parse + memory map alone, copies owned by libtorch ({@code load}), and conversion to bf16 on load.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class SafetensorsBench {
    private Path dir;
    private Path file;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        TorchRuntime.boot();
        dir = Files.createTempDirectory("sft-jmh-safetensors");
        file = dir.resolve("model.safetensors");
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (int i = 0; i < 8; i++) {
                tensors.put("model.layers." + i + ".mlp.up_proj.weight", torch.randn(2048, 2048)); // (2048, 2048)
            }
            SafetensorsWriter.write(file, tensors, Map.of("format", "pt"));
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        AtomicFiles.deleteRecursively(dir);
    }

    @Benchmark
    public int openHeaderOnly() throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            return f.names().size();
        }
    }

    @Benchmark
    public long loadAllFp32() throws IOException {
        return loadAll(ScalarType.Float);
    }

    @Benchmark
    public long loadAllToBf16() throws IOException {
        return loadAll(ScalarType.BFloat16);
    }

    private long loadAll(ScalarType dtype) throws IOException {
        long n = 0;
        try (SafetensorsFile f = SafetensorsFile.open(file); PointerScope scope = new PointerScope()) {
            for (String name : f.names()) {
                n += f.load(name, dtype).numel();
            }
        }
        return n;
    }
}
