package io.sftnative.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.logging.Logger;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;

/**
 * The only place that boots libtorch.
 *
 * <p>Order matters: the JavaCPP natives (OpenBLAS, libtorch, libgomp, JNI glue) are extracted into the JavaCPP
 * cache <em>before</em> any {@code org.bytedeco.pytorch} class is initialised, so that the dynamic loader resolves
 * {@code libtorch_cpu.so} from the cache and never from the system (Debian's python3-torch ships a 1.13
 * {@code libtorch_cpu.so} whose ABI differs: loading it segfaults). After loading we read {@code /proc/self/maps}
 * and fail with one clear error if any libtorch was mapped from outside the cache.
 */
public final class TorchRuntime {
    private static final Logger LOG = Logger.getLogger(TorchRuntime.class.getName());
    private static final Object LOCK = new Object();
    private static volatile Info info;

    /**
     * What was booted; printed by {@code info} and benchmark headers.
     *
     * @param cudaDevices     GPUs libtorch can use (0 in the CPU build, or without a GPU)
     * @param cudaUnavailable why there is no GPU ({@link DeviceSelection#unavailableReason}), or null when there is
     */
    public record Info(String platform, Path cacheDir, int threads, int cudaDevices, String cudaUnavailable,
            String ompWaitPolicy) {
        /** Whether this process can put tensors on a GPU (not whether the run does: see {@link #device()}). */
        public boolean cuda() {
            return cudaDevices > 0;
        }
    }

    private TorchRuntime() {}

    /** Boots with the thread count from {@code SFT_THREADS} or all available processors. */
    public static Info boot() {
        return boot(defaultThreads());
    }

    /** Boots libtorch once per process; later calls only change the intra-op thread count. */
    public static Info boot(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        synchronized (LOCK) {
            if (info == null) {
                info = load(threads);
            } else if (info.threads() != threads) {
                torch.set_num_threads(threads);
                OpenBlasThreads.set(threads);
                info = new Info(info.platform(), info.cacheDir(), threads, info.cudaDevices(), info.cudaUnavailable(),
                        info.ompWaitPolicy());
            }
            return info;
        }
    }

    /** The booted runtime; boots with defaults if nobody did yet. */
    public static Info info() {
        Info i = info;
        return i != null ? i : boot();
    }

    /**
     * The device models and tensors live on: {@code SFT_DEVICE} when set ({@code cpu}, {@code cuda}, {@code cuda:N},
     * {@code auto}), else the first GPU when the CUDA build runs on a machine with one, else the CPU. The only place
     * that decides; every loader defaults to it. Fails with {@link DeviceUnavailableException} naming why when a GPU
     * is requested but cannot be used.
     */
    public static Device device() {
        return device(null);
    }

    /**
     * As {@link #device()}, with an explicit request (the config key {@code device}, a {@code --device} flag) that
     * wins over {@code SFT_DEVICE}; null, blank or {@code auto} defer to it. The result belongs to the caller's
     * {@code PointerScope}, if one is open.
     */
    public static Device device(String requested) {
        return new Device(deviceName(requested));
    }

    /** The canonical name ({@code cpu}, {@code cuda:N}) of what {@link #device(String)} returns. */
    public static String deviceName(String requested) {
        Info i = info();
        return DeviceSelection.choose(requested, System.getenv("SFT_DEVICE"), i.cudaDevices(), i.cudaUnavailable());
    }

    /**
     * Turns flush-to-zero / denormals-are-zero on or off for the calling thread (and the OpenMP workers it starts
     * afterwards), libtorch's {@code set_flush_denormal}. Training turns it on: once a model is confident, softmax
     * and attention probabilities underflow into subnormals, and every GEMM that reads them pays microcode assists
     * (measured: the demo's steps slowed from 0.06 to 0.13 s by mid-run; with flushing they stayed at 0.06 s and the
     * losses were the same to 4 decimals). Values below 1.2e-38 become 0. {@code SFT_FLUSH_DENORMAL=0} keeps
     * subnormals. Returns whether the mode was changed (false on CPUs without SSE3 or when disabled).
     */
    public static boolean flushDenormals(boolean on) {
        if (on && "0".equals(System.getenv("SFT_FLUSH_DENORMAL"))) {
            return false;
        }
        info(); // libtorch must be booted (natives extracted) before its context is touched
        return torch.globalContext().setFlushDenormal(on);
    }

