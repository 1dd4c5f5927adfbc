package io.sftnative.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;

import io.sftnative.files.AtomicFiles;
import io.sftnative.model.ModelConfig;

/**
 * Turns the harness's per-run JSON files into the comparison: tokens/s over the timed steps (real, non-padding
 * tokens), MFU against the best fp32 GEMM rate any process of the run measured, peak RSS, ours/reference ratios,
 * the loss-curve agreement and the targets; written as {@code e2e.json}, {@code e2e.md} and
 * {@code e2e.png} ({@link HarnessCharts}).
 *
 * <p>Model FLOPs (PaLM's convention, as DecoderStepBench): per real token {@code 6 N} for trained matrices and
 * {@code 4 N} for frozen ones (forward + input gradient, no weight gradient), N = weights of every matrix product
 * (q/k/v/o, gate/up/down, LM head, LoRA A and B; not the embedding lookup); attention {@code 12 L d_attn n} per token
 * of a row with n real tokens (the full n x n score matrix).
 */
final class HarnessReport {
    private HarnessReport() {}

    /** One process's numbers. Timed = every step after the plan's warm-up steps. */
    record RunStats(String id, String mode, String side, int steps, int timedSteps, double timedSeconds,
            long timedTokens, long timedTargets, long timedPaddedTokens, double tokensPerSecond,
            double targetsPerSecond, double mfu, long peakRssBytes, double firstLoss, double finalLoss,
            double setupSeconds, double processSeconds, String loadAverage, double othersCpuShare,
            int cleanSteps, double cleanTokensPerSecond, boolean batchesMatch, List<Double> losses,
            List<Double> stepSeconds, List<Double> stepOthersCpuShare, List<Double> stepCpuSeconds,
            String implementation, List<String> warnings) {}

    /** A step is clean when other processes used less than this share of the machine's CPUs meanwhile. */
    static final double CLEAN = 0.05;

    /** Clean steps a run (or a pair of runs) needs before its clean-step numbers decide a target. */
    static final int MIN_CLEAN = 5;

    /** Ours against the reference's run with the same fine-tuning and batches (plain cross-entropy). */
    record Comparison(String mode, String referenceMode, double speedup, double rssRatio, Double maxLossDiff,
            Double maxRelativeLossDiff, int lossSteps, int pairedCleanSteps, Double pairedCleanSpeedup,
            Double cpuSpeedup) {}

    /** A benchmark target: value = measured ratio, met = value >= threshold. */
    record Target(String name, String definition, Double value, double threshold, Boolean met, String basis) {}

    record Summary(Map<String, Object> machine, Map<String, Object> setup, double gemmPeakFlops, List<RunStats> runs,
            List<Comparison> comparisons, List<Target> targets) {}

    static Summary build(JsonNode plan, HarnessPlan.Work work, List<HarnessPlan.Run> runs) throws IOException {
        HarnessPlan.Settings s = HarnessPlan.JSON.treeToValue(plan.get("settings"), HarnessPlan.Settings.class);
        ModelConfig cfg = ModelConfig.fromMap(s.model());
        Map<String, JsonNode> results = new LinkedHashMap<>();
        double peak = 0;
        for (HarnessPlan.Run r : runs) {
            JsonNode j = HarnessPlan.JSON.readTree(work.result(r).toFile());
            results.put(r.id(), j);
            peak = Math.max(peak, Math.max(j.get("gemm_flops_before").asDouble(), j.get("gemm_flops_after").asDouble()));
        }
        List<RunStats> stats = new ArrayList<>();
        for (HarnessPlan.Run r : runs) {
            HarnessPlan.Mode mode = HarnessPlan.Mode.parse(r.mode());
            stats.add(stats(r, mode, results.get(r.id()), plan.get("layouts").get(mode.layout()).get("steps"), s, cfg,
                    peak));
        }
        List<Comparison> comparisons = new ArrayList<>();
        for (RunStats o : stats) {
            if (!o.side().equals(HarnessPlan.Run.OURS)) {
                continue;
            }
            String refMode = HarnessPlan.Mode.parse(o.mode()).referenceMode();
            RunStats ref = find(stats, refMode, HarnessPlan.Run.REFERENCE);
            if (ref != null) {
                comparisons.add(compare(o, ref, true)); // same batches (a fused mode: the same loss, computed fused)
            }
        }
        Path sessionFile = work.dir().resolve("session.json");
        JsonNode session = Files.isRegularFile(sessionFile) ? HarnessPlan.JSON.readTree(sessionFile.toFile()) : null;
        return new Summary(machine(plan, session), setup(plan, s, cfg), peak, stats, comparisons, targets(stats, comparisons));
    }

