package io.sftnative.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.torch.Devices;
import io.sftnative.torch.TorchRuntime;

/**
 * Placement on the CPU, the only device here: explicit-device loaders give what the default ones gave before, the
 * model reports where it lives, and the helpers copy only when the device differs.
 */
class ModelDeviceTest {
    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @Test
    void loadingOntoTheCpuExplicitlyEqualsTheDefaultLoad() throws Exception {
        try (PointerScope scope = new PointerScope();
                DecoderModel byDefault = DecoderModel.load(DecoderModelTest.LLAMA, ScalarType.Float);
                DecoderModel onCpu = DecoderModel.load(DecoderModelTest.LLAMA, ScalarType.Float, new Device("cpu"))) {
            assertEquals("cpu", onCpu.deviceName());
            assertTrue(onCpu.device().is_cpu());
            for (Map.Entry<String, Tensor> e : onCpu.parameters().entrySet()) {
                assertTrue(e.getValue().is_cpu(), e.getKey());
            }
            Tensor ids = Tensors.longs(new long[] {1, 5, 9, 2, 7, 3}, 2, 3); // (B, T)
            assertArrayEquals(Tensors.toFloats(byDefault.forward(ids)), Tensors.toFloats(onCpu.forward(ids)),
                    "bit-identical logits");
        }
    }

    @Test
    void randomInitOnTheCpuIsTheSeededModelOfBefore() {
        ModelConfig cfg = ModelConfig.fromMap(DecoderModelTest.tinyConfig("llama", false));
        try (PointerScope scope = new PointerScope();
                DecoderModel a = RandomInit.create(cfg, 17, ScalarType.BFloat16);
                DecoderModel b = RandomInit.create(cfg, 17, ScalarType.BFloat16, new Device("cpu"))) {
            assertEquals("cpu", b.deviceName());
            for (Map.Entry<String, Tensor> e : a.parameters().entrySet()) {
                assertArrayEquals(Tensors.toFloats(e.getValue()), Tensors.toFloats(b.parameters().get(e.getKey())),
                        e.getKey());
            }
        }
    }

    @Test
    void theKvCacheFollowsTheModel() {
        ModelConfig cfg = ModelConfig.fromMap(DecoderModelTest.tinyConfig("qwen2", true));
        try (PointerScope scope = new PointerScope();
                DecoderModel m = RandomInit.create(cfg, 3, ScalarType.BFloat16, new Device("cpu"));
                KvCache cache = KvCache.of(m, 2, 8)) {
            assertEquals(8, cache.capacity());
            Tensor[] kv = cache.append(0, Tensors.floats(new float[2 * 2 * 1 * 8], 2, 2, 1, 8).to(ScalarType.BFloat16),
                    Tensors.floats(new float[2 * 2 * 1 * 8], 2, 2, 1, 8).to(ScalarType.BFloat16)); // (B, KV, 1, D)
            assertTrue(kv[0].is_cpu() && kv[1].is_cpu(), "buffers on the model's device");
            assertEquals(ScalarType.BFloat16.value, kv[0].scalar_type().value, "in the model's dtype");
            assertArrayEquals(new long[] {2, 2, 1, 8}, kv[0].sizes().vec().get());
        }
    }

    @Test
    void helpersCopyOnlyAcrossDevicesAndReadAnyDeviceBack() {
        try (PointerScope scope = new PointerScope()) {
            Device cpu = Devices.host();
            Tensor t = Tensors.longs(new long[] {4, 5, 6, 7}, cpu, 2, 2); // (2, 2)
            assertTrue(t.is_cpu());
            assertEquals(t.data_ptr().address(), Devices.to(t, cpu).data_ptr().address(), "no copy on the same device");
            assertEquals(t.data_ptr().address(), Devices.toHost(t).data_ptr().address(), "no copy for a host tensor");
            assertArrayEquals(new long[] {4, 5, 6, 7}, Tensors.toLongs(t));
            Tensor f = Tensors.floats(new float[] {0.5f, -1f}, cpu, 2); // (2)
            assertArrayEquals(new float[] {0.5f, -1f}, Tensors.toFloats(f));
            assertTrue(Devices.options(ScalarType.Float, cpu).device().is_cpu());
            assertEquals("cpu", Devices.name(cpu));
        }
    }

    @Test
    void packedPositionsStayOnTheSegmentsDevice() {
        try (PointerScope scope = new PointerScope()) {
            Tensor seg = Tensors.longs(new long[] {1, 1, 2, 2, 2, 0}, Devices.host(), 1, 6); // (B, T)
            Tensor pos = AttentionMasks.restartPositions(seg); // (B, T)
            assertTrue(pos.is_cpu());
            assertArrayEquals(new long[] {0, 1, 0, 1, 2, 0}, Tensors.toLongs(pos));
        }
    }
}
