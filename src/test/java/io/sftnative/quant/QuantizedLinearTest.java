package io.sftnative.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.torch.TorchRuntime;

/** The quantized frozen linear layer: forward and input gradient equal the dequantized dense layer's. */
@SuppressWarnings("try")
class QuantizedLinearTest {
    @BeforeAll
    static void boot() {
        io.sftnative.bindings.NativeTestSupport.assumeNativeBuilt(); // quantization / fused loss kernels
        TorchRuntime.boot(2);
    }

    static Tensor randn(long seed, ScalarType dtype, long... shape) {
        Generator g = torch.make_generator_cpu(seed);
        return torch.empty(shape, new TensorOptions(ScalarType.Float), new MemoryFormatOptional())
                .normal_(0.0, 1.0, new GeneratorOptional(g)).to(dtype);
    }

    static double maxAbs(Tensor a, Tensor b) {
        return a.to(ScalarType.Double).sub(b.to(ScalarType.Double)).abs().max().item_double();
    }

    /** The quantized layer against linear(x, dequant(W)) with W a plain frozen tensor: values and dL/dx. */
    private static double[] compare(QuantizationSpec spec, ScalarType dtype, boolean withBias) {
        try (PointerScope scope = new PointerScope()) {
            Tensor w = randn(1, dtype, 48, 64).mul(new Scalar(0.05)); // (out, in)
            Tensor bias = withBias ? randn(2, dtype, 48) : null;
            try (QuantizedLinear q = spec.quantize("test.proj", w, bias)) {
                Tensor x0 = randn(3, dtype, 2, 5, 64).requires_grad_(true); // (B, T, in) leaf
                Tensor r = randn(4, dtype, 2, 5, 48); // fixed upstream weights of the loss
                Tensor x = x0.mul(new Scalar(1.5)); // a non-leaf input, as inside a model

                Tensor wd = q.dequantize(dtype); // (out, in) the reference's frozen dense weight
                Tensor yRef = bias == null ? torch.linear(x, wd) : torch.linear(x, wd, new TensorOptional(bias));
                Tensor gRef = torch.grad(new TensorVector(yRef.mul(r).sum()), new TensorVector(x0)).get(0);

                QuantizedLinear.resetDequantizedUseCount();
                Tensor y = q.forward(x);
                assertEquals(1, QuantizedLinear.pendingBackward());
                assertEquals(1, QuantizedLinear.maxDequantizedUseCount(), "dequantized weight kept after forward");
                Tensor g = torch.grad(new TensorVector(y.mul(r).sum()), new TensorVector(x0)).get(0);
                assertEquals(0, QuantizedLinear.pendingBackward());
                return new double[] {maxAbs(y, yRef), maxAbs(g, gRef), gRef.abs().max().item_double()};
            }
        }
    }

    @Test
    void forwardAndInputGradientEqualTheDequantizedDenseLayer() {
        QuantizationSpec[] specs = {QuantizationSpec.nf4(), new QuantizationSpec(4, QuantType.FP4, false, 32),
                new QuantizationSpec(8, QuantType.NF4, false, 64)};
        for (QuantizationSpec spec : specs) {
            for (ScalarType dtype : new ScalarType[] {ScalarType.Float, ScalarType.BFloat16}) {
                for (boolean bias : new boolean[] {false, true}) {
                    double[] e = compare(spec, dtype, bias);
                    System.out.printf("QuantizedLinear %s %s bias=%s: max |dy| %.3g, max |dx| %.3g (max |dx| %.3g)%n",
                            spec, dtype, bias, e[0], e[1], e[2]);
                    assertEquals(0.0, e[0], 0.0, "forward differs");
                    assertEquals(0.0, e[1], 1e-6 * e[2], "input gradient differs");
                }
            }
        }
    }