    static RunStats stats(HarnessPlan.Run r, HarnessPlan.Mode mode, JsonNode j, JsonNode planSteps,
            HarnessPlan.Settings s, ModelConfig cfg, double peak) {
        JsonNode steps = j.get("steps");
        int n = steps.size();
        int warm = Math.min(s.warmupSteps(), Math.max(0, n - 1));
        double sec = 0;
        long tokens = 0;
        long targets = 0;
        long padded = 0;
        double flops = 0;
        double others = 0;
        int clean = 0;
        double cleanSec = 0;
        long cleanTokens = 0;
        List<Double> stepSeconds = new ArrayList<>();
        List<Double> stepOthers = new ArrayList<>();
        List<Double> stepCpu = new ArrayList<>();
        boolean match = n == planSteps.size();
        List<Double> losses = new ArrayList<>();
        double perToken = flopsPerToken(cfg, mode, s);
        double attention = 12.0 * cfg.numHiddenLayers() * cfg.numAttentionHeads() * cfg.headDim();
        for (int i = 0; i < n; i++) {
            JsonNode st = steps.get(i);
            losses.add(st.get("loss").asDouble());
            stepSeconds.add(st.get("seconds").asDouble());
            stepOthers.add(st.path("others_cpu_share").asDouble());
            stepCpu.add(st.has("cpu_seconds") ? st.get("cpu_seconds").asDouble() : Double.NaN); // older results: none
            JsonNode p = i < planSteps.size() ? planSteps.get(i) : null;
            match &= p != null && p.get("targets").asLong() == st.get("targets").asLong()
                    && p.get("tokens").asLong() == st.get("tokens").asLong();
            if (i >= warm && p != null) {
                sec += st.get("seconds").asDouble();
                others += st.path("others_cpu_share").asDouble() * st.get("seconds").asDouble();
                if (st.path("others_cpu_share").asDouble() < CLEAN) {
                    clean++;
                    cleanSec += st.get("seconds").asDouble();
                    cleanTokens += st.get("tokens").asLong();
                }
                tokens += st.get("tokens").asLong();
                targets += st.get("targets").asLong();
                padded += p.get("padded_tokens").asLong();
                flops += perToken * st.get("tokens").asLong() + attention * p.get("attention_sq").asDouble();
            }
        }
        List<String> warnings = new ArrayList<>();
        for (JsonNode m : j.get("messages")) {
            if (m.asText().startsWith("warning")) {
                warnings.add(m.asText());
            }
        }
        if (!match) {
            warnings.add("the steps' token counts differ from the batch plan: the sides did not train the same batches");
        }
        return new RunStats(r.id(), r.mode(), r.side(), n, n - warm, sec, tokens, targets, padded, tokens / sec,
                targets / sec, flops / sec / peak, j.get("peak_rss_bytes").asLong(), losses.get(0),
                losses.get(n - 1), j.get("setup_seconds").asDouble(), j.get("process_seconds").asDouble(),
                j.get("load_average").asText(), others / sec, clean, clean == 0 ? 0 : cleanTokens / cleanSec, match,
                losses, stepSeconds, stepOthers, stepCpu, j.get("implementation").asText(), warnings);
    }

    /** Matrix-product FLOPs per real token: 6 per trained weight, 4 per frozen one (see the class comment). */
    static double flopsPerToken(ModelConfig cfg, HarnessPlan.Mode mode, HarnessPlan.Settings s) {
        double n = DecoderStepBench.matmulWeights(cfg);
        if (!mode.lora()) {
            return 6 * n;
        }
        long h = cfg.hiddenSize();
        long q = (long) cfg.numAttentionHeads() * cfg.headDim();
        long kv = (long) cfg.numKeyValueHeads() * cfg.headDim();
        long i = cfg.intermediateSize();
        long inPlusOut = (h + q) + 2 * (h + kv) + (q + h) + 2 * (h + i) + (i + h); // q, k, v, o, gate, up, down
        double lora = (double) s.loraRank() * inPlusOut * cfg.numHiddenLayers();
        return 4 * n + 6 * lora;
    }

