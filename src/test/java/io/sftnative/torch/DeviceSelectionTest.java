package io.sftnative.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.junit.jupiter.api.Test;

/** Every rule of device selection, as pure functions (no GPU needed), plus what this CPU-only process reports. */
class DeviceSelectionTest {
    private static final String NO_GPU = "no GPU here";

    @Test
    void validNamesAreCaseAndSpaceInsensitive() {
        for (String ok : new String[] {null, "", "  ", "auto", "AUTO", " cpu ", "CPU", "cuda", "Cuda", "cuda:0",
                "cuda:7", "CUDA:12"}) {
            assertTrue(DeviceSelection.isValidName(ok), "valid: '" + ok + "'");
        }
        for (String bad : new String[] {"gpu", "mps", "cuda:", "cuda:-1", "cuda:x", "cuda0", "cuda:12345", "cpu:0",
                "cuda:0,1", "tpu"}) {
            assertFalse(DeviceSelection.isValidName(bad), "invalid: '" + bad + "'");
        }
    }

    @Test
    void autoTakesTheFirstGpuWhenThereIsOneElseTheCpu() {
        assertEquals("cpu", DeviceSelection.resolve(null, "device", 0, NO_GPU));
        assertEquals("cpu", DeviceSelection.resolve("auto", "device", 0, NO_GPU));
        assertEquals("cpu", DeviceSelection.resolve("", "device", 0, NO_GPU));
        assertEquals("cuda:0", DeviceSelection.resolve(null, "device", 1, null));
        assertEquals("cuda:0", DeviceSelection.resolve(" Auto ", "device", 4, null));
    }

    @Test
    void explicitNamesBecomeCanonical() {
        assertEquals("cpu", DeviceSelection.resolve("CPU", "device", 2, null), "cpu even when GPUs exist");
        assertEquals("cpu", DeviceSelection.resolve("cpu", "device", 0, NO_GPU));
        assertEquals("cuda:0", DeviceSelection.resolve("cuda", "device", 1, null), "cuda means the first GPU");
        assertEquals("cuda:1", DeviceSelection.resolve("CUDA:1", "device", 2, null));
        assertEquals("cuda:3", DeviceSelection.resolve(" cuda:3 ", "device", 4, null));
    }

    @Test
    void aGpuRequestWithoutGpusSaysWhyAndWhatToDo() {
        for (String asked : new String[] {"cuda", "cuda:0", "cuda:2"}) {
            DeviceUnavailableException e = assertThrows(DeviceUnavailableException.class,
                    () -> DeviceSelection.resolve(asked, "device", 0, "the reason"));
            assertTrue(e.getMessage().startsWith("device is '" + asked + "' but no GPU can be used: the reason"),
                    e.getMessage());
            assertTrue(e.getMessage().contains("Set device to cpu"), e.getMessage());
        }
    }

    @Test
    void aGpuIndexBeyondTheVisibleOnesListsThem() {
        DeviceUnavailableException one = assertThrows(DeviceUnavailableException.class,
                () -> DeviceSelection.resolve("cuda:1", "device", 1, null));
        assertTrue(one.getMessage().contains("libtorch sees 1 GPU (cuda:0)"), one.getMessage());
        DeviceUnavailableException two = assertThrows(DeviceUnavailableException.class,
                () -> DeviceSelection.resolve("cuda:2", "SFT_DEVICE", 2, null));
        assertTrue(two.getMessage().startsWith("SFT_DEVICE is 'cuda:2'"), two.getMessage());
        assertTrue(two.getMessage().contains("2 GPUs (cuda:0 to cuda:1)"), two.getMessage());
        assertTrue(two.getMessage().contains("CUDA_VISIBLE_DEVICES"), two.getMessage());
    }

