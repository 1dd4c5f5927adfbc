package io.sftnative.bindings;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.EnumMap;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;

import io.sftnative.torch.NativeRuntimeException;

/**
 * Finds and loads our native library ({@code libsftnative.so}, or the superset {@code libsftnative_cuda.so} for
 * GPU kernels) and, optionally, a user's real {@code libbitsandbytes}, and hands out method handles for the
 * symbols of {@link BnbAbi}.
 *
 * <p>Our library comes from, in order: the system property {@value #OURS_PROPERTY} (a file or a directory holding
 * it), else the jar resource {@code /native/<os>-<arch>/<file>}, which is extracted once into a cache directory
 * keyed by the file's SHA-256 ({@code $SFT_NATIVE_CACHE}, else {@code ~/.cache/sft-native}, else the temp dir).
 *
 * <p>A real libbitsandbytes is used when given by {@link #useBitsandbytes} (the config key {@code bnb_library}),
 * the system property {@value #BNB_PROPERTY} (e.g. a {@code -D} flag) or the environment variable
 * {@value #BNB_ENV}, in that order. Each kernel then takes the bitsandbytes symbol when that library exports it
 * and ours otherwise (see {@link Kernels}); which one serves is logged.
 *
 * <p>Lifetime: a loaded library stays mapped for the life of the process, like {@code System.loadLibrary}
 * (unloading code that handles may still reference is unsafe); its arena is owned here and never closed.
 */
// FFM restricted methods are the point of this class (the JVM runs with --enable-native-access)
@SuppressWarnings("restricted")
public final class NativeLibrary {
    private static final Logger LOG = Logger.getLogger(NativeLibrary.class.getName());

    public static final String OURS_PROPERTY = "sft.native.library";
    public static final String BNB_PROPERTY = "sft.bnb.library";
    public static final String BNB_ENV = "SFT_BNB_LIBRARY";
    public static final String CACHE_ENV = "SFT_NATIVE_CACHE";

    /** Which of our two libraries. */
    public enum Flavor {
        CPU("libsftnative.so"),
        CUDA("libsftnative_cuda.so");

        final String fileName;

        Flavor(String fileName) {
            this.fileName = fileName;
        }
    }

    /** A user's libbitsandbytes: its path and whether it is a CUDA build (exports get_context, spec §1.1). */
    public record Bitsandbytes(Path path, SymbolLookup lookup, boolean cudaBuild) {}

    private static final Object LOCK = new Object();
    private static final Map<Flavor, NativeLibrary> LOADED = new EnumMap<>(Flavor.class);
    private static final Arena ARENA = Arena.ofShared(); // process lifetime, see class comment
    private static String configuredBnb;
    private static Optional<Bitsandbytes> bnb; // null = not resolved yet
    private static final Map<String, Optional<MethodHandle>> BNB_HANDLES = new ConcurrentHashMap<>();

    private final Flavor flavor;
    private final Path path;
    private final SymbolLookup lookup;
    private final Map<String, MethodHandle> handles = new ConcurrentHashMap<>();
    private final MethodHandle lastError;

    private NativeLibrary(Flavor flavor, Path path, SymbolLookup lookup) {
        this.flavor = flavor;
        this.path = path;
        this.lookup = lookup;
        this.lastError = downcall("jbnb_last_error");
    }

    /**
     * Names the user's libbitsandbytes (the config key {@code bnb_library}); {@code null} or blank falls back to
     * the system property and environment variable. Call before the first kernel runs; a later different value
     * is an error (the process has already bound its kernels).
     */
    public static void useBitsandbytes(String path) {
        synchronized (LOCK) {
            String p = path == null || path.isBlank() ? null : path.trim();
            if (bnb != null && !java.util.Objects.equals(p, configuredBnb) && p != null) {
                throw new IllegalStateException("bnb_library is already resolved to "
                        + bnb.map(b -> b.path().toString()).orElse("none") + "; set it before the first kernel runs");
            }
            configuredBnb = p;
        }
    }

