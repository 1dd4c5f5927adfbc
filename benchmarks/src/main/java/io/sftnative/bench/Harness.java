package io.sftnative.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.databind.JsonNode;

import io.sftnative.torch.MallocEnvironment;
import io.sftnative.torch.TorchRuntime;

/**
 * The end-to-end benchmark: sft-native's trainer and a plain eager PyTorch reference
 * ({@code benchmarks/reference/train_ref.py}, Debian's python3-torch) on the same model, data, batches and
 * hyper-parameters, each mode of each side in its own process, one after the other on the same threads; then the
 * table, JSON and charts ({@link HarnessReport}). Started by {@code benchmarks/run.sh}.
 *
 * <pre>
 * java ... io.sftnative.bench.Harness [--quick] [--threads N] [--modes full-padded-plain,...] [--work DIR] [--optim NAME]
 *     [--out DIR] [--shared DIR] [--python /usr/bin/python3] [--reference-blas auto|system|PATH] [--record FILE]
 *     [--report-only]   (the table again from the results already in WORK)
 * </pre>
 */
public final class Harness {
    private Harness() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> a = options(args);
        boolean quick = a.containsKey("quick");
        boolean reportOnly = a.containsKey("report-only");
        int threads = Integer.parseInt(a.getOrDefault("threads",
                String.valueOf(Runtime.getRuntime().availableProcessors())));
        List<String> modes = a.containsKey("modes") ? Arrays.asList(a.get("modes").split(","))
                : quick ? HarnessPlan.QUICK_MODES : HarnessPlan.DEFAULT_MODES;
        modes.forEach(HarnessPlan.Mode::parse); // fail on a typo before anything runs
        Path repo = Path.of(a.getOrDefault("repo", ".")).toAbsolutePath().normalize();
        HarnessPlan.Work work = new HarnessPlan.Work(Path.of(a.getOrDefault("work", "target/bench-e2e"))
                .toAbsolutePath());
        Path out = Path.of(a.getOrDefault("out", "benchmarks/results")).toAbsolutePath();
        Path shared = Path.of(a.getOrDefault("shared", repo.resolve("../shared").toString())).normalize();
        String python = a.getOrDefault("python", "/usr/bin/python3");
        HarnessPlan.Settings s = HarnessPlan.Settings.defaults(threads, quick);
        if (a.containsKey("examples")) {
            s = s.withExamples(Integer.parseInt(a.get("examples")));
        }
        if (a.containsKey("optim")) {
            s = s.withOptim(a.get("optim"));
        }
        String torchVersion = checkPython(python);
        System.setProperty("sft.cache.dir", work.cache().toString());
        System.out.println(HarnessPlan.f("sft-native end-to-end benchmark  %s  threads %d  modes %s  load %s",
                Instant.now(), threads, String.join(",", modes), DecoderStepBench.loadAverage()));

