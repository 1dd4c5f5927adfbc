package io.sftnative.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.bindings.BnbAbi;
import io.sftnative.bindings.Kernels;
import io.sftnative.checkpoint.TrainingCheckpoint;
import io.sftnative.model.safetensors.SafetensorsWriter;
import io.sftnative.torch.TorchRuntime;

/**
 * optim adamw_8bit against bitsandbytes' AdamW8bit update transcribed op for op in tools/golden/
 * gen_adam8bit_golden.py: four steps over an fp32 8-bit tensor with a partial last block (NaN/inf gradients at step
 * 2, a zero-gradient block at step 3), a bf16 tensor of exactly min_8bit_size, and two fp32 tensors below it (32-bit
 * state), HF's decay groups. Both sides compute in IEEE fp32 without FMA, so parameters, codes and absmax must agree
 * bit for bit. Plus: bit-exact resume through optimizer.safetensors, state bytes per parameter, refusals.
 */
class AdamW8bitGoldenTest {
    @BeforeAll
    static void boot() {
        TorchRuntime.boot(1);
    }

    static JsonNode golden() throws Exception {
        try (InputStream in = AdamW8bitGoldenTest.class.getResourceAsStream("/golden/optim/adamw_8bit.json")) {
            return new ObjectMapper().readTree(in);
        }
    }

    /** The generator's LCG: integers in [-32768, 32768) times 2^-shift (exact in fp32). */
    static float[] values(long seed, int n, int shift) {
        float[] out = new float[n];
        long x = seed;
        for (int i = 0; i < n; i++) {
            x = (x * 1103515245L + 12345L) & 0x7FFFFFFFL;
            out[i] = Math.scalb((float) (((x >> 8) & 0xFFFF) - 32768), -shift);
        }
        return out;
    }

    static float[] gradient(int paramIndex, int step, int n) {
        float[] g = values(1000L * paramIndex + step, n, step % 2 == 1 ? 20 : 22);
        boolean eightBit = n >= AdamW8bit.MIN_8BIT_SIZE;
        if (step == 2 && eightBit) {
            g[5] = Float.NaN;
            g[200] = Float.POSITIVE_INFINITY;
        }
        if (step == 3 && n > 512) {
            java.util.Arrays.fill(g, 256, 512, 0.0f);
        }
        return g;
    }

    static ByteBuffer bytes(JsonNode b64) {
        return ByteBuffer.wrap(Base64.getDecoder().decode(b64.asText())).order(ByteOrder.LITTLE_ENDIAN);
    }

    static int[] floatBits(JsonNode b64) {
        ByteBuffer b = bytes(b64);
        int[] out = new int[b.remaining() / 4];
        b.asIntBuffer().get(out);
        return out;
    }

    /** Parameter values as fp32 bits; bf16 tensors stored as int16 bits. */
    static int[] paramBits(JsonNode b64, String dtype) {
        if (dtype.equals("float32")) {
            return floatBits(b64);
        }
        ByteBuffer b = bytes(b64);
        int[] out = new int[b.remaining() / 2];
        for (int i = 0; i < out.length; i++) {
            out[i] = (b.getShort() & 0xFFFF) << 16;
        }
        return out;
    }

    static int[] bits(Tensor t) {
        float[] f = HostArrays.floats(t);
        int[] out = new int[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = Float.floatToRawIntBits(f[i]);
        }
        return out;
    }

    static byte[] codes(Tensor t) {
        byte[] out = new byte[(int) t.numel()];
        new BytePointer(t.contiguous().data_ptr()).get(out);
        return out;
    }

    record Setup(Map<String, Tensor> params, JsonNode golden) {}

