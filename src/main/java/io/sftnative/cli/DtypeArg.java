package io.sftnative.cli;

import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.safetensors.DType;
import picocli.CommandLine.Option;

/** The {@code --dtype} flag of the commands that load a model for inference (a picocli mixin). */
final class DtypeArg {
    @Option(names = "--dtype", description = "float32, bfloat16 or float16 (default: the config's torch_dtype)")
    String dtype;

    /** The libtorch type for {@code --dtype}, or null to keep the checkpoint's torch_dtype. */
    ScalarType scalarType() {
        return dtype == null ? null : DType.fromTorchName(dtype).scalarType();
    }
}
