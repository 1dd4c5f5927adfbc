package io.sftnative.quant;

import static io.sftnative.quant.TestTensors.bits;
import static io.sftnative.quant.TestTensors.floats;
import static io.sftnative.quant.TestTensors.toBytes;
import static io.sftnative.quant.TestTensors.toFloats;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.bindings.TensorMemory;
import io.sftnative.torch.TorchRuntime;

/** Properties of {@link QuantizedWeight}: round trips, odd tails, zero blocks, non-finite input, checkpoints. */
// PointerScope blocks own every tensor created inside them; the scope variable itself is never read
@SuppressWarnings("try")
class QuantizedWeightTest {
    @BeforeAll
    static void boot() {
        io.sftnative.bindings.NativeTestSupport.assumeNativeBuilt();
        TorchRuntime.boot();
    }

    private static float[] gaussian(int n, long seed, double sigma) {
        Random r = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * sigma);
        }
        return x;
    }

    /** Spec §5.4: re-quantizing the dequantized values reproduces absmax and every NF4 code (FP4: all but -0.0). */
    @Test
    void requantizingTheDequantizedWeightIsStable() {
        for (int bs : new int[] {32, 64, 4096}) {
            for (QuantType qt : QuantType.values()) {
                try (PointerScope scope = new PointerScope()) {
                    Tensor w = floats(gaussian(100_000, bs, 0.02), 250, 400);
                    try (QuantizedWeight q = QuantizedWeight.quantize(w, qt, bs, false);
                            QuantizedWeight q2 = QuantizedWeight.quantize(q.dequantize(), qt, bs, false)) {
                        assertArrayEquals(bits(toFloats(q.absmaxFp32())), bits(toFloats(q2.absmaxFp32())));
                        byte[] a = toBytes(q.packed());
                        byte[] b = toBytes(q2.packed());
                        for (int i = 0; i < a.length; i++) {
                            for (int shift : new int[] {4, 0}) {
                                int ca = (a[i] >> shift) & 15;
                                int cb = (b[i] >> shift) & 15;
                                int want = qt == QuantType.FP4 && ca == 8 ? 0 : ca; // -0.0 comes back as +0
                                assertEquals(want, cb, qt + " bs " + bs + " byte " + i);
                            }
                        }
                        float[] d1 = toFloats(q.dequantize());
                        float[] d2 = toFloats(q2.dequantize());
                        for (int i = 0; i < d1.length; i++) {
                            assertTrue(d1[i] == d2[i], "value " + i); // == : FP4's -0.0 returns as +0.0
                        }
                    }
                }
            }
        }
    }

    @Test
    void oddTailsArePaddedWithTheCodeOfZero() {
        for (int n : new int[] {1, 3, 65, 1001}) {
            for (QuantType qt : QuantType.values()) {
                try (PointerScope scope = new PointerScope()) {
                    float[] x = gaussian(n, n, 1.0);
                    try (QuantizedWeight q = QuantizedWeight.quantize(floats(x), qt, 64, true)) {
                        byte[] p = toBytes(q.packed());
                        assertEquals((n + 1) / 2, p.length);
                        assertEquals(qt == QuantType.NF4 ? 7 : 0, p[p.length - 1] & 15, "pad nibble, n=" + n);
                        Tensor d = q.dequantize();
                        assertEquals(n, d.numel());
                        float[] y = toFloats(d);
                        for (int i = 0; i < n; i++) {
                            assertTrue(Math.abs(y[i] - x[i]) <= 0.35 * Math.abs(maxAbs(x, i / 64 * 64, 64)) + 1e-6,
                                    "element " + i + ": " + x[i] + " -> " + y[i]);
                        }
                    }
                }
            }
        }
    }

    @Test
    void allZeroBlocksFollowTheCudaSemantics() {
        float[] x = gaussian(256, 5, 1.0);
        java.util.Arrays.fill(x, 64, 128, 0f); // block 1 is all zeros
        try (PointerScope scope = new PointerScope(); QuantizedWeight q = QuantizedWeight.quantize(floats(x), QuantType.NF4, 64, false)) {
            assertEquals(0f, toFloats(q.absmaxFp32())[1]);
            byte[] p = toBytes(q.packed());
            for (int i = 32; i < 64; i++) {
                assertEquals(0, p[i], "1/0 = inf, 0*inf = NaN -> code 0 (spec §2.5.4)");
            }
            float[] y = toFloats(q.dequantize());
            for (int i = 64; i < 128; i++) {
                assertTrue(y[i] == 0f, "element " + i + " = " + y[i]); // -0.0 (code 0 * absmax 0)
            }
        }
    }

    @Test
    void nonFiniteWeightsAreRejectedWithACount() {
        float[] x = gaussian(128, 6, 1.0);
        x[3] = Float.NaN;
        x[70] = Float.POSITIVE_INFINITY;
        try (PointerScope scope = new PointerScope()) {
            var e = assertThrows(IllegalArgumentException.class,
                    () -> QuantizedWeight.quantize(floats(x), QuantType.NF4, 64, true));
            assertTrue(e.getMessage().contains("2 non-finite values"), e.getMessage());
        }
    }

    @Test
    void sixteenBitWeightsKeepTheirDtype() {
        float[] x = gaussian(4096, 7, 0.05);
        for (ScalarType t : new ScalarType[] {ScalarType.BFloat16, ScalarType.Half}) {
            try (PointerScope scope = new PointerScope()) {
                Tensor w16 = floats(x, 64, 64).to(t);
                Tensor w32 = w16.to(ScalarType.Float); // the same values in fp32
                try (QuantizedWeight a = QuantizedWeight.quantize(w16, QuantType.NF4, 64, true);
                        QuantizedWeight b = QuantizedWeight.quantize(w32, QuantType.NF4, 64, true)) {
                    assertArrayEquals(toBytes(b.packed()), toBytes(a.packed()));
                    Tensor d = a.dequantize();
                    assertTrue(TensorMemory.same(t, d.scalar_type()));
                    assertArrayEquals(new long[] {64, 64}, d.sizes().vec().get());
                    // one rounding of the fp32 dequantization
                    assertArrayEquals(bits(toFloats(b.dequantize().to(t))), bits(toFloats(d)));
                }
            }
        }
    }

    @Test
    void checkpointTensorsRoundTrip() {
        float[] x = gaussian(3 * 1000, 8, 0.02);
        for (boolean nested : new boolean[] {false, true}) {
            for (QuantType qt : QuantType.values()) {
                try (PointerScope scope = new PointerScope();
                        QuantizedWeight q = QuantizedWeight.quantize(floats(x, 3, 1000).to(ScalarType.BFloat16), qt, 128, nested)) {
                    Map<String, Tensor> sd = q.stateDict("model.layers.0.mlp.down_proj");
                    String base = "model.layers.0.mlp.down_proj.weight";
                    assertTrue(sd.containsKey(base + ".quant_state.bitsandbytes__" + qt.bnbName));
                    assertEquals(nested, sd.containsKey(base + ".nested_absmax"));
                    String json = new String(toBytes(sd.get(base + ".quant_state.bitsandbytes__" + qt.bnbName)),
                            StandardCharsets.UTF_8);
                    assertTrue(json.startsWith("{\"quant_type\":\"" + qt.bnbName + "\",\"blocksize\":128,\"dtype\":\"bfloat16\","
                            + "\"shape\":[3,1000]"), json);
                    assertEquals(nested, json.contains("\"nested_blocksize\":256,\"nested_dtype\":\"float32\",\"nested_offset\":"));
                    assertTrue(TensorMemory.same(ScalarType.Byte, sd.get(base + ".absmax").scalar_type()) == nested);
                    try (QuantizedWeight r = QuantizedWeight.fromStateDict("model.layers.0.mlp.down_proj", sd)) {
                        assertEquals(q.toString(), r.toString());
                        assertArrayEquals(bits(toFloats(q.dequantize())), bits(toFloats(r.dequantize())));
                        assertEquals(q.storageBytes(), r.storageBytes());
                    }
                    // quant_storage=bf16: the same bytes viewed as bfloat16 (spec §2.4)
                    Map<String, Tensor> viewed = new LinkedHashMap<>(sd);
                    viewed.put(base, sd.get(base).reshape(-1).view(ScalarType.BFloat16).reshape(-1, 1));
                    try (QuantizedWeight r = QuantizedWeight.fromStateDict("model.layers.0.mlp.down_proj", viewed)) {
                        assertArrayEquals(bits(toFloats(q.dequantize())), bits(toFloats(r.dequantize())));
                    }
                }
            }
        }
    }

    @Test
    void badCheckpointsGiveClearErrors() {
        try (PointerScope scope = new PointerScope();
                QuantizedWeight q = QuantizedWeight.quantize(floats(gaussian(512, 9, 1.0), 8, 64), QuantType.NF4, 64, true)) {
            Map<String, Tensor> sd = q.stateDict("lin");
            Map<String, Tensor> noState = new LinkedHashMap<>(sd);
            noState.remove("lin.weight.quant_state.bitsandbytes__nf4");
            assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantizedWeight.fromStateDict("lin", noState))
                    .getMessage().contains("expected a tensor lin.weight.quant_state.bitsandbytes__nf4"));
            Map<String, Tensor> unknown = new LinkedHashMap<>(noState);
            unknown.put("lin.weight.quant_state.bitsandbytes__int3", sd.get("lin.weight.quant_state.bitsandbytes__nf4"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantizedWeight.fromStateDict("lin", unknown))
                    .getMessage().contains("unknown quant_state 'bitsandbytes__int3'"));
            Map<String, Tensor> shortAbsmax = new LinkedHashMap<>(sd);
            shortAbsmax.put("lin.weight.absmax", sd.get("lin.weight.absmax").narrow(0, 0, 3));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantizedWeight.fromStateDict("lin", shortAbsmax))
                    .getMessage().contains("lin.weight.absmax must be Byte with 8 elements"));
            Map<String, Tensor> badMap = new LinkedHashMap<>(sd);
            badMap.put("lin.weight.quant_map", floats(new float[16]));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantizedWeight.fromStateDict("lin", badMap))
                    .getMessage().contains("custom 4-bit maps are not supported"));
            Map<String, Tensor> noAbsmax2 = new LinkedHashMap<>(sd);
            noAbsmax2.remove("lin.weight.nested_absmax");
            assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantizedWeight.fromStateDict("lin", noAbsmax2))
                    .getMessage().contains("lin.weight.nested_absmax is missing"));
        }
    }

    @Test
    void misuseFailsLoudly() {
        try (PointerScope scope = new PointerScope()) {
            Tensor w = floats(gaussian(256, 10, 1.0));
            assertThrows(IllegalArgumentException.class, () -> QuantizedWeight.quantize(w, QuantType.NF4, 48, false));
            assertThrows(IllegalArgumentException.class, () -> QuantizedWeight.quantize(w.to(ScalarType.Double), QuantType.NF4, 64, false));
            QuantizedWeight q = QuantizedWeight.quantize(w, QuantType.FP4, 64, false);
            try (QuantizedWeight copy = q.to(new Device("cpu"))) {
                assertArrayEquals(bits(toFloats(q.dequantize())), bits(toFloats(copy.dequantize())));
            }
            q.close();
            q.close(); // idempotent
            var e = assertThrows(IllegalStateException.class, q::dequantize);
            assertTrue(e.getMessage().contains("used after close()"), e.getMessage());
        }
    }

    private static float maxAbs(float[] x, int from, int len) {
        float m = 0;
        for (int i = from; i < Math.min(x.length, from + len); i++) {
            m = Math.max(m, Math.abs(x[i]));
        }
        return m;
    }
}