    @Test
    void invalidNamesAreRejectedNamingTheSource() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DeviceSelection.resolve("gpu", "SFT_DEVICE", 1, null));
        assertEquals("SFT_DEVICE must be auto, cpu, cuda or cuda:N (N = the GPU's index), got 'gpu'", e.getMessage());
        assertEquals(IllegalArgumentException.class, e.getClass(), "a typo is not a missing GPU");
    }

    @Test
    void anExplicitRequestWinsOverSftDeviceAndAutoDefersToIt() {
        assertEquals("cpu", DeviceSelection.choose("cpu", "cuda", 1, null), "the config key wins");
        assertEquals("cuda:1", DeviceSelection.choose("cuda:1", "cpu", 2, null));
        assertEquals("cpu", DeviceSelection.choose("auto", "cpu", 1, null), "auto defers to SFT_DEVICE");
        assertEquals("cpu", DeviceSelection.choose(null, "CPU", 1, null));
        assertEquals("cuda:1", DeviceSelection.choose(" ", "cuda:1", 2, null));
        assertEquals("cuda:0", DeviceSelection.choose(null, null, 1, null), "neither set: auto");
        assertEquals("cpu", DeviceSelection.choose("auto", "auto", 0, NO_GPU));
        assertEquals("cpu", DeviceSelection.choose("cpu", "bogus", 0, NO_GPU), "an unused SFT_DEVICE is not read");

        DeviceUnavailableException fromKey = assertThrows(DeviceUnavailableException.class,
                () -> DeviceSelection.choose("cuda", "cpu", 0, NO_GPU));
        assertTrue(fromKey.getMessage().startsWith("device is 'cuda'"), fromKey.getMessage());
        DeviceUnavailableException fromEnv = assertThrows(DeviceUnavailableException.class,
                () -> DeviceSelection.choose("auto", "cuda", 0, NO_GPU));
        assertTrue(fromEnv.getMessage().startsWith("SFT_DEVICE is 'cuda'"), fromEnv.getMessage());
        assertTrue(fromEnv.getMessage().contains("Set SFT_DEVICE to cpu"), fromEnv.getMessage());
        IllegalArgumentException badEnv = assertThrows(IllegalArgumentException.class,
                () -> DeviceSelection.choose(null, "gpu0", 1, null));
        assertTrue(badEnv.getMessage().startsWith("SFT_DEVICE must be"), badEnv.getMessage());
        IllegalArgumentException badKey = assertThrows(IllegalArgumentException.class,
                () -> DeviceSelection.choose("gpu0", "cpu", 1, null));
        assertTrue(badKey.getMessage().startsWith("device must be"), badKey.getMessage());
    }

    @Test
    void theReasonForNoGpuNamesTheBuildTheLibrariesOrTheVisibility() {
        String cpuBuild = DeviceSelection.unavailableReason(false, false, null);
        assertTrue(cpuBuild.contains("CPU build") && cpuBuild.contains("mvn -Pgpu package"), cpuBuild);
        String notLoaded = DeviceSelection.unavailableReason(true, false, null);
        assertTrue(notLoaded.contains("CUDA libraries could not be loaded") && notLoaded.contains("NVIDIA driver"),
                notLoaded);
        String noDevice = DeviceSelection.unavailableReason(true, true, null);
        assertTrue(noDevice.contains("no GPU is visible") && noDevice.contains("nvidia-smi"), noDevice);
        assertFalse(noDevice.contains("CUDA_VISIBLE_DEVICES"), noDevice);
        assertFalse(DeviceSelection.unavailableReason(true, true, "0").contains("CUDA_VISIBLE_DEVICES"),
                "a visible GPU index hides nothing");
        for (String hiding : new String[] {"", "-1", " -1 "}) {
            String hidden = DeviceSelection.unavailableReason(true, true, hiding);
            assertTrue(hidden.contains("CUDA_VISIBLE_DEVICES='" + hiding + "' hides every GPU"), hidden);
        }
    }

    @Test
    void thisCpuOnlyProcessRunsOnTheCpuAndRefusesCuda() {
        TorchRuntime.Info info = TorchRuntime.info();
        assumeFalse(info.cuda(), "runs where libtorch has no GPU (the CPU build used by the tests)");
        assertEquals(0, info.cudaDevices());
        assertTrue(info.cudaUnavailable() != null && !info.cudaUnavailable().isBlank());
        assertEquals("cpu", TorchRuntime.deviceName("cpu"));
        try (PointerScope scope = new PointerScope()) {
            Device d = TorchRuntime.device("cpu");
            assertTrue(d.is_cpu());
            assertEquals("cpu", Devices.name(d));
        }
        DeviceUnavailableException e = assertThrows(DeviceUnavailableException.class,
                () -> TorchRuntime.deviceName("cuda:0"));
        assertTrue(e.getMessage().contains(info.cudaUnavailable()), e.getMessage());
    }
}
