package io.sftnative.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import io.sftnative.torch.TorchRuntime;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

@SuppressWarnings("try") // scopes and no-grad guards are held for their side effect
class TorchRngTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(1);
    }

    private static float[] floats(Tensor t) {
        Tensor f = t.to(ScalarType.Float).contiguous();
        float[] out = new float[(int) f.numel()];
        f.data_ptr_float().get(out);
        return out;
    }

    /** Some randn draws and a dropout mask, as a training step would consume them. */
    private static float[] draw() {
        try (PointerScope scope = new PointerScope()) {
            float[] a = floats(torch.randn(7));
            float[] mask = floats(torch.dropout(torch.ones(64), 0.5, true)); // 0 or 2 per element
            float[] b = floats(torch.randn(3, 5));
            float[] out = Arrays.copyOf(a, a.length + mask.length + b.length);
            System.arraycopy(mask, 0, out, a.length, mask.length);
            System.arraycopy(b, 0, out, a.length + mask.length, b.length);
            return out;
        }
    }

    @Test
    void restoringTheCpuStateReplaysRandnAndDropout() {
        TorchRng.manualSeed(1234);
        draw(); // advance past the seed: the state is mid-sequence
        byte[] state = TorchRng.cpuState();
        assertEquals(5056, state.length);
        float[] first = draw();
        float[] second = draw();
        assertFalse(Arrays.equals(first, second), "the generator moves on");
        TorchRng.setCpuState(state);
        assertArrayEquals(first, draw(), "same randn values and dropout mask after restore");
        assertArrayEquals(second, draw());
        try (PointerScope scope = new PointerScope()) {
            assertNull(TorchRng.cudaState(new Device("cpu")), "a run on the CPU has no CUDA state to save");
        }
    }

    @Test
    void aCudaStateIsNeverRestoredIntoTheCpu() {
        try (PointerScope scope = new PointerScope()) {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> TorchRng.setCudaState(new Device("cpu"), new byte[16]));
            assertTrue(e.getMessage().contains("only be restored into a GPU's generator, not cpu"), e.getMessage());
            if (!TorchRuntime.info().cuda()) { // this machine: the CPU build, or no GPU visible
                e = assertThrows(IllegalStateException.class,
                        () -> TorchRng.setCudaState(new Device("cuda:0"), new byte[16]));
                assertTrue(e.getMessage().contains("this process has no GPU"), e.getMessage());
            }
        }
    }

    @Test
    void rngStateFileRoundTripsAndRestoresEverything() throws Exception {
        TorchRng.manualSeed(7);
        ResumableRandom shuffler = ResumableRandom.seeded(42);
        shuffler.nextLong();
        RngState saved;
        try (PointerScope scope = new PointerScope()) {
            saved = RngState.capture(shuffler, new Device("cpu"));
        }
        assertNull(saved.torchCuda(), "a CPU run saves no CUDA state");
        saved.write(dir);
        long expectedShuffle = shuffler.nextLong();
        float[] expectedDraw = draw();

        TorchRng.manualSeed(99); // a new process would start elsewhere
        RngState back = RngState.read(dir);
        ResumableRandom resumed;
        try (PointerScope scope = new PointerScope()) {
            resumed = back.restore(new Device("cpu"));
        }
        assertEquals(expectedShuffle, resumed.nextLong());
        assertArrayEquals(expectedDraw, draw(), "bit-exact: the same randn values and dropout mask");
        assertArrayEquals(saved.torchCpu(), back.torchCpu());
        assertNull(back.torchCuda());
    }

    @Test
    void aGpuCheckpointResumedOnTheCpuRestoresTheCpuStateAndKeepsTheCudaBytes() throws Exception {
        TorchRng.manualSeed(11);
        byte[] cpu = TorchRng.cpuState();
        float[] expectedDraw = draw();
        byte[] cuda = new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}; // as a GPU run wrote it
        new RngState(5, cpu, cuda).write(dir);

        RngState back = RngState.read(dir);
        assertArrayEquals(cuda, back.torchCuda(), "the CUDA generator state survives the file");
        TorchRng.manualSeed(12);
        try (PointerScope scope = new PointerScope()) {
            back.restore(new Device("cpu")); // the CPU run draws dropout from the CPU generator only
        }
        assertArrayEquals(expectedDraw, draw());
    }

    @Test
    void damagedOrMissingStateFilesAreReported() throws Exception {
        IOException e = assertThrows(IOException.class, () -> RngState.read(dir));
        assertTrue(e.getMessage().contains("missing"), e.getMessage());
        Files.writeString(dir.resolve(RngState.FILE_NAME), "{\"format\": \"other\"}");
        e = assertThrows(IOException.class, () -> RngState.read(dir));
        assertTrue(e.getMessage().contains("not an sft-native random state"), e.getMessage());
        Files.writeString(dir.resolve(RngState.FILE_NAME),
                "{\"format\": \"sft-native-rng-v1\", \"shuffle_state\": 1, \"torch_cpu\": \"!!\"}");
        e = assertThrows(IOException.class, () -> RngState.read(dir));
        assertTrue(e.getMessage().contains("damaged"), e.getMessage());
    }
}
