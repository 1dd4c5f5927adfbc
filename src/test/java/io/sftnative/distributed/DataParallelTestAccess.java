package io.sftnative.distributed;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** The multi-rank helpers of {@link DataParallelEquivalenceTest}, for tests in other packages. */
public final class DataParallelTestAccess {
    private DataParallelTestAccess() {}

    /** The LoRA config of the equivalence tests (golden Qwen2 model, batch 2, 2 epochs). */
    public static Map<String, Object> loraConfig() {
        return DataParallelEquivalenceTest.common("lora");
    }

    public static int freePort() throws IOException {
        return DataParallelEquivalenceTest.freePort();
    }

    /** {@code sft-native train args} as rank {@code rank} of {@code world} (torchrun's environment), in a child JVM. */
    public static Process rank(int rank, int world, int port, List<String> args, Path log) throws IOException {
        return DataParallelEquivalenceTest.rank(rank, world, port, args, log);
    }

    public static List<double[]> stepsOf(Path out) throws IOException {
        return DataParallelEquivalenceTest.stepsOf(out);
    }

    public static double[] maxDiff(Path a, Path b) throws IOException {
        return DataParallelEquivalenceTest.maxDiff(a, b);
    }
}
