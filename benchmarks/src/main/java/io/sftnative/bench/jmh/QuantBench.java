package io.sftnative.bench.jmh;

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
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import io.sftnative.quant.QuantType;
import io.sftnative.quant.QuantizedWeight;
import io.sftnative.torch.TorchRuntime;

/**
 * bitsandbytes-compatible 4-bit quantization of one 2048 x 2048 fp32 weight (blocksize 64, double quantization) and
 * its dequantization to fp32 / bf16: what QLoRA does per frozen linear layer on load (quantize) and in every forward
 * and backward pass (dequantize). Native kernels of libsftnative through FFM.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class QuantBench {
    @Param({"NF4", "FP4"})
    String type;

    private Tensor weight; // (2048, 2048) fp32
    private QuantizedWeight quantized;

    @Setup(Level.Trial)
    public void setup() {
        TorchRuntime.boot();
        try (PointerScope scope = new PointerScope()) {
            weight = torch.randn(2048, 2048).mul(new org.bytedeco.pytorch.Scalar(0.02));
            weight.retainReference();
        }
        quantized = QuantizedWeight.quantize(weight, QuantType.valueOf(type), 64, true);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        quantized.close();
        weight.releaseReference();
    }

    @Benchmark
    public long quantize() {
        try (QuantizedWeight q = QuantizedWeight.quantize(weight, QuantType.valueOf(type), 64, true)) {
            return q.packed().numel();
        }
    }

    @Benchmark
    public long dequantizeFp32() {
        try (PointerScope scope = new PointerScope()) {
            return quantized.dequantize(ScalarType.Float).numel();
        }
    }

    @Benchmark
    public long dequantizeBf16() {
        try (PointerScope scope = new PointerScope()) {
            return quantized.dequantize(ScalarType.BFloat16).numel();
        }
    }
}
