package io.sftnative.quant;

import static io.sftnative.quant.TestTensors.bits;
import static io.sftnative.quant.TestTensors.f32;
import static io.sftnative.quant.TestTensors.hex;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.bindings.BnbAbi;
import io.sftnative.bindings.Kernels;
import io.sftnative.testing.Shared;
import io.sftnative.torch.TorchRuntime;

/**
 * Bit-exact agreement with the bitsandbytes golden vectors ({@code ../shared/vectors/bnb_golden_v1.json}, CUDA
 * kernel semantics): packed codes, absmax, dequantized fp32 and bf16 values, double quantization and the
 * codebooks — on every CPU kernel path this machine has (scalar, AVX2, AVX-512) and through {@link QuantizedWeight}.
 */
// PointerScope blocks own every tensor created inside them; the scope variable itself is never read
@SuppressWarnings("try")
class BnbGoldenTest {
    private static JsonNode golden;

    @BeforeAll
    static void load() throws IOException {
        io.sftnative.bindings.NativeTestSupport.assumeNativeBuilt();
        Path p = Shared.require("vectors/bnb_golden_v1.json");
        golden = new ObjectMapper().readTree(p.toFile());
        TorchRuntime.boot();
    }

    @Test
    void codebooksMatch() {
        assertArrayEquals(bits(f32(golden.get("nf4_f32_hex").asText())), bits(Kernels.codebook(BnbAbi.NF4)));
        assertArrayEquals(bits(f32(golden.get("fp4_by_code_f32_hex").asText())), bits(Kernels.codebook(BnbAbi.FP4)));
        assertArrayEquals(bits(f32(golden.get("dynamic_map_f32_hex").asText())),
                bits(Kernels.codebook(BnbAbi.DYNAMIC_MAP)));
    }

    @Test
    void kernelsMatchOnEveryCpuPath() {
        int best = Kernels.cpuIsa();
        try {
            for (int isa = 0; isa <= best; isa++) {
                setIsa(isa);
                for (JsonNode c : golden.get("cases")) {
                    checkCase(c, "isa " + isa);
                }
            }
        } finally {
            setIsa(best);
        }
    }

    @Test
    void quantizedWeightMatches() {
        for (JsonNode c : golden.get("cases")) {
            String name = c.get("name").asText();
            int n = c.get("n").asInt();
            int bs = c.get("blocksize").asInt();
            QuantType qt = QuantType.parse(c.get("quant_type").asText());
            float[] x = f32(c.get("input_f32_hex").asText());
            try (PointerScope scope = new PointerScope()) {
                Tensor w = TestTensors.floats(x, n / 8 > 0 && n % 8 == 0 ? new long[] {8, n / 8} : new long[] {n});
                try (QuantizedWeight q = QuantizedWeight.quantize(w, qt, bs, false)) {
                    assertArrayEquals(hex(c.get("packed_hex").asText()), TestTensors.toBytes(q.packed()), name);
                    assertArrayEquals(bits(f32(c.get("absmax_f32_hex").asText())), bits(TestTensors.toFloats(q.absmaxFp32())),
                            name);
                    assertArrayEquals(bits(f32(c.get("dequant_f32_hex").asText())),
                            bits(TestTensors.toFloats(q.dequantize())), name);
                    assertArrayEquals(TestTensors.u16(c.get("dequant_bf16_hex").asText()),
                            TestTensors.toShorts(q.dequantize(ScalarType.BFloat16)), name);
                }
                if (c.has("double_quant")) {
                    JsonNode dq = c.get("double_quant");
                    try (QuantizedWeight q = QuantizedWeight.quantize(w, qt, bs, true)) {
                        assertTrue(q.nested());
                        assertEquals(Float.floatToRawIntBits(f32(dq.get("offset_f32_hex").asText())[0]),
                                Float.floatToRawIntBits(q.offset()), name);
                        float[] rec = f32(dq.get("reconstructed_absmax_f32_hex").asText());
                        assertArrayEquals(bits(rec), bits(TestTensors.toFloats(q.absmaxFp32())), name);
                        // dequantization with the rebuilt absmax equals a plain dequant with those scales
                        float[] codes = codeValues(hex(c.get("packed_hex").asText()), qt, n);
                        float[] want = new float[n];
                        for (int i = 0; i < n; i++) {
                            want[i] = codes[i] * rec[i / bs];
                        }
                        assertArrayEquals(bits(want), bits(TestTensors.toFloats(q.dequantize())), name + " nested");
                    }
                }
            }
        }
    }