    static Comparison compare(RunStats ours, RunStats ref, boolean sameLoss) {
        Double maxDiff = null;
        Double maxRel = null;
        int k = 0;
        if (sameLoss) {
            k = Math.min(50, Math.min(ours.losses().size(), ref.losses().size()));
            double d = 0;
            double rel = 0;
            for (int i = 0; i < k; i++) {
                double a = ours.losses().get(i);
                double b = ref.losses().get(i);
                d = Math.max(d, Math.abs(a - b));
                rel = Math.max(rel, Math.abs(a - b) / Math.abs(b));
            }
            maxDiff = d;
            maxRel = rel;
        }
        int paired = 0;
        double oursSec = 0;
        double refSec = 0;
        int warm = ours.steps() - ours.timedSteps();
        if (sameLoss) { // same batches, step by step: compare the steps during which neither side was disturbed
            for (int i = warm; i < Math.min(ours.steps(), ref.steps()); i++) {
                if (ours.stepOthersCpuShare().get(i) < CLEAN && ref.stepOthersCpuShare().get(i) < CLEAN) {
                    paired++;
                    oursSec += ours.stepSeconds().get(i);
                    refSec += ref.stepSeconds().get(i);
                }
            }
        }
        // process CPU time over the same timed steps: what each side spent, whoever else ran meanwhile
        double oursCpu = 0;
        double refCpu = 0;
        for (int i = warm; i < Math.min(ours.steps(), ref.steps()); i++) {
            oursCpu += ours.stepCpuSeconds().get(i);
            refCpu += ref.stepCpuSeconds().get(i);
        }
        Double cpu = sameLoss && Double.isFinite(oursCpu / refCpu) && oursCpu > 0 ? refCpu / oursCpu : null;
        return new Comparison(ours.mode(), ref.mode(), ours.tokensPerSecond() / ref.tokensPerSecond(),
                (double) ours.peakRssBytes() / ref.peakRssBytes(), maxDiff, maxRel, k, paired,
                paired == 0 ? null : refSec / oursSec, cpu);
    }

    /**
     * Issue 18's targets: every mode ≥ 1.3x the reference's tokens/s on the same batches (its
     * {@link HarnessPlan.Mode#referenceMode}: LoRA against the reference's LoRA), and packing + fused CE ≥ 2x the
     * reference's padded run of the same fine-tuning.
     */
    static List<Target> targets(List<RunStats> stats, List<Comparison> comparisons) {
        List<Target> t = new ArrayList<>();
        for (Comparison c : comparisons) {
            String def = "ours " + c.mode() + " / reference " + c.referenceMode() + " (tokens/s, same batches)";
            if (c.pairedCleanSteps() >= MIN_CLEAN) {
                double v = c.pairedCleanSpeedup();
                t.add(new Target(c.mode(), def, v, 1.3, v >= 1.3, HarnessPlan.f("the %d steps during which neither"
                        + " side was disturbed by other processes, step by step", c.pairedCleanSteps())));
            } else {
                t.add(target(c.mode(), def, find(stats, c.mode(), HarnessPlan.Run.OURS),
                        find(stats, c.referenceMode(), HarnessPlan.Run.REFERENCE), 1.3));
            }
        }
        for (String ft : List.of("full", "lora")) {
            RunStats ours = find(stats, ft + "-packed-fused", HarnessPlan.Run.OURS);
            RunStats ref = find(stats, ft + "-padded-plain", HarnessPlan.Run.REFERENCE);
            if (ours != null || ft.equals("full")) {
                t.add(target("packing + fused CE (" + ft + ")", "ours " + ft + "-packed-fused / reference " + ft
                        + "-padded-plain (real tokens/s)", ours, ref, 2.0));
            }
        }
        return t;
    }

    /** a / b in tokens/s: over the clean steps when both runs have enough of them, else over all timed steps. */
    private static Target target(String name, String def, RunStats a, RunStats b, double threshold) {
        if (a == null || b == null) {
            return new Target(name, def, null, threshold, null, null);
        }
        boolean clean = a.cleanSteps() >= MIN_CLEAN && b.cleanSteps() >= MIN_CLEAN;
        double v = clean ? a.cleanTokensPerSecond() / b.cleanTokensPerSecond()
                : a.tokensPerSecond() / b.tokensPerSecond();
        return new Target(name, def, v, threshold, v >= threshold, clean ? HarnessPlan.f("steps without other load"
                + " (%d and %d)", a.cleanSteps(), b.cleanSteps()) : "all timed steps (too few undisturbed steps:"
                + " contended)");
    }

    static RunStats find(List<RunStats> stats, String mode, String side) {
        for (RunStats r : stats) {
            if (r.mode().equals(mode) && r.side().equals(side)) {
                return r;
            }
        }
        return null;
    }

