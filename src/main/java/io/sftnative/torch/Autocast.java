package io.sftnative.torch;

import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.DeviceType;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Mixed precision ({@code bf16: true}, or {@code fp16: true} on CUDA): libtorch's autocast, the same mechanism as
 * {@code torch.autocast}. With fp16 only CUDA autocast is turned on (fp16 needs a GPU; the trainer scales the loss,
 * {@code io.sftnative.optim.LossScaler}). Inside
 * {@link #enter()} matrix products (linear, matmul, attention) run in bfloat16 while the weights, their gradients
 * and the optimizer state stay float32; the loss is computed in float32 (the causal-LM loss upcasts the logits).
 *
 * <p>Autocast state is thread-local in libtorch: enter and leave on the thread that runs the forward pass.
 */
public final class Autocast {
    /** No autocast: everything runs in the weights' dtype. */
    public static final Autocast OFF = new Autocast(false, null);
    /** bfloat16 autocast on the device the model runs on. */
    public static final Autocast BF16 = new Autocast(true, ScalarType.BFloat16);
    /** float16 autocast on CUDA (CPU ops stay in their dtype). */
    public static final Autocast FP16 = new Autocast(true, ScalarType.Half);

    private final boolean enabled;
    private final ScalarType dtype; // null when off

    private Autocast(boolean enabled, ScalarType dtype) {
        this.enabled = enabled;
        this.dtype = dtype;
    }

    public static Autocast of(boolean bf16) {
        return bf16 ? BF16 : OFF;
    }

    /** bf16, fp16 (at most one is true) or off. */
    public static Autocast of(boolean bf16, boolean fp16) {
        return fp16 ? FP16 : of(bf16);
    }

    public boolean enabled() {
        return enabled;
    }

    /** bf16, fp16 or off, for the log. */
    public String describe() {
        return !enabled ? "off" : dtype == ScalarType.Half ? "fp16" : "bf16";
    }

    /** A scope: autocast on until {@link Scope#close()} (a no-op when this policy is {@link #OFF}). */
    public Scope enter() {
        return new Scope(enabled, dtype);
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

        private Scope(boolean active, ScalarType dtype) {
            this.active = active;
            boolean cpuToo = dtype != ScalarType.Half; // fp16 autocast is for CUDA only
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
            if (cpuToo) {
                torch.set_autocast_dtype(DeviceType.CPU, ScalarType.BFloat16);
                torch.set_autocast_enabled(DeviceType.CPU, true);
            }
            wasCuda = cuda && torch.is_autocast_enabled(DeviceType.CUDA);
            oldCudaDtype = cuda ? torch.get_autocast_dtype(DeviceType.CUDA) : null;
            if (cuda) {
                torch.set_autocast_dtype(DeviceType.CUDA, dtype);
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
