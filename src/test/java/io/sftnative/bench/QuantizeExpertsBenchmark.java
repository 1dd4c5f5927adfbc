package io.sftnative.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import io.sftnative.quant.QuantType;
import io.sftnative.quant.QuantizedWeight;
import io.sftnative.torch.TorchRuntime;

/**
 * Is QLoRA's one-native-call-per-expert-weight quantization dominated by per-call overhead? Quantizes N expert
 * weights of one shape (NF4, blocksize 64, double quantization, as QLoRA loads them) one call per tensor, and the same
 * values as one concatenated tensor in a single call (the most any batching could save), and prints both times.
 * Not a test; nothing is asserted.
 *
 * <pre>
 * mvn -o -q test-compile &amp;&amp; benchmarks/run-java.sh QuantizeExpertsBenchmark [count] [rows] [cols] ...
 * </pre>
 * Arguments: tensor count, then shapes as rows cols pairs (default: 192 tensors at 64x48, 768x2048, 2048x768).
 */
public final class QuantizeExpertsBenchmark {
    private QuantizeExpertsBenchmark() {}

    public static void main(String[] args) {
        TorchRuntime.boot(2);
        int count = args.length > 0 ? Integer.parseInt(args[0]) : 192;
        List<long[]> shapes = new ArrayList<>();
        for (int i = 1; i + 1 < args.length; i += 2) {
            shapes.add(new long[] {Long.parseLong(args[i]), Long.parseLong(args[i + 1])});
        }
        if (shapes.isEmpty()) {
            shapes = List.of(new long[] {64, 48}, new long[] {768, 2048}, new long[] {2048, 768});
        }
        System.out.printf(Locale.ROOT, "%-12s %6s %14s %14s %10s %12s%n", "shape", "count", "per-tensor ms",
                "one-call ms", "ratio", "overhead/call");
        for (long[] shape : shapes) {
            try (PointerScope scope = new PointerScope()) {
                torch.manual_seed(1);
                List<Tensor> weights = new ArrayList<>();
                TensorVector all = new TensorVector();
                for (int i = 0; i < count; i++) {
                    Tensor w = torch.randn(shape).mul(new org.bytedeco.pytorch.Scalar(0.02)); // (rows, cols) fp32
                    weights.add(w);
                    all.push_back(w);
                }
                Tensor stacked = torch.cat(all, 0); // (count * rows, cols): the same blocks in one tensor
                double perTensor = Double.MAX_VALUE;
                double oneCall = Double.MAX_VALUE;
                for (int rep = 0; rep < 3; rep++) { // best of 3: a shared machine
                    long t0 = System.nanoTime();
                    for (Tensor w : weights) {
                        try (PointerScope s = new PointerScope()) {
                            QuantizedWeight.quantize(w, QuantType.NF4, 64, true).close();
                        }
                    }
                    long t1 = System.nanoTime();
                    try (PointerScope s = new PointerScope()) {
                        QuantizedWeight.quantize(stacked, QuantType.NF4, 64, true).close();
                    }
                    long t2 = System.nanoTime();
                    perTensor = Math.min(perTensor, (t1 - t0) / 1e6);
                    oneCall = Math.min(oneCall, (t2 - t1) / 1e6);
                }
                System.out.printf(Locale.ROOT, "%-12s %6d %14.1f %14.1f %10.2f %10.1f us%n", shape[0] + "x" + shape[1],
                        count, perTensor, oneCall, perTensor / oneCall, (perTensor - oneCall) * 1e3 / count);
            }
        }
    }
}