    /** The machine, and when / at which commit the runs started (session.json of the run, else now). */
    static Map<String, Object> machine(JsonNode plan, JsonNode session) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("cpu", DecoderStepBench.cpuName());
        m.put("cores", Runtime.getRuntime().availableProcessors());
        m.put("memory_gib", memoryGib());
        m.put("date", session != null ? session.get("started").asText() : Instant.now().toString());
        m.put("commit", session != null ? session.get("commit").asText() : commit());
        m.put("load_average_start", session != null ? session.get("load_average_start").asText() : "?");
        m.put("reference_blas", session != null ? session.get("reference_blas").asText() : "?");
        m.put("java", System.getProperty("java.version"));
        m.put("reference_torch", plan.get("reference_torch").asText());
        return m;
    }

    static Map<String, Object> setup(JsonNode plan, HarnessPlan.Settings s, ModelConfig cfg) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", HarnessPlan.f("qwen2, %,d parameters: hidden %d, %d layers, %d attention heads / %d KV heads,"
                + " intermediate %d, vocab %d, untied LM head, fp32", plan.get("model_parameters").asLong(),
                cfg.hiddenSize(), cfg.numHiddenLayers(), cfg.numAttentionHeads(), cfg.numKeyValueHeads(),
                cfg.intermediateSize(), cfg.vocabSize()));
        m.put("data", plan.get("source").asText() + "; " + plan.get("vocab_mapping").asText());
        m.put("settings", s);
        m.put("created", plan.get("created").asText());
        return m;
    }

    static double memoryGib() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (l.startsWith("MemTotal:")) {
                    return Long.parseLong(l.replaceAll("[^0-9]", "")) / 1024.0 / 1024.0;
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux
        }
        return -1;
    }

    static String commit() {
        try {
            Process p = new ProcessBuilder("git", "describe", "--always", "--dirty").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            return p.waitFor() == 0 ? out : "unknown";
        } catch (IOException | InterruptedException e) {
            return "unknown";
        }
    }

    static void write(Summary s, Path out) throws IOException {
        Files.createDirectories(out);
        HarnessPlan.write(out.resolve("e2e.json"), s);
        AtomicFiles.writeString(out.resolve("e2e.md"), markdown(s));
        HarnessCharts.write(s, out.resolve("e2e.png"));
    }

    /** The table and the targets as Markdown (what RESULTS.md holds). */
    static String markdown(Summary s) {
        StringBuilder b = new StringBuilder();
        Map<String, Object> m = s.machine();
        HarnessPlan.Settings st = (HarnessPlan.Settings) s.setup().get("settings");
        b.append(HarnessPlan.f("Machine: %s, %d cores, %.0f GiB; runs started %s (load average %s); commit %s; JDK %s;"
                + " reference torch %s with BLAS %s.%n", m.get("cpu"), m.get("cores"), (Double) m.get("memory_gib"),
                m.get("date"), m.get("load_average_start"), m.get("commit"), m.get("java"), m.get("reference_torch"),
                m.get("reference_blas")));
        b.append(HarnessPlan.f("Model: %s. Data: %s; the first %d examples, one epoch, batch %d x accumulation %d, "
                + "cutoff %d; AdamW lr %s %s (warmup ratio %s), weight decay %s, clip %s (ours: optim %s; reference:"
                + " torch.optim.AdamW); LoRA r %d alpha %s on every linear layer. Threads %d. Timed: every step after"
                + " the first %d.%n", s.setup().get("model"),
                s.setup().get("data"), st.examples(), st.batchSize(), st.accumulation(), st.cutoffLen(),
                st.learningRate(), st.scheduler(), st.warmupRatio(), st.weightDecay(), st.maxGradNorm(),
                st.optim() == null ? "adamw_torch" : st.optim(), st.loraRank(),
                st.loraAlpha(), st.threads(), st.warmupSteps()));
        b.append(HarnessPlan.f("GEMM peak (best fp32 2048^3 torch.mm of any process in this run): %.1f GFLOP/s.%n%n",
                s.gemmPeakFlops() / 1e9));
        b.append("| mode | side | steps (timed) | real tokens/s | target tokens/s | padding | MFU | peak RSS | ours/ref"
                + " tokens/s | ours/ref RSS | loss first → last | others' CPU (load) | clean steps: tokens/s |\n");
        b.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n");
        for (RunStats r : s.runs()) {
            Comparison c = r.side().equals(HarnessPlan.Run.OURS) ? comparison(s, r.mode()) : null;
            b.append(HarnessPlan.f("| %s | %s | %d (%d) | %.0f | %.0f | %.0f%% | %.1f%% | %.2f GB | %s | %s | %.3f → %.3f |"
                    + " %.0f%% (%s) | %d: %s |%n", r.mode(), r.side().equals(HarnessPlan.Run.OURS) ? "sft-native" : "PyTorch eager",
                    r.steps(), r.timedSteps(), r.tokensPerSecond(), r.targetsPerSecond(),
                    100.0 * (r.timedPaddedTokens() - r.timedTokens()) / r.timedPaddedTokens(), 100 * r.mfu(),
                    r.peakRssBytes() / 1e9, c == null ? "" : HarnessPlan.f("**%.2fx**%s", c.speedup(),
                            c.mode().equals(c.referenceMode()) ? "" : " (vs " + c.referenceMode() + ")"),
                    c == null ? "" : HarnessPlan.f("%.2fx", c.rssRatio()), r.firstLoss(), r.finalLoss(),
                    100 * r.othersCpuShare(), r.loadAverage(), r.cleanSteps(),
                    r.cleanSteps() == 0 ? "–" : HarnessPlan.f("%.0f", r.cleanTokensPerSecond())));
        }
        b.append("\nothers' CPU: the share of the machine's CPUs other processes used during the run's timed steps"
                + " (/proc/stat minus the run's own CPU time); load: the 1-minute load average at the run's end. Above"
                + " ~10% the run was contended and its absolute numbers are low; ratios between runs with different"
                + " contention are unreliable. clean steps: the timed steps during which others used < 5%, and the"
                + " tokens/s over those alone.\n");
        b.append("\nTargets:\n\n");
        for (Target t : s.targets()) {
            b.append(t.value() == null ? HarnessPlan.f("- %s (%s): not measured in this run%n", t.name(), t.definition())
                    : HarnessPlan.f("- %s: %.2fx (target ≥ %.1fx) — **%s** (%s; measured over %s)%n", t.name(),
                            t.value(), t.threshold(), t.met() ? "met" : "missed", t.definition(), t.basis()));
        }
        b.append("\nLoss curves, same checkpoint, batches and hyper-parameters (max over the first steps):\n\n");
        for (Comparison c : s.comparisons()) {
            if (c.maxLossDiff() != null) {
                b.append(HarnessPlan.f("- %s: max |loss ours − loss reference| = %.2e over %d steps (relative %.2e);"
                        + " tokens/s ours/ref over the %d steps undisturbed on both sides: %s; process CPU time"
                        + " ref/ours over the timed steps: %s%n", c.mode() + (c.mode().equals(c.referenceMode()) ? ""
                        : " (vs " + c.referenceMode() + ")"),
                        c.maxLossDiff(), c.lossSteps(), c.maxRelativeLossDiff(), c.pairedCleanSteps(),
                        c.pairedCleanSpeedup() == null ? "–" : HarnessPlan.f("%.2fx", c.pairedCleanSpeedup()),
                        c.cpuSpeedup() == null ? "–" : HarnessPlan.f("%.2fx", c.cpuSpeedup())));
            }
        }
        List<String> notes = new ArrayList<>();
        for (RunStats r : s.runs()) {
            for (String w : r.warnings()) {
                notes.add(r.id() + ": " + w);
            }
        }
        if (!notes.isEmpty()) {
            b.append("\nWarnings:\n\n");
            notes.forEach(n -> b.append("- ").append(n).append('\n'));
        }
        return b.toString();
    }

    private static Comparison comparison(Summary s, String mode) {
        for (Comparison c : s.comparisons()) {
            if (c.mode().equals(mode)) {
                return c;
            }
        }
        return null;
    }

    /** Replaces the harness section of {@code file} (between the markers) with this run's table, or appends it. */
    static void record(Summary s, Path file) throws IOException {
        String begin = "<!-- e2e-harness:begin -->";
        String end = "<!-- e2e-harness:end -->";
        String text = Files.exists(file) ? Files.readString(file) : "";
        String block = begin + "\n" + markdown(s) + end;
        int i = text.indexOf(begin);
        int j = text.indexOf(end);
        String updated = i >= 0 && j > i ? text.substring(0, i) + block + text.substring(j + end.length())
                : text + (text.endsWith("\n") ? "\n" : "\n\n") + block + "\n";
        AtomicFiles.writeString(file, updated);
    }
}