    @Test
    void autogradKeepsTheDenseWeightOfAPlainLinearButNotOfAQuantizedOne() {
        // the use-count probe is meaningful: libtorch's linear saves its frozen weight for dL/dx
        try (PointerScope scope = new PointerScope()) {
            Tensor w = randn(5, ScalarType.Float, 16, 32);
            Tensor x = randn(6, ScalarType.Float, 3, 32).requires_grad_(true);
            long before = w.use_count();
            Tensor y = torch.linear(x, w);
            assertTrue(w.use_count() > before, "expected autograd to reference the dense weight");
            try (QuantizedLinear q = QuantizationSpec.nf4().quantize("p", w, null)) {
                QuantizedLinear.resetDequantizedUseCount();
                Tensor yq = q.forward(x);
                assertEquals(1, QuantizedLinear.maxDequantizedUseCount());
                assertTrue(yq.requires_grad() && y.requires_grad());
                assertEquals(1, QuantizedLinear.discardPendingBackward(), "a call without backward stays pending");
            }
        }
    }

    @Test
    void trainableBiasGetsItsGradientAndNoGradModeRegistersNothing() {
        try (PointerScope scope = new PointerScope()) {
            Tensor w = randn(7, ScalarType.Float, 8, 32);
            Tensor bias = randn(8, ScalarType.Float, 8).requires_grad_(true);
            try (QuantizedLinear q = QuantizationSpec.nf4().quantize("p", w, bias)) {
                Tensor x = randn(9, ScalarType.Float, 4, 32);
                Tensor y = q.forward(x); // x needs no grad: only the bias path is differentiable
                assertEquals(0, QuantizedLinear.pendingBackward());
                y.sum().backward();
                assertEquals(0.0, maxAbs(bias.grad(), torch.full(new long[] {8}, new Scalar(4.0),
                        new TensorOptions(ScalarType.Float))), 0.0);
                try (NoGradGuard off = new NoGradGuard()) {
                    Tensor z = q.forward(x.requires_grad_(true));
                    assertFalse(z.requires_grad());
                    assertEquals(0, QuantizedLinear.pendingBackward());
                }
            }
        }
    }

    @Test
    void closedLayerFailsLoudlyAlsoInsideTheBackwardPass() {
        try (PointerScope scope = new PointerScope()) {
            Tensor w = randn(10, ScalarType.Float, 8, 32);
            QuantizedLinear q = QuantizationSpec.nf4().quantize("model.layers.0.mlp.up_proj", w, null);
            Tensor x = randn(11, ScalarType.Float, 2, 32).requires_grad_(true);
            Tensor y = q.forward(x);
            q.close();
            RuntimeException e = assertThrows(RuntimeException.class, () -> y.sum().backward());
            assertTrue(e.getMessage().contains("model.layers.0.mlp.up_proj") && e.getMessage().contains("close"),
                    e.getMessage());
            assertThrows(IllegalStateException.class, () -> q.forward(x));
            QuantizedLinear.discardPendingBackward();
            assertEquals(0, QuantizedLinear.pendingBackward());
        }
    }

    @Test
    void badSpecsAndWeightsAreClearErrors() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new QuantizationSpec(4, QuantType.NF4, true, 100));
        assertTrue(e.getMessage().contains("quantization_blocksize") && e.getMessage().contains("4096"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new QuantizationSpec(3, QuantType.NF4, true, 64));
        assertTrue(e.getMessage().contains("quantization_bit"), e.getMessage());
        try (PointerScope scope = new PointerScope()) {
            Tensor w = randn(12, ScalarType.Float, 8, 32);
            w.view(-1).narrow(0, 5, 1).fill_(new Scalar(Double.NaN));
            e = assertThrows(IllegalArgumentException.class,
                    () -> QuantizationSpec.nf4().quantize("model.layers.3.self_attn.o_proj", w, null));
            assertTrue(e.getMessage().contains("model.layers.3.self_attn.o_proj.weight")
                    && e.getMessage().contains("non-finite"), e.getMessage());
        }
    }
}
