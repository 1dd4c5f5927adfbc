package io.sftnative.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

class TorchRuntimeTest {
    @Test
    void bootsBundledLibtorchAndComputes() throws Exception {
        TorchRuntime.Info info = TorchRuntime.boot(2);
        assertEquals(2, torch.get_num_threads());
        try (PointerScope scope = new PointerScope()) {
            Tensor a = torch.ones(2, 3);
            Tensor b = torch.ones(3, 4);
            Tensor c = torch.matmul(a, b); // (2, 4), every entry 3
            assertEquals(3.0, c.sum().item_double() / 8.0, 0.0);
        }
        // every libtorch mapped into this process comes from the JavaCPP cache
        String maps = Files.readString(Path.of("/proc/self/maps"));
        assertTrue(maps.contains(info.cacheDir().toString()), "libtorch must be mapped from " + info.cacheDir());
    }
}
