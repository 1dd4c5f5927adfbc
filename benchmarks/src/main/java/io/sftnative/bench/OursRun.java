package io.sftnative.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;

import io.sftnative.api.SftTrainer;
import io.sftnative.api.StepEvent;
import io.sftnative.api.TrainResult;
import io.sftnative.api.TrainingListener;
import io.sftnative.files.AtomicFiles;
import io.sftnative.torch.TorchRuntime;

/**
 * One mode of sft-native's side of the harness, in its own JVM: the real trainer ({@link SftTrainer}, the same run
 * as {@code sft-native train}) on the plan's data and checkpoint, timed by a listener (wall clock between
 * consecutive step events), peak RSS from {@code /proc/self/status} (VmHWM) right after the last step, and the
 * fp32 GEMM rate of this process before and after training. Writes {@code WORK/results/ours-MODE.json}.
 *
 * <pre>
 * OMP_WAIT_POLICY=PASSIVE java --enable-native-access=ALL-UNNAMED -cp sft-native.jar io.sftnative.bench.OursRun \
 *     --work WORK --mode full-padded-plain
 * </pre>
 */
public final class OursRun {
    private OursRun() {}

    public static void main(String[] args) throws IOException {
        Map<String, String> a = DecoderStepBench.parse(args);
        HarnessPlan.Work work = new HarnessPlan.Work(Path.of(a.getOrDefault("work", "target/bench-e2e")));
        String modeName = a.get("mode");
        if (modeName == null) {
            throw new IllegalArgumentException("--mode is required (e.g. full-padded-plain)");
        }
        HarnessPlan.Mode mode = HarnessPlan.Mode.parse(modeName);
        JsonNode plan = HarnessPlan.JSON.readTree(work.plan().toFile());
        HarnessPlan.Settings s = HarnessPlan.JSON.treeToValue(plan.get("settings"), HarnessPlan.Settings.class);
        HarnessPlan.Run run = new HarnessPlan.Run(modeName, HarnessPlan.Run.OURS);
        Path out = work.output(run);

        TorchRuntime.Info rt = TorchRuntime.boot(s.threads());
        double gemmBefore = GemmRate.best(3);
        Recorder rec = new Recorder();
        SftTrainer.Builder builder = SftTrainer.builder().listener(rec);
        HarnessPlan.oursKeys(s, mode, work, out).forEach(builder::set);
        SftTrainer trainer = builder.build();
        long t0 = System.nanoTime();
        TrainResult result = trainer.run();
        double trainSeconds = (System.nanoTime() - t0) / 1e9;
        double gemmAfter = GemmRate.best(3);

        Map<String, Object> r = new LinkedHashMap<>();
        r.put("side", run.side());
        r.put("mode", modeName);
        r.put("implementation", "sft-native (SftTrainer, libtorch " + "2.10 via Bytedeco), threads " + rt.threads()
                + ", OMP_WAIT_POLICY=" + rt.ompWaitPolicy());
        r.put("threads", rt.threads());
        r.put("status", result.status().toString());
        r.put("steps", rec.steps);
        r.put("setup_seconds", rec.setupSeconds);
        r.put("train_call_seconds", trainSeconds);
        r.put("process_seconds", Duration.between(ProcessHandle.current().info().startInstant().orElse(Instant.now()),
                Instant.now()).toMillis() / 1000.0);
        r.put("peak_rss_bytes", rec.peakAtLastStep);
        r.put("peak_rss_process_bytes", ProcStatus.kb("VmHWM") * 1024);
        r.put("gemm_flops_before", gemmBefore);
        r.put("gemm_flops_after", gemmAfter);
        r.put("messages", rec.messages);
        r.put("load_average", DecoderStepBench.loadAverage());
        Path file = work.result(run);
        Files.createDirectories(file.getParent());
        HarnessPlan.write(file, r);
        AtomicFiles.deleteRecursively(out); // 0.7 GB of weights and optimizer state per full run: not needed
        System.out.println("wrote " + file);
    }

    /** Collects per-step scalars; called on the training thread between steps. */
    static final class Recorder implements TrainingListener {
        final List<Map<String, Object>> steps = new ArrayList<>();
        final List<String> messages = new ArrayList<>();
        long last;
        double busyLast;
        double ownLast;
        long seen;
        double setupSeconds;
        long peakAtLastStep;
        private long totalSteps;

        @Override
        public void onStart(long startStep, long totalSteps) {
            this.totalSteps = totalSteps;
            setupSeconds = Duration.between(ProcessHandle.current().info().startInstant().orElse(Instant.now()),
                    Instant.now()).toMillis() / 1000.0;
            last = System.nanoTime();
            busyLast = DecoderStepBench.machineBusySeconds();
            ownLast = ownCpu();
        }

        private static double ownCpu() {
            double[] c = DecoderStepBench.cpuSeconds();
            return c[0] + c[1];
        }

        @Override
        public void onStep(StepEvent e) {
            long now = System.nanoTime();
            double busy = DecoderStepBench.machineBusySeconds();
            double own = ownCpu();
            // the share of the machine's CPUs that other processes used during this step
            double others = (busy - busyLast - (own - ownLast)) / ((now - last) / 1e9
                    * Runtime.getRuntime().availableProcessors());
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("step", e.step());
            m.put("seconds", (now - last) / 1e9);
            m.put("loss", e.loss());
            m.put("lr", e.learningRate());
            m.put("grad_norm", e.gradNorm());
            m.put("targets", e.targetTokens());
            m.put("tokens", e.tokensSeen() - seen);
            m.put("rss_bytes", ProcStatus.kb("VmRSS") * 1024);
            m.put("others_cpu_share", Math.max(0, others));
            m.put("cpu_seconds", own - ownLast); // this process's CPU time in the step: robust on a loaded machine
            steps.add(m);
            seen = e.tokensSeen();
            if (e.step() == totalSteps) {
                peakAtLastStep = ProcStatus.kb("VmHWM") * 1024;
            }
            System.out.println(HarnessPlan.f("step %d/%d  %.2f s  loss %.4f", e.step(), totalSteps,
                    (now - last) / 1e9, e.loss()));
            last = System.nanoTime(); // the print is ours, not the trainer's
            busyLast = DecoderStepBench.machineBusySeconds();
            ownLast = ownCpu();
        }

        @Override
        public void onMessage(String message) {
            messages.add(message);
        }
    }
}