    private static void checkCase(JsonNode c, String ctx) {
        String name = c.get("name").asText() + " (" + ctx + ")";
        int n = c.get("n").asInt();
        int bs = c.get("blocksize").asInt();
        int qt = QuantType.parse(c.get("quant_type").asText()).abi;
        float[] x = f32(c.get("input_f32_hex").asText());
        int nb = (n + bs - 1) / bs;
        Kernels k = Kernels.cpu();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment in = arena.allocateFrom(ValueLayout.JAVA_FLOAT, x);
            MemorySegment am = arena.allocate(ValueLayout.JAVA_FLOAT, nb);
            MemorySegment packed = arena.allocate((n + 1) / 2);
            k.quantize4bit(Kernels.Dtype.FP32, in, am, packed, bs, n, qt);
            assertArrayEquals(hex(c.get("packed_hex").asText()), packed.toArray(ValueLayout.JAVA_BYTE), name + " codes");
            assertArrayEquals(bits(f32(c.get("absmax_f32_hex").asText())), bits(am.toArray(ValueLayout.JAVA_FLOAT)),
                    name + " absmax");
            if (c.get("input_dtype").asText().equals("bf16")) {
                // the same values given as bfloat16 (exactly representable) give the same codes
                MemorySegment in16 = arena.allocate(ValueLayout.JAVA_SHORT, n);
                for (int i = 0; i < n; i++) {
                    in16.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) (Float.floatToRawIntBits(x[i]) >>> 16));
                }
                MemorySegment p16 = arena.allocate((n + 1) / 2);
                k.quantize4bit(Kernels.Dtype.BF16, in16, am, p16, bs, n, qt);
                assertArrayEquals(hex(c.get("packed_hex").asText()), p16.toArray(ValueLayout.JAVA_BYTE), name + " bf16 in");
            }
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, n);
            k.dequantize4bit(Kernels.Dtype.FP32, packed, am, out, bs, n, qt);
            assertArrayEquals(bits(f32(c.get("dequant_f32_hex").asText())), bits(out.toArray(ValueLayout.JAVA_FLOAT)),
                    name + " dequant fp32");
            MemorySegment out16 = arena.allocate(ValueLayout.JAVA_SHORT, n);
            k.dequantize4bit(Kernels.Dtype.BF16, packed, am, out16, bs, n, qt);
            assertArrayEquals(TestTensors.u16(c.get("dequant_bf16_hex").asText()),
                    out16.toArray(ValueLayout.JAVA_SHORT), name + " dequant bf16");
            if (c.has("double_quant")) {
                JsonNode dq = c.get("double_quant");
                MemorySegment code = arena.allocateFrom(ValueLayout.JAVA_FLOAT, Kernels.codebook(BnbAbi.DYNAMIC_MAP));
                MemorySegment q = arena.allocate(nb);
                MemorySegment am2 = arena.allocate(ValueLayout.JAVA_FLOAT, (nb + 255) / 256);
                float offset = Kernels.doubleQuantCpu(am, nb, code, 256, q, am2);
                assertEquals(Float.floatToRawIntBits(f32(dq.get("offset_f32_hex").asText())[0]),
                        Float.floatToRawIntBits(offset), name + " offset");
                assertArrayEquals(hex(dq.get("qabsmax_hex").asText()), q.toArray(ValueLayout.JAVA_BYTE), name + " qabsmax");
                assertArrayEquals(bits(f32(dq.get("nested_absmax_f32_hex").asText())),
                        bits(am2.toArray(ValueLayout.JAVA_FLOAT)), name + " nested absmax");
                MemorySegment rec = arena.allocate(ValueLayout.JAVA_FLOAT, nb);
                Kernels.dequantAbsmaxCpu(q, am2, code, offset, 256, nb, rec);
                assertArrayEquals(bits(f32(dq.get("reconstructed_absmax_f32_hex").asText())),
                        bits(rec.toArray(ValueLayout.JAVA_FLOAT)), name + " reconstructed absmax");
            }
        }
    }

    private static float[] codeValues(byte[] packed, QuantType qt, int n) {
        float[] table = Kernels.codebook(qt.abi);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            int b = packed[i / 2] & 0xff;
            v[i] = table[(i % 2 == 0) ? b >>> 4 : b & 15];
        }
        return v;
    }

    private static void setIsa(int isa) {
        Kernels.setCpuIsa(isa);
    }

    @SuppressWarnings("unused")
    private static List<String> names() {
        List<String> l = new ArrayList<>();
        golden.get("cases").forEach(c -> l.add(c.get("name").asText()));
        return l;
    }
}