    /** Forgets the resolved libbitsandbytes so the next kernel resolves it again (tests only). */
    static void resetBitsandbytesForTests() {
        synchronized (LOCK) {
            bnb = null;
            configuredBnb = null;
            BNB_HANDLES.clear();
        }
    }

    /** The CPU library (always built). */
    public static NativeLibrary cpu() {
        return get(Flavor.CPU);
    }

    /** The CUDA library (CPU + CUDA kernels); fails clearly when this build has none. */
    public static NativeLibrary cuda() {
        return get(Flavor.CUDA);
    }

    public static NativeLibrary get(Flavor flavor) {
        synchronized (LOCK) {
            NativeLibrary lib = LOADED.get(flavor);
            if (lib == null) {
                Path p = locate(flavor);
                SymbolLookup lookup;
                try {
                    lookup = SymbolLookup.libraryLookup(p, ARENA);
                } catch (IllegalArgumentException e) {
                    throw new NativeRuntimeException("could not load " + p + " (" + e.getMessage() + ")"
                            + (flavor == Flavor.CUDA ? "; the CUDA library needs an NVIDIA driver (libcuda.so.1)" : ""),
                            e);
                }
                lib = new NativeLibrary(flavor, p, lookup);
                lib.checkAbi();
                lib.applyThreads();
                LOADED.put(flavor, lib);
                LOG.info(lib.describe());
            }
            return lib;
        }
    }

    /** The user's libbitsandbytes, if one is configured (loaded on first use). */
    public static Optional<Bitsandbytes> bitsandbytes() {
        synchronized (LOCK) {
            if (bnb == null) {
                bnb = loadBitsandbytes();
            }
            return bnb;
        }
    }

    public Flavor flavor() {
        return flavor;
    }

    public Path path() {
        return path;
    }

    /** A downcall handle for one of our symbols; fails clearly when this library lacks it. */
    public MethodHandle handle(String name) {
        return handles.computeIfAbsent(name, this::downcall);
    }

    /** Whether our library exports the symbol. */
    public boolean has(String name) {
        return lookup.find(name).isPresent();
    }

    /** A handle for the bitsandbytes symbol in the user's library, or empty (cached per symbol). */
    public static Optional<MethodHandle> bitsandbytesHandle(String name) {
        Optional<Bitsandbytes> b = bitsandbytes();
        if (b.isEmpty()) {
            return Optional.empty();
        }
        return BNB_HANDLES.computeIfAbsent(name, n -> b.get().lookup().find(n)
                .map(addr -> Linker.nativeLinker().downcallHandle(addr, BnbAbi.symbol(n).descriptor())));
    }

    /** The last error message of our library on this thread. */
    public String lastError() {
        try {
            MemorySegment s = (MemorySegment) lastError.invokeExact();
            return s.equals(MemorySegment.NULL) ? "" : s.reinterpret(Long.MAX_VALUE).getString(0);
        } catch (Throwable t) {
            return "(jbnb_last_error failed: " + t + ")";
        }
    }

    /** Throws a {@link NativeKernelException} when {@code status} is not OK. */
    public void check(String function, int status, String context) {
        if (status != BnbAbi.OK) {
            throw new NativeKernelException(function, status, lastError(), context);
        }
    }

    public String describe() {
        int isa = callInt("jbnb_cpu_isa");
        String isaName = switch (isa) {
            case 2 -> "avx512";
            case 1 -> "avx2";
            default -> "scalar";
        };
        return "sft-native kernels: " + flavor.fileName + " (ABI " + callInt("jbnb_abi_version") + ", CPU " + isaName
                + ", " + callInt("jbnb_num_threads") + " threads" + (callInt("jbnb_has_cuda") == 1 ? ", CUDA" : "")
                + ") from " + path;
    }

    int callInt(String name) {
        try {
            return (int) handle(name).invokeExact();
        } catch (Throwable t) {
            throw new NativeRuntimeException("calling " + name + " in " + path + " failed: " + t, t);
        }
    }

