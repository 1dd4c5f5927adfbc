package io.sftnative.quant;

import static io.sftnative.quant.TestTensors.floats;
import static io.sftnative.quant.TestTensors.toBytes;
import static io.sftnative.quant.TestTensors.toFloats;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.bindings.TensorMemory;
import io.sftnative.torch.TorchRuntime;

/** LLM.int8() row-wise weights: spec example EX10, zero rows, error bound, checkpoint keys. */
// PointerScope blocks own every tensor created inside them; the scope variable itself is never read
@SuppressWarnings("try")
class RowwiseInt8WeightTest {
    @BeforeAll
    static void boot() {
        TorchRuntime.boot();
    }

    @Test
    void specExampleRoundsHalfToEven() {
        try (PointerScope scope = new PointerScope();
                RowwiseInt8Weight q = RowwiseInt8Weight.quantize(floats(new float[] {1f, -0.5f, 0.25f, 0f, 0.75f}, 1, 5)
                        .to(ScalarType.Half))) {
            assertArrayEquals(new byte[] {127, -64, 32, 0, 95}, toBytes(q.codes())); // -63.5 -> -64
            assertArrayEquals(new float[] {1f}, toFloats(q.scb()));
            assertTrue(TensorMemory.same(ScalarType.Half, q.dequantize().scalar_type()));
        }
    }

    @Test
    void errorIsAtMostHalfAStepAndZeroRowsStayZero() {
        Random r = new Random(3);
        float[] x = new float[8 * 300];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        java.util.Arrays.fill(x, 300, 600, 0f); // row 1 all zeros
        try (PointerScope scope = new PointerScope(); RowwiseInt8Weight q = RowwiseInt8Weight.quantize(floats(x, 8, 300))) {
            float[] scb = toFloats(q.scb());
            float[] y = toFloats(q.dequantize());
            assertEquals(0f, scb[1]);
            for (int i = 0; i < x.length; i++) {
                int row = i / 300;
                assertTrue(Math.abs(y[i] - x[i]) <= scb[row] / 254 * 1.0001 + 1e-7, "element " + i);
                if (row == 1) {
                    assertTrue(y[i] == 0f);
                }
            }
        }
    }

    @Test
    void checkpointKeysRoundTripAndAreValidated() {
        try (PointerScope scope = new PointerScope();
                RowwiseInt8Weight q = RowwiseInt8Weight.quantize(floats(new float[] {1, 2, 3, 4, 5, 6}, 2, 3).to(ScalarType.BFloat16))) {
            Map<String, Tensor> sd = q.stateDict("model.layers.0.mlp.up_proj");
            assertEquals(java.util.List.of("model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.up_proj.SCB",
                    "model.layers.0.mlp.up_proj.weight_format"), java.util.List.copyOf(sd.keySet()));
            try (RowwiseInt8Weight r = RowwiseInt8Weight.fromStateDict("model.layers.0.mlp.up_proj", sd, ScalarType.BFloat16)) {
                assertArrayEquals(toFloats(q.dequantize()), toFloats(r.dequantize()));
            }
            Map<String, Tensor> col = new LinkedHashMap<>(sd);
            col.put("model.layers.0.mlp.up_proj.weight_format", sd.get("model.layers.0.mlp.up_proj.weight_format").add(new Scalar(1)));
            assertTrue(assertThrows(IllegalArgumentException.class,
                    () -> RowwiseInt8Weight.fromStateDict("model.layers.0.mlp.up_proj", col, ScalarType.Float))
                    .getMessage().contains("only 0 (\"row\") is supported"));
            Map<String, Tensor> noScb = new LinkedHashMap<>(sd);
            noScb.remove("model.layers.0.mlp.up_proj.SCB");
            assertTrue(assertThrows(IllegalArgumentException.class,
                    () -> RowwiseInt8Weight.fromStateDict("model.layers.0.mlp.up_proj", noScb, ScalarType.Float))
                    .getMessage().contains("model.layers.0.mlp.up_proj.SCB is missing"));
            assertThrows(IllegalArgumentException.class,
                    () -> RowwiseInt8Weight.quantize(floats(new float[] {1, Float.NaN}, 1, 2)));
        }
    }
}