    static Setup params(JsonNode g) {
        Map<String, Tensor> params = new LinkedHashMap<>();
        int pi = 0;
        for (JsonNode p : g.get("params")) {
            long[] shape = HostArrays.longs(p.get("shape"));
            int n = (int) java.util.Arrays.stream(shape).reduce(1, (a, b) -> a * b);
            ScalarType dt = p.get("dtype").asText().equals("bfloat16") ? ScalarType.BFloat16 : ScalarType.Float;
            params.put(p.get("name").asText(), HostArrays.tensor(values(1000L * pi, n, 19), shape, dt)
                    .requires_grad_(true));
            pi++;
        }
        return new Setup(params, g);
    }

    static void step(AdamW8bit opt, Map<String, Tensor> params, int step, double lr) {
        int pi = 0;
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            Tensor p = e.getValue();
            e.getValue().mutable_grad().put(HostArrays.tensor(gradient(pi, step, (int) p.numel()),
                    AdamW.shapeOf(p), p.scalar_type()));
            pi++;
        }
        opt.step(lr);
        opt.zeroGrad();
    }

    static AdamW8bit optimizer(JsonNode g, Map<String, Tensor> params) {
        return AdamW8bit.withHfGroups(params, 0.01, g.get("beta1").asDouble(), g.get("beta2").asDouble(),
                g.get("eps").asDouble());
    }

    @Test
    void mapsAreBitsandbytesDynamicMaps() throws Exception {
        JsonNode g = golden();
        float[] q1 = Kernels.codebook(BnbAbi.DYNAMIC_MAP);
        float[] q2 = Kernels.codebook(BnbAbi.UNSIGNED_DYNAMIC_MAP);
        int[] want1 = floatBits(g.get("qmap1"));
        int[] want2 = floatBits(g.get("qmap2"));
        for (int i = 0; i < 256; i++) {
            assertEquals(want1[i], Float.floatToRawIntBits(q1[i]), "signed map [" + i + "]");
            assertEquals(want2[i], Float.floatToRawIntBits(q2[i]), "unsigned map [" + i + "]");
        }
    }

    @Test
    void trajectoryMatchesBitsandbytesRuleBitForBit() throws Exception {
        JsonNode g = golden();
        try (PointerScope scope = new PointerScope()) {
            Setup s = params(g);
            try (AdamW8bit opt = optimizer(g, s.params())) {
                JsonNode lrs = g.get("lrs");
                for (int k = 1; k <= lrs.size(); k++) {
                    step(opt, s.params(), k, lrs.get(k - 1).asDouble());
                    if (!g.get("params").get(0).get("results").has(Integer.toString(k))) {
                        continue;
                    }
                    Map<String, Tensor> state = opt.stateDict();
                    for (JsonNode p : g.get("params")) {
                        String name = p.get("name").asText();
                        String at = name + " after step " + k;
                        JsonNode r = p.get("results").get(Integer.toString(k));
                        assertEquals((float) p.get("weight_decay").asDouble(), opt.weightDecay(name), "HF group " + at);
                        assertArrayEquals(paramBits(r.get("param"), p.get("dtype").asText()),
                                bits(s.params().get(name)), "parameter " + at);
                        boolean eight = r.has("absmax1");
                        assertEquals(eight, opt.eightBit(name), at);
                        if (eight) {
                            assertArrayEquals(bytes(r.get("state1")).array(), codes(state.get(name + ".state1")),
                                    "state1 codes " + at);
                            assertArrayEquals(bytes(r.get("state2")).array(), codes(state.get(name + ".state2")),
                                    "state2 codes " + at);
                            assertArrayEquals(floatBits(r.get("absmax1")), bits(state.get(name + ".absmax1")),
                                    "absmax1 " + at);
                            assertArrayEquals(floatBits(r.get("absmax2")), bits(state.get(name + ".absmax2")),
                                    "absmax2 " + at);
                        } else {
                            assertArrayEquals(floatBits(r.get("state1")), bits(state.get(name + ".state1")),
                                    "exp_avg " + at);
                            assertArrayEquals(floatBits(r.get("state2")), bits(state.get(name + ".state2")),
                                    "exp_avg_sq " + at);
                        }
                    }
                }
            }
        }
    }

    @Test
    void resumeThroughCheckpointFileIsBitExact(@TempDir Path dir) throws Exception {
        JsonNode g = golden();
        JsonNode lrs = g.get("lrs");
        try (PointerScope scope = new PointerScope()) {
            Setup straight = params(g);
            Setup resumed = params(g);
            try (AdamW8bit a = optimizer(g, straight.params()); AdamW8bit b = optimizer(g, resumed.params())) {
                for (int k = 1; k <= 2; k++) {
                    step(a, straight.params(), k, lrs.get(k - 1).asDouble());
                    step(b, resumed.params(), k, lrs.get(k - 1).asDouble());
                }
                SafetensorsWriter.write(dir.resolve(TrainingCheckpoint.OPTIMIZER_FILE), b.stateDict(),
                        Map.of("format", "pt"));
                try (AdamW8bit c = optimizer(g, resumed.params())) {
                    TrainingCheckpoint.loadOptimizerState(dir, c::loadStateDict);
                    for (int k = 3; k <= lrs.size(); k++) {
                        step(a, straight.params(), k, lrs.get(k - 1).asDouble());
                        step(c, resumed.params(), k, lrs.get(k - 1).asDouble());
                    }
                    Map<String, Tensor> sa = a.stateDict();
                    Map<String, Tensor> sc = c.stateDict();
                    assertEquals(sa.keySet(), sc.keySet());
                    for (String key : sa.keySet()) {
                        Tensor ta = sa.get(key);
                        if (ta.scalar_type().value == ScalarType.Byte.value) {
                            assertArrayEquals(codes(ta), codes(sc.get(key)), key);
                        } else {
                            assertArrayEquals(bits(ta), bits(sc.get(key)), key);
                        }
                    }
                    for (String name : straight.params().keySet()) {
                        assertArrayEquals(bits(straight.params().get(name)), bits(resumed.params().get(name)), name);
                    }
                }
            }
        }
    }

    @Test
    void stateBytesPerParameter() throws Exception {
        JsonNode g = golden();
        try (PointerScope scope = new PointerScope()) {
            Setup s = params(g);
            try (AdamW8bit opt = optimizer(g, s.params())) {
                step(opt, s.params(), 1, 1e-3);
                long expected = 0;
                long eightBitParams = 0;
                for (Tensor p : s.params().values()) {
                    long n = p.numel();
                    if (n >= AdamW8bit.MIN_8BIT_SIZE) {
                        expected += 2 * n + 2 * 4 * ((n + 255) / 256) + 4; // two codes, two absmax per block, step
                        eightBitParams += n;
                    } else {
                        expected += 8 * n + 4; // fp32 moments, step
                    }
                }
                assertEquals(expected, opt.stateBytes());
                assertTrue(eightBitParams > 0);
            }
        }
    }

    @Test
    void refusesForeignStateWithTheReason() throws Exception {
        JsonNode g = golden();
        try (PointerScope scope = new PointerScope()) {
            Setup s = params(g);
            try (AdamW8bit opt = optimizer(g, s.params())) {
                String name = s.params().keySet().iterator().next();
                Map<String, Tensor> adamw = Map.of(name + ".exp_avg", s.params().get(name));
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> opt.loadStateDict(adamw));
                assertTrue(e.getMessage().contains("another optim"), e.getMessage());
                Map<String, Tensor> wrong = Map.of(name + ".state1", s.params().get(name), name + ".step",
                        s.params().get(name));
                e = assertThrows(IllegalArgumentException.class, () -> opt.loadStateDict(wrong));
                assertTrue(e.getMessage().contains("needs Byte"), e.getMessage());
                assertFalse(opt.stateDict().containsKey(name + ".state1"), "a failed load changes nothing");
            }
        }
    }
}