    private MethodHandle downcall(String name) {
        FunctionDescriptor d = BnbAbi.symbol(name).descriptor();
        MemorySegment addr = lookup.find(name).orElseThrow(() -> new NativeRuntimeException(path + " does not export "
                + name + (flavor == Flavor.CPU && BnbAbi.symbol(name).group() == BnbAbi.Group.CUDA_DROP_IN
                        ? " (a CUDA symbol: only in libsftnative_cuda)" : "")
                + "; the library and the Java bindings are from different builds, rebuild with mvn package", null));
        return Linker.nativeLinker().downcallHandle(addr, d);
    }

    private void checkAbi() {
        int v = callInt("jbnb_abi_version");
        if (v != BnbAbi.ABI_VERSION) {
            throw new NativeRuntimeException(path + " speaks ABI " + v + " but these bindings need "
                    + BnbAbi.ABI_VERSION + "; it is a stale library: rebuild with mvn package", null);
        }
    }

    private void applyThreads() {
        int threads = threadsFromEnv();
        try {
            check("jbnb_set_num_threads", (int) handle("jbnb_set_num_threads").invokeExact(threads), "SFT_THREADS");
        } catch (NativeKernelException e) {
            throw e;
        } catch (Throwable t) {
            throw new NativeRuntimeException("jbnb_set_num_threads failed: " + t, t);
        }
    }

    /** SFT_THREADS (as libtorch's intra-op threads), else all processors. */
    static int threadsFromEnv() {
        String env = System.getenv("SFT_THREADS");
        if (env != null && !env.isBlank()) {
            try {
                return Math.max(0, Integer.parseInt(env.trim()));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("SFT_THREADS must be a whole number, got '" + env + "'");
            }
        }
        return Runtime.getRuntime().availableProcessors();
    }