        JsonNode plan = prepare(s, modes, work, shared, torchVersion);
        List<HarnessPlan.Run> runs = HarnessPlan.runs(modes);
        String blas = reportOnly ? null : referenceBlas(a.getOrDefault("reference-blas", "auto"), work);
        if (!reportOnly) { // what the report states about this run, also when it is re-rendered later
            Map<String, Object> session = new LinkedHashMap<>();
            session.put("started", Instant.now().toString());
            session.put("commit", HarnessReport.commit());
            session.put("load_average_start", DecoderStepBench.loadAverage());
            session.put("reference_blas", blas == null ? "system libblas.so.3" : blas + "/libblas.so.3");
            HarnessPlan.write(work.dir().resolve("session.json"), session);
        }
        for (int i = 0; i < runs.size() && !reportOnly; i++) {
            HarnessPlan.Run r = runs.get(i);
            System.out.println(HarnessPlan.f("[%d/%d] %s %s  (load %s)", i + 1, runs.size(), r.side(), r.mode(),
                    DecoderStepBench.loadAverage()));
            List<String> cmd = r.side().equals(HarnessPlan.Run.OURS) ? oursCommand(work, r)
                    : List.of(python, repo.resolve("benchmarks/reference/train_ref.py").toString(), "--work",
                            work.dir().toString(), "--mode", r.mode());
            launch(cmd, r, work, threads, blas);
        }
        HarnessReport.Summary summary = HarnessReport.build(plan, work, runs);
        HarnessReport.write(summary, out);
        System.out.println();
        System.out.print(HarnessReport.markdown(summary));
        if (a.containsKey("record")) {
            HarnessReport.record(summary, Path.of(a.get("record")));
            System.out.println("recorded in " + a.get("record"));
        }
        System.out.println("results: " + out);
    }

    /** Data, checkpoint, adapter and batch plans, or the existing ones when the settings and modes are unchanged. */
    static JsonNode prepare(HarnessPlan.Settings s, List<String> modes, HarnessPlan.Work work, Path shared,
            String torchVersion) throws IOException {
        JsonNode old = Files.isRegularFile(work.plan()) ? HarnessPlan.JSON.readTree(work.plan().toFile()) : null;
        if (old != null && old.get("settings").equals(reread(s)) && old.get("modes").equals(reread(modes))) {
            System.out.println("reusing the data, checkpoint and batches of " + work.plan());
            return old;
        }
        long t0 = System.nanoTime();
        HarnessData.Source src = HarnessData.source(Files.isDirectory(shared) ? shared : null, work, s.seed());
        int examples = HarnessData.tokenize(src, s, work, m -> {});
        long params = HarnessData.writeModel(s, work);
        Map<String, Object> layouts = new LinkedHashMap<>();
        for (String m : modes) {
            HarnessPlan.Mode mode = HarnessPlan.Mode.parse(m);
            if (!layouts.containsKey(mode.layout())) {
                Map<String, Object> l = new LinkedHashMap<>();
                l.put("batches", work.batches(mode.layout()).toString());
                l.put("steps", HarnessData.writeBatches(s, mode, work, System.out::println));
                layouts.put(mode.layout(), l);
            }
        }
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("created", Instant.now().toString());
        p.put("settings", s);
        p.put("modes", modes);
        p.put("source", src.description());
        p.put("tokenized_examples", examples);
        p.put("vocab_mapping", "token id % " + s.model().get("vocab_size") + " (labels too; -100 kept)");
        p.put("model_dir", work.model().toString());
        p.put("adapter_init", work.adapterInit().toString());
        p.put("model_parameters", params);
        p.put("reference_torch", torchVersion);
        p.put("layouts", layouts);
        HarnessPlan.write(work.plan(), p);
        System.out.println(HarnessPlan.f("prepared %s: %d examples tokenized, %,d-parameter model, %.1f s",
                src.description(), examples, params, (System.nanoTime() - t0) / 1e9));
        return HarnessPlan.JSON.readTree(work.plan().toFile());
    }

    /** {@code value} as it reads back from the plan file (a long written as 42 reads back as an int node). */
    private static JsonNode reread(Object value) throws IOException {
        return HarnessPlan.JSON.readTree(HarnessPlan.JSON.writeValueAsString(value));
    }

    /** torch's version for {@code python}, or exits naming the package to install. */
    static String checkPython(String python) throws IOException, InterruptedException {
        Process p;
        try {
            p = new ProcessBuilder(python, "-c", "import torch; print(torch.__version__)").redirectErrorStream(true)
                    .start();
        } catch (IOException e) {
            throw new IllegalStateException("the reference needs " + python + " with PyTorch; it cannot be started ("
                    + e.getMessage() + "). Install it: apt-get install python3-torch");
        }
        String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (p.waitFor() != 0) {
            throw new IllegalStateException(python + " has no PyTorch (" + text.lines().reduce((x, y) -> y).orElse("")
                    + "). Install it: apt-get install python3-torch");
        }
        return text;
    }

    /**
     * The BLAS the reference's torch uses. Debian's python3-torch calls whatever {@code libblas.so.3} is installed:
     * without libopenblas0 that is the unoptimised reference BLAS (measured here: 6 GFLOP/s against 150 for
     * OpenBLAS), which would make the comparison meaningless. {@code auto}: keep an optimised system BLAS, else
     * point the reference at the OpenBLAS build sft-native's libtorch uses (same library, same version, so the
     * comparison is between the trainers); {@code system}: as installed; a path: that libblas.so.3-compatible file.
     * Returns the directory to put first on LD_LIBRARY_PATH, or null.
     */
    static String referenceBlas(String choice, HarnessPlan.Work work) throws IOException {
        if (choice.equals("system")) {
            return null;
        }
        Path lib;
        if (choice.equals("auto")) {
            Path system = Path.of("/usr/lib/x86_64-linux-gnu/libblas.so.3");
            String real = Files.exists(system) ? system.toRealPath().toString() : "";
            if (real.contains("openblas") || real.contains("blis") || real.contains("mkl")) {
                System.out.println("reference BLAS: the system's " + real);
                return null;
            }
            TorchRuntime.boot();
            lib = mappedOpenBlas();
            if (lib == null) {
                System.out.println("reference BLAS: the system's " + real + " (no OpenBLAS found to use instead;"
                        + " install libopenblas0-pthread for a fair comparison)");
                return null;
            }
        } else {
            lib = Path.of(choice).toAbsolutePath();
        }
        Path dir = work.dir().resolve("blas");
        Files.createDirectories(dir);
        Path link = dir.resolve("libblas.so.3");
        Files.deleteIfExists(link);
        Files.createSymbolicLink(link, lib);
        System.out.println("reference BLAS: " + lib + " (as libblas.so.3 through LD_LIBRARY_PATH)");
        return dir.toString();
    }

    /** The OpenBLAS this process's libtorch has mapped, from /proc/self/maps. */
    static Path mappedOpenBlas() throws IOException {
        Path maps = Path.of("/proc/self/maps");
        if (!Files.exists(maps)) {
            return null;
        }
        for (String line : Files.readAllLines(maps)) {
            int at = line.indexOf('/');
            if (at >= 0 && line.contains("libopenblas") && !line.contains("nolapack")) {
                return Path.of(line.substring(at).trim());
            }
        }
        return null;
    }

    static List<String> oursCommand(HarnessPlan.Work work, HarnessPlan.Run r) {
        String java = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin",
                "java").toString());
        return List.of(java, "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
                "-Dai.djl.offline=true", "-Dsft.cache.dir=" + work.cache(), "-cp",
                System.getProperty("java.class.path"), OursRun.class.getName(), "--work", work.dir().toString(),
                "--mode", r.mode());
    }

    /** Runs one side of one mode with the shared environment; its output goes to WORK/logs/RUN.log. */
    static void launch(List<String> cmd, HarnessPlan.Run r, HarnessPlan.Work work, int threads, String blasDir)
            throws IOException, InterruptedException {
        Path log = work.log(r);
        Files.createDirectories(log.getParent());
        Files.deleteIfExists(work.result(r));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        Map<String, String> env = pb.environment();
        env.put("OMP_WAIT_POLICY", "PASSIVE");
        env.put("OMP_NUM_THREADS", String.valueOf(threads));
        env.put("OPENBLAS_NUM_THREADS", String.valueOf(threads));
        env.put("OPT_OUT_TRACKING", "true");
        env.put("SFT_NATIVE_NO_RELAUNCH", "1");
        if (!r.side().equals(HarnessPlan.Run.REFERENCE)) {
            MallocEnvironment.addTo(env); // what the jar's relaunch gives our side; the reference runs as users run it
        }
        if (blasDir != null && r.side().equals(HarnessPlan.Run.REFERENCE)) {
            String old = env.get("LD_LIBRARY_PATH");
            env.put("LD_LIBRARY_PATH", blasDir + (old == null || old.isEmpty() ? "" : ":" + old));
        }
        long t0 = System.nanoTime();
        Process p = pb.start();
        if (!p.waitFor(2, TimeUnit.HOURS)) {
            p.destroyForcibly();
            throw new IllegalStateException(r.id() + " did not finish in 2 hours; see " + log);
        }
        double sec = (System.nanoTime() - t0) / 1e9;
        if (p.exitValue() != 0 || !Files.isRegularFile(work.result(r))) {
            List<String> lines = Files.readAllLines(log);
            String tail = String.join("\n", lines.subList(Math.max(0, lines.size() - 15), lines.size()));
            throw new IllegalStateException(r.id() + " failed (exit " + p.exitValue() + "); last lines of " + log
                    + ":\n" + tail);
        }
        System.out.println(HarnessPlan.f("    done in %.0f s", sec));
    }

    static Map<String, String> options(String[] args) {
        Map<String, String> m = new LinkedHashMap<>();
        List<String> flags = List.of("quick", "report-only");
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument '" + args[i] + "'");
            }
            String k = args[i].substring(2);
            if (flags.contains(k)) {
                m.put(k, "true");
            } else if (i + 1 < args.length) {
                m.put(k, args[++i]);
            } else {
                throw new IllegalArgumentException("--" + k + " needs a value");
            }
        }
        return m;
    }

}
