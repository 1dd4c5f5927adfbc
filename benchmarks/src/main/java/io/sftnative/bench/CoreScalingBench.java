package io.sftnative.bench;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.sftnative.torch.TorchRuntime;

/**
 * What this machine's cores give when used together, on the trainer's own kernels (libtorch's OpenBLAS GEMM and a
 * large tensor copy): (1) one process with 1 thread, (2) two such processes at the same time, (3) one process with 2
 * threads. Data-parallel ranks are case (2), one process with more intra-op threads case (3); if (2) gives each
 * process much less than (1), the cores share an execution unit or memory path (SMT siblings on the host, a CPU
 * quota), and no data-parallel design can reach one process's speed at equal core count.
 *
 * <pre>benchmarks/run-java.sh CoreScalingBench [--seconds 15]</pre>
 */
public final class CoreScalingBench {
    private static final int N = 1024; // GEMM size: the decoder's (B·T, H) x (H, I) are of this order
    private static final long COPY = 64L << 20; // elements of fp32 copied: 256 MiB, far beyond the caches

    private CoreScalingBench() {}

    public static void main(String[] argv) throws Exception {
        if (argv.length >= 3 && argv[0].equals("--child")) {
            child(Integer.parseInt(argv[1]), Double.parseDouble(argv[2]));
            return;
        }
        double seconds = Double.parseDouble(DecoderStepBench.parse(argv).getOrDefault("seconds", "15"));
        System.out.printf(Locale.ROOT, "CoreScalingBench: %d cores, %.0f s per case, load average %s%n",
                Runtime.getRuntime().availableProcessors(), seconds, DdpBench.loadAverage());
        double[] one = runCase("(1) 1 process x 1 thread", 1, 1, seconds);
        double[] two = runCase("(2) 2 processes x 1 thread, together", 2, 1, seconds);
        double[] threads = runCase("(3) 1 process x 2 threads", 1, 2, seconds);
        System.out.printf(Locale.ROOT, "GEMM: (2) per process %.2f of (1), total %.2f; (3) %.2f of (1)%n",
                two[0] / 2 / one[0], two[0] / one[0], threads[0] / one[0]);
        System.out.printf(Locale.ROOT, "copy: (2) per process %.2f of (1), total %.2f; (3) %.2f of (1)%n",
                two[1] / 2 / one[1], two[1] / one[1], threads[1] / one[1]);
        System.out.println("load average at the end " + DdpBench.loadAverage());
    }

    /** Starts {@code processes} children together; returns their summed {GEMM GFLOP/s, copy GB/s}. */
    private static double[] runCase(String name, int processes, int threads, double seconds) throws Exception {
        List<Process> ps = new ArrayList<>();
        for (int i = 0; i < processes; i++) {
            List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                    "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-Xmx1g", "-cp",
                    System.getProperty("java.class.path"), CoreScalingBench.class.getName(), "--child",
                    String.valueOf(threads), String.valueOf(seconds)));
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
            pb.environment().put("SFT_THREADS", String.valueOf(threads));
            pb.environment().put("OPENBLAS_NUM_THREADS", String.valueOf(threads));
            pb.environment().put("OMP_NUM_THREADS", String.valueOf(threads));
            ps.add(pb.start());
        }
        double[] sum = new double[2];
        for (Process p : ps) {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(),
                    StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    if (line.startsWith("RESULT ")) {
                        String[] f = line.split(" ");
                        sum[0] += Double.parseDouble(f[1]);
                        sum[1] += Double.parseDouble(f[2]);
                    } else if (line.startsWith("ERROR") || line.contains("Exception")) {
                        System.out.println(line);
                    }
                }
            }
            if (p.waitFor() != 0) {
                throw new IllegalStateException(name + ": a child failed");
            }
        }
        System.out.printf(Locale.ROOT, "%-40s GEMM %.1f GFLOP/s, copy %.1f GB/s (summed over processes)%n", name,
                sum[0], sum[1]);
        return sum;
    }

    /** Measures for {@code seconds}/2 each: median GEMM rate and median copy bandwidth; prints one RESULT line. */
    @SuppressWarnings("try")
    private static void child(int threads, double seconds) {
        TorchRuntime.boot(threads);
        try (PointerScope s = new PointerScope()) {
            Tensor x = torch.randn(N, N); // (N, N)
            Tensor y = torch.randn(N, N); // (N, N)
            Tensor src = torch.randn(COPY); // (COPY,)
            Tensor dst = torch.empty(COPY); // (COPY,)
            dst.copy_(src);
            torch.mm(x, y);
            List<Double> gemm = new ArrayList<>();
            long end = System.nanoTime() + (long) (seconds / 2 * 1e9);
            while (System.nanoTime() < end) {
                try (PointerScope r = new PointerScope()) {
                    long t0 = System.nanoTime();
                    torch.mm(x, y);
                    gemm.add(2.0 * N * N * N / ((System.nanoTime() - t0) / 1e9) / 1e9);
                }
            }
            List<Double> copy = new ArrayList<>();
            end = System.nanoTime() + (long) (seconds / 2 * 1e9);
            while (System.nanoTime() < end) {
                long t0 = System.nanoTime();
                dst.copy_(src);
                copy.add(2.0 * 4 * COPY / ((System.nanoTime() - t0) / 1e9) / 1e9); // read + write
            }
            System.out.printf(Locale.ROOT, "RESULT %.3f %.3f%n", median(gemm), median(copy));
        }
    }

    private static double median(List<Double> v) {
        double[] a = v.stream().mapToDouble(Double::doubleValue).toArray();
        Arrays.sort(a);
        return a.length == 0 ? 0 : a[a.length / 2];
    }
}
