package io.sftnative.cli;

import io.sftnative.torch.TorchRuntime;
import picocli.CommandLine.Option;

/**
 * The {@code --threads} and {@code --device} flags of the commands that run libtorch outside a training config (a
 * picocli mixin).
 */
final class TorchArgs {
    @Option(names = "--threads", description = "libtorch threads (default: SFT_THREADS or all processors)")
    Integer threads;

    @Option(names = "--device", paramLabel = "DEVICE",
            description = "auto, cpu, cuda or cuda:N (default: SFT_DEVICE, else the GPU when there is one)")
    String device;

    /** Boots libtorch with {@code --threads}, else SFT_THREADS or all processors. */
    void boot() {
        TorchRuntime.boot(threads != null ? threads : TorchRuntime.defaultThreads());
    }

    /** Where to run: {@code --device}, else SFT_DEVICE, else auto; fails naming why a requested GPU is unusable. */
    String deviceName() {
        return TorchRuntime.deviceName(device);
    }
}