    public static int defaultThreads() {
        String env = System.getenv("SFT_THREADS");
        if (env != null && !env.isBlank()) {
            try {
                return Integer.parseInt(env.trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("SFT_THREADS must be a whole number, got '" + env + "'");
            }
        }
        return Runtime.getRuntime().availableProcessors();
    }

    private static Info load(int threads) {
        String platform = Loader.getPlatform();
        Path cache;
        try {
            cache = Loader.getCacheDir().toPath().toRealPath();
            // Extract every native of the presets first (see class comment).
            Loader.cacheResources("/org/bytedeco/openblas/" + platform + "/");
            // The GPU build (-Pgpu) carries libtorch for CUDA under <platform>-gpu/ next to the CPU one: JavaCPP
            // tries the -gpu variant first and falls back to the CPU libtorch when CUDA's libraries are missing.
            for (String variant : List.of(platform + "-gpu", platform)) {
                String dir = "/org/bytedeco/pytorch/" + variant + "/";
                if (TorchRuntime.class.getResource(dir + "libjnitorch.so") != null) {
                    Loader.cacheResources(dir);
                }
            }
            Loader.load(torch.class);
        } catch (IOException | UnsatisfiedLinkError | ExceptionInInitializerError | NoClassDefFoundError e) {
            throw new NativeRuntimeException("libtorch could not be loaded for platform " + platform
                    + " (" + rootMessage(e) + "). The jar must carry the Bytedeco pytorch natives for this platform"
                    + " (build with the default profile for CPU, -Pgpu for CUDA); if the JavaCPP cache is damaged,"
                    + " delete ~/.javacpp/cache and run again.", e);
        }
        checkNoForeignTorch(cache);
        torch.set_num_threads(threads);
        OpenBlasThreads.set(threads); // its own pool, which set_num_threads does not reach
        int gpus = 0;
        try {
            gpus = torch.cuda_is_available() ? Math.max(0, (int) torch.cuda_device_count()) : 0;
        } catch (Throwable t) {
            LOG.fine("CUDA probe failed, using CPU: " + t);
        }
        boolean gpuBuild = TorchRuntime.class.getResource("/org/bytedeco/pytorch/" + platform + "-gpu/libjnitorch.so")
                != null;
        String why = gpus > 0 ? null : DeviceSelection.unavailableReason(gpuBuild, cudaLibtorchMapped(),
                System.getenv("CUDA_VISIBLE_DEVICES"));
        String omp = System.getenv("OMP_WAIT_POLICY");
        if (omp == null) {
            LOG.warning("OMP_WAIT_POLICY is not set: OpenMP threads spin between kernels and training steps run"
                    + " slower (measured 42% instead of ~65% of GEMM peak on 2 cores). Export OMP_WAIT_POLICY=PASSIVE"
                    + " before starting the JVM.");
        }
        return new Info(platform, cache, threads, gpus, why, omp);
    }

    /** Whether libtorch's CUDA part is loaded (the -gpu variant loaded, not its CPU fallback). */
    private static boolean cudaLibtorchMapped() {
        try {
            return Files.readString(Path.of("/proc/self/maps")).contains("libtorch_cuda.so");
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** Fails if a libtorch/libc10 was mapped from anywhere but the JavaCPP cache. */
    private static void checkNoForeignTorch(Path cache) {
        Path maps = Path.of("/proc/self/maps");
        if (!Files.isReadable(maps)) {
            return; // not Linux: nothing to check
        }
        List<String> foreign;
        try (var lines = Files.lines(maps)) {
            foreign = lines.map(l -> {
                        int slash = l.indexOf('/');
                        return slash < 0 ? "" : l.substring(slash);
                    })
                    .filter(p -> p.matches(".*/lib(torch|torch_cpu|c10)\\.so.*"))
                    .filter(p -> !p.startsWith(cache.toString()))
                    .distinct()
                    .toList();
        } catch (IOException e) {
            return;
        }
        if (!foreign.isEmpty()) {
            throw new NativeRuntimeException("a libtorch from outside the JavaCPP cache (" + cache + ") was loaded: "
                    + foreign + ". Another libtorch is on LD_LIBRARY_PATH or java.library.path; unset them"
                    + " so the bundled libtorch 2.10 is used.", null);
        }
    }

    private static String rootMessage(Throwable t) {
        Throwable r = t;
        while (r.getCause() != null) {
            r = r.getCause();
        }
        return r.getClass().getSimpleName() + ": " + r.getMessage();
    }
}