    /** e.g. linux-x86_64 (the directory inside the jar). */
    public static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        String o = os.contains("linux") ? "linux" : os.contains("mac") ? "macosx" : os.contains("win") ? "windows" : os;
        String a = switch (arch) {
            case "amd64", "x86_64" -> "x86_64";
            case "aarch64", "arm64" -> "arm64";
            default -> arch;
        };
        return o + "-" + a;
    }

    private static Path locate(Flavor flavor) {
        String explicit = System.getProperty(OURS_PROPERTY);
        if (explicit != null && !explicit.isBlank()) {
            Path p = Path.of(explicit.trim());
            if (Files.isDirectory(p)) {
                p = p.resolve(flavor.fileName);
            }
            if (!Files.isRegularFile(p)) {
                throw new NativeRuntimeException("-D" + OURS_PROPERTY + " points at " + p + ", which does not exist", null);
            }
            return p.toAbsolutePath();
        }
        String resource = "/native/" + platform() + "/" + flavor.fileName;
        byte[] bytes;
        try (InputStream in = NativeLibrary.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new NativeRuntimeException(missingMessage(flavor, resource), null);
            }
            bytes = in.readAllBytes();
        } catch (IOException e) {
            throw new NativeRuntimeException("could not read " + resource + " from the jar: " + e.getMessage(), e);
        }
        return extract(flavor, bytes);
    }

    private static String missingMessage(Flavor flavor, String resource) {
        if (flavor == Flavor.CUDA) {
            return "this build has no CUDA kernels (" + resource + " is not in the jar): nvcc was not found when it was"
                    + " built, or it was built with -Dnative.cuda=OFF. Rebuild on a machine with the CUDA toolkit"
                    + " (mvn package), or run on the CPU (SFT_DEVICE=cpu).";
        }
        return "the native kernels (" + resource + ") are not in this build: it was built with -Dnative.skip=true, or for"
                + " another platform than " + platform() + ". Quantized weights and the fused cross-entropy need them:"
                + " rebuild with CMake and a C++ compiler installed (mvn package), or point -D" + OURS_PROPERTY
                + " at a built libsftnative.so.";
    }

    private static Path extract(Flavor flavor, byte[] bytes) {
        String hash;
        try {
            hash = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes)).substring(0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        IOException last = null;
        for (Path root : cacheRoots()) {
            Path dir = root.resolve("native-" + hash);
            Path target = dir.resolve(flavor.fileName);
            try {
                if (Files.isRegularFile(target) && Files.size(target) == bytes.length) {
                    return target;
                }
                Files.createDirectories(dir);
                Path tmp = Files.createTempFile(dir, flavor.fileName, ".part");
                Files.write(tmp, bytes);
                // atomic publish: concurrent JVMs extracting the same content race harmlessly
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                return target;
            } catch (IOException e) {
                last = e;
            }
        }
        throw new NativeRuntimeException("could not extract " + flavor.fileName + " to any cache directory "
                + cacheRoots() + " (" + (last == null ? "?" : last.getMessage()) + "); set " + CACHE_ENV
                + " to a writable directory", last);
    }

    private static java.util.List<Path> cacheRoots() {
        java.util.List<Path> roots = new java.util.ArrayList<>();
        String env = System.getenv(CACHE_ENV);
        if (env != null && !env.isBlank()) {
            roots.add(Path.of(env.trim()));
        }
        String home = System.getProperty("user.home");
        if (home != null && !home.isBlank()) {
            roots.add(Path.of(home, ".cache", "sft-native"));
        }
        roots.add(Path.of(System.getProperty("java.io.tmpdir"), "sft-native-" + System.getProperty("user.name", "user")));
        return roots;
    }

    private static Optional<Bitsandbytes> loadBitsandbytes() {
        String source;
        String p = configuredBnb;
        if (p != null) {
            source = "config key bnb_library";
        } else if (System.getProperty(BNB_PROPERTY) != null && !System.getProperty(BNB_PROPERTY).isBlank()) {
            p = System.getProperty(BNB_PROPERTY).trim();
            source = "-D" + BNB_PROPERTY;
        } else if (System.getenv(BNB_ENV) != null && !System.getenv(BNB_ENV).isBlank()) {
            p = System.getenv(BNB_ENV).trim();
            source = BNB_ENV;
        } else {
            LOG.fine("no libbitsandbytes configured: all kernels are sft-native's");
            return Optional.empty();
        }
        Path path = Path.of(p);
        if (!Files.isRegularFile(path)) {
            throw new NativeRuntimeException("libbitsandbytes given by " + source + " does not exist: " + path
                    + " (expected a file like .../bitsandbytes/libbitsandbytes_cuda128.so or libbitsandbytes_cpu.so)",
                    null);
        }
        SymbolLookup lookup;
        try {
            lookup = SymbolLookup.libraryLookup(path, ARENA);
        } catch (IllegalArgumentException e) {
            throw new NativeRuntimeException("could not load libbitsandbytes " + path + " (from " + source + "): "
                    + e.getMessage() + ". A CUDA build needs the matching CUDA runtime on LD_LIBRARY_PATH.", e);
        }
        boolean cuda = lookup.find("get_context").isPresent();
        long cpuSymbols = BnbAbi.names(BnbAbi.Group.CPU_DROP_IN).stream().filter(n -> lookup.find(n).isPresent()).count();
        long cudaSymbols = BnbAbi.names(BnbAbi.Group.CUDA_DROP_IN).stream().filter(n -> lookup.find(n).isPresent()).count();
        LOG.info("libbitsandbytes from " + source + ": " + path + " (" + (cuda ? "CUDA" : "CPU") + " build; exports "
                + cpuSymbols + "/" + BnbAbi.names(BnbAbi.Group.CPU_DROP_IN).size() + " CPU and " + cudaSymbols + "/"
                + BnbAbi.names(BnbAbi.Group.CUDA_DROP_IN).size()
                + " CUDA quantize/dequantize symbols; sft-native serves the rest)");
        return Optional.of(new Bitsandbytes(path.toAbsolutePath(), lookup, cuda));
    }
}
