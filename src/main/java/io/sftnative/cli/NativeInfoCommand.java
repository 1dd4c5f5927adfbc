package io.sftnative.cli;

import java.util.List;
import java.util.concurrent.Callable;

import io.sftnative.bindings.BnbAbi;
import io.sftnative.bindings.NativeLibrary;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code sft-native native-info}: which native kernel library serves the quantization and fused cross-entropy
 * kernels (ours, and a real libbitsandbytes for the symbols it exports), with ISA, threads and CUDA availability.
 */
@Command(name = "native-info", mixinStandardHelpOptions = true,
        footerHeading = "%nExample:%n",
        footer = {
                "  java -jar sft-native.jar native-info --bnb-library /path/to/bitsandbytes/libbitsandbytes_cpu.so"},
        description = "Show the native kernel libraries in use: sft-native's, and a real libbitsandbytes if given.")
final class NativeInfoCommand implements Callable<Integer> {
    @Option(names = "--bnb-library", paramLabel = "PATH",
            description = "a real libbitsandbytes (e.g. .../bitsandbytes/libbitsandbytes_cuda128.so) whose symbols are"
                    + " used where it exports them; default: -Dsft.bnb.library, then $SFT_BNB_LIBRARY")
    String bnbLibrary;

    @Override
    public Integer call() {
        NativeLibrary.useBitsandbytes(bnbLibrary);
        NativeLibrary cpu = NativeLibrary.cpu();
        System.out.println(cpu.describe());
        boolean cudaInJar = NativeLibrary.class.getResource("/native/" + NativeLibrary.platform()
                + "/libsftnative_cuda.so") != null;
        System.out.println("CUDA kernels: " + (cudaInJar ? "libsftnative_cuda.so is in this build (used when libtorch"
                + " runs on a GPU)" : "not in this build (nvcc was not found when it was built)"));
        var bnb = NativeLibrary.bitsandbytes();
        if (bnb.isEmpty()) {
            System.out.println("libbitsandbytes: none configured (all kernels are sft-native's; set --bnb-library,"
                    + " the config key bnb_library or SFT_BNB_LIBRARY to use one)");
            return 0;
        }
        System.out.println("libbitsandbytes: " + bnb.get().path() + " (" + (bnb.get().cudaBuild() ? "CUDA" : "CPU")
                + " build)");
        for (BnbAbi.Group g : List.of(BnbAbi.Group.CPU_DROP_IN, BnbAbi.Group.CUDA_DROP_IN)) {
            List<String> names = BnbAbi.names(g);
            List<String> missing = names.stream().filter(n -> NativeLibrary.bitsandbytesHandle(n).isEmpty()).toList();
            System.out.println("  " + g + ": " + (names.size() - missing.size()) + "/" + names.size()
                    + " served by bitsandbytes" + (missing.isEmpty() ? "" : "; sft-native serves " + missing));
        }
        return 0;
    }
}
