package io.sftnative.checkpoint;

import io.sftnative.torch.Devices;
import io.sftnative.torch.TorchRuntime;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * libtorch's default random generators (what {@code torch.randn}, dropout and {@code bernoulli} draw from), saved
 * and restored as opaque byte arrays, like {@code torch.get_rng_state()}/{@code set_rng_state()} and their CUDA
 * counterparts that HF stores in {@code rng_state.pth}. Restoring a saved state reproduces the same random
 * numbers (same dropout masks) from that point on. Boots libtorch through {@link TorchRuntime} if needed.
 */
@SuppressWarnings("try") // scopes and no-grad guards are held for their side effect
public final class TorchRng {
    private TorchRng() {}

    /** {@code torch.manual_seed(seed)}: the CPU generator and, when present, every CUDA generator. */
    public static void manualSeed(long seed) {
        TorchRuntime.info();
        torch.manual_seed(seed);
        if (TorchRuntime.info().cuda()) {
            torch.cuda_manual_seed_all(seed);
        }
    }

    /** The default CPU generator's state (5056 bytes for the Mersenne-Twister generator). */
    public static byte[] cpuState() {
        TorchRuntime.info();
        try (PointerScope scope = new PointerScope()) {
            return bytes(torch.getDefaultCPUGenerator().get_state());
        }
    }

    /** Restores what {@link #cpuState()} returned. */
    public static void setCpuState(byte[] state) {
        TorchRuntime.info();
        try (PointerScope scope = new PointerScope()) {
            Generator g = torch.getDefaultCPUGenerator();
            g.set_state(tensor(state));
        }
    }

    /**
     * The state of the default CUDA generator of {@code device} (what dropout on that GPU draws from), or null when
     * {@code device} is not a GPU: a run on the CPU needs only {@link #cpuState()}.
     */
    public static byte[] cudaState(Device device) {
        if (!device.is_cuda()) {
            return null;
        }
        try (PointerScope scope = new PointerScope()) {
            return bytes(torch.globalContext().defaultGenerator(indexed(device)).get_state());
        }
    }

    /** Restores what {@link #cudaState(Device)} returned into the generator of {@code device}, a GPU. */
    public static void setCudaState(Device device, byte[] state) {
        if (!device.is_cuda() || !TorchRuntime.info().cuda()) {
            throw new IllegalStateException("a CUDA random state can only be restored into a GPU's generator, not "
                    + Devices.name(device) + (TorchRuntime.info().cuda() ? "" : " (this process has no GPU)"));
        }
        try (PointerScope scope = new PointerScope()) {
            torch.globalContext().defaultGenerator(indexed(device)).set_state(tensor(state));
        }
    }

    /** {@code cuda} means the current GPU, whose generator is {@code cuda:0} unless another was made current. */
    private static Device indexed(Device device) {
        return device.has_index() ? device : new Device("cuda:0");
    }

    private static byte[] bytes(Tensor state) { // (N,) uint8 on the CPU
        Tensor c = state.contiguous();
        byte[] out = new byte[(int) c.numel()];
        new BytePointer(c.data_ptr()).capacity(out.length).get(out);
        return out;
    }

    private static Tensor tensor(byte[] state) { // (N,) uint8, owning its memory
        BytePointer p = new BytePointer(state);
        // host: generator states are CPU byte tensors, also for CUDA generators (as torch.cuda.get_rng_state())
        return torch.from_blob(p, new long[] {state.length}, new TensorOptions(ScalarType.Byte)).clone();
    }
}
