package io.sftnative.torch;

import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.DeviceType;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Mixed precision ({@code bf16: true}): libtorch's autocast, the same mechanism as {@code torch.autocast}. Inside
 * {@link #enter()} matrix products (linear, matmul, attention) run in bfloat16 while the weights, their gradients
 * and the optimizer state stay float32; the loss is computed in float32 (the causal-LM loss upcasts the logits).
 *
 * <p>Autocast state is thread-local in libtorch: enter and leave on the thread that runs the forward pass.
 */
public final class Autocast {
    /** No autocast: everything runs in the weights' dtype. */
    public static final Autocast OFF = new Autocast(false);
    /** bfloat16 autocast on the device the model runs on. */
    public static final Autocast BF16 = new Autocast(true);

    private final boolean enabled;

    private Autocast(boolean enabled) {
        this.enabled = enabled;
    }

    public static Autocast of(boolean bf16) {
        return bf16 ? BF16 : OFF;
    }

    public boolean enabled() {
        return enabled;
    }

    /** A scope: autocast on until {@link Scope#close()} (a no-op when this policy is {@link #OFF}). */
    public Scope enter() {
        return new Scope(enabled);
    }

    /**
     * Autocast turned on for the CPU and, when this process has a GPU, for CUDA too (whichever device the model is on,
     * its ops are covered); restores the previous state on close.
     */
    public static final class Scope implements AutoCloseable {
        private final boolean active;
        private final boolean cuda;
        private final boolean wasCpu;
        private final ScalarType oldCpuDtype;
        private final boolean wasCuda;
        private final ScalarType oldCudaDtype;

        private Scope(boolean active) {
            this.active = active;
            this.cuda = active && TorchRuntime.info().cuda();
            if (!active) {
                wasCpu = false;
                oldCpuDtype = null;
                wasCuda = false;
                oldCudaDtype = null;
                return;
            }
            wasCpu = torch.is_autocast_enabled(DeviceType.CPU);
            oldCpuDtype = torch.get_autocast_dtype(DeviceType.CPU);
            torch.set_autocast_dtype(DeviceType.CPU, ScalarType.BFloat16);
            torch.set_autocast_enabled(DeviceType.CPU, true);
            wasCuda = cuda && torch.is_autocast_enabled(DeviceType.CUDA);
            oldCudaDtype = cuda ? torch.get_autocast_dtype(DeviceType.CUDA) : null;
            if (cuda) {
                torch.set_autocast_dtype(DeviceType.CUDA, ScalarType.BFloat16);
                torch.set_autocast_enabled(DeviceType.CUDA, true);
            }
            torch.increment_nesting();
        }

        @Override
        public void close() {
            if (!active) {
                return;
            }
            if (torch.decrement_nesting() == 0) {
                torch.clear_cache(); // the per-scope cache of weights cast to bf16 (torch.autocast does the same)
            }
            torch.set_autocast_enabled(DeviceType.CPU, wasCpu);
            torch.set_autocast_dtype(DeviceType.CPU, oldCpuDtype);
            if (cuda) {
                torch.set_autocast_enabled(DeviceType.CUDA, wasCuda);
                torch.set_autocast_dtype(DeviceType.CUDA, oldCudaDtype);
            }
        }
    }
}
