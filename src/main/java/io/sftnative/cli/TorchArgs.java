package io.sftnative.cli;

import io.sftnative.torch.TorchRuntime;
import picocli.CommandLine.Option;

/** The {@code --threads} flag of the commands that run libtorch outside a training config (a picocli mixin). */
final class TorchArgs {
    @Option(names = "--threads", description = "libtorch threads (default: SFT_THREADS or all processors)")
    Integer threads;

    /** Boots libtorch with {@code --threads}, else SFT_THREADS or all processors. */
    void boot() {
        TorchRuntime.boot(threads != null ? threads : TorchRuntime.defaultThreads());
    }
}
