package io.sftnative.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.api.SftTrainer;
import io.sftnative.api.TrainResult;
import io.sftnative.checkpoint.TrainingCheckpoint;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.testing.TempDatasetCache;

/**
 * optim adamw_8bit in real runs: full pretraining of the 0.3M-parameter scratch model against adamw_torch (loss
 * curve and optimizer bytes per parameter), exact resume from a checkpoint, and freeze / LoRA fine-tuning.
 */
@ExtendWith(TempDatasetCache.class)
class AdamW8bitTrainTest {
    @TempDir
    Path dir;

    static List<String> pt(Path model, Path out, String optim, int steps) {
        List<String> args = new ArrayList<>();
        for (String a : ResumeTest.ptArgs(model, out)) {
            args.add(a.startsWith("max_steps=") ? "max_steps=" + steps : a.startsWith("save_steps=") ? "save_steps="
                    + steps : a);
        }
        args.add("optim=" + optim);
        return args;
    }

    /** Bytes of optimizer.safetensors' tensors (step scalars aside) per parameter that has state. */
    static double stateBytesPerParam(Path checkpoint) throws Exception {
        long params = 0;
        long bytes = 0;
        try (SafetensorsFile f = SafetensorsFile.open(checkpoint.resolve(TrainingCheckpoint.OPTIMIZER_FILE))) {
            for (var e : f.entries().values()) {
                if (e.name().endsWith(".step")) {
                    continue;
                }
                bytes += e.byteLength();
                if (e.name().endsWith(".exp_avg") || e.name().endsWith(".state1")) {
                    params += e.numel();
                }
            }
        }
        return (double) bytes / params;
    }

    @Test
    void fullPretrainingFollowsAdamwTorchWithAQuarterOfTheState() throws Exception {
        Path model = ResumeTest.scratchModel(dir);
        Path torchOut = dir.resolve("adamw_torch");
        Path bnbOut = dir.resolve("adamw_8bit");
        SftTrainer.builder().overrides(pt(model, torchOut, "adamw_torch", 20)).build().run();
        SftTrainer.builder().overrides(pt(model, bnbOut, "adamw_8bit", 20)).build().run();
        List<Double> a = ResumeTest.lossesOf(torchOut);
        List<Double> b = ResumeTest.lossesOf(bnbOut);
        assertEquals(20, b.size());
        StringBuilder table = new StringBuilder("step adamw_torch adamw_8bit\n");
        for (int k = 0; k < 20; k++) {
            table.append(String.format(Locale.ROOT, "%d %.4f %.4f%n", k + 1, a.get(k), b.get(k)));
        }
        double torchBytes = stateBytesPerParam(torchOut.resolve("checkpoint-20"));
        double bnbBytes = stateBytesPerParam(bnbOut.resolve("checkpoint-20"));
        System.out.print(table);
        System.out.printf(Locale.ROOT, "optimizer state bytes/parameter: adamw_torch %.4f adamw_8bit %.4f%n", torchBytes,
                bnbBytes);
        assertEquals(a.get(0), b.get(0), "the first loss comes before any update");
        assertTrue(b.get(19) < b.get(0) - 0.5, "adamw_8bit learns: " + table);
        // Not a rounding comparison: two optimizers whose moments differ by the 8-bit quantization error (up to half a
        // code step, a few percent of a moment). Measured here: at most 1.5e-4 relative over the 20 losses; 1% bounds
        // that with room for other CPUs. The update rule itself is pinned bit for bit by AdamW8bitGoldenTest; this
        // checks that the whole loop (state per parameter, groups, schedule) trains like AdamW.
        for (int k = 0; k < 20; k++) {
            assertEquals(a.get(k), b.get(k), 0.01 * a.get(k), "loss of step " + (k + 1) + "\n" + table);
        }
        assertEquals(8.0, torchBytes, 0.0);
        assertTrue(bnbBytes < 2.2, "8-bit state: 2 code bytes + 8/256 absmax bytes for tensors >= 4096, fp32"
                + " state for the small ones; got " + bnbBytes);
    }

    @Test
    void cancelledAndResumedGivesIdenticalLosses() throws Exception {
        Path model = ResumeTest.scratchModel(dir);
        List<TrainResult> r = new ArrayList<>();
        List<Double> straight = ResumeTest.collect(SftTrainer.builder().overrides(pt(model, dir.resolve("a"),
                "adamw_8bit", 6)), -1, r);
        Path out = dir.resolve("b");
        List<String> args = new ArrayList<>(pt(model, out, "adamw_8bit", 6));
        args.add("save_steps=3");
        List<Double> first = ResumeTest.collect(SftTrainer.builder().overrides(args), 3, r);
        assertEquals(TrainResult.Status.CANCELLED, r.get(1).status());
        List<Double> rest = ResumeTest.collect(SftTrainer.builder().overrides(args), -1, r);
        assertEquals(TrainResult.Status.COMPLETED, r.get(2).status());
        List<Double> resumed = new ArrayList<>(first);
        resumed.addAll(rest);
        assertEquals(straight, resumed, "per-step losses must be bit-for-bit equal after resuming 8-bit state");
    }

    @Test
    void freezeAndLoraTrainWithEightBitState() throws Exception {
        Path model = ResumeTest.scratchModel(dir);
        List<String> freeze = new ArrayList<>(pt(model, dir.resolve("freeze"), "paged_adamw_8bit", 3));
        freeze.add("finetuning_type=freeze");
        freeze.add("freeze_trainable_layers=1");
        TrainResult f = SftTrainer.builder().overrides(freeze).build().run();
        assertEquals(TrainResult.Status.COMPLETED, f.status());
        try (SafetensorsFile opt = SafetensorsFile.open(dir.resolve("freeze/checkpoint-3")
                .resolve(TrainingCheckpoint.OPTIMIZER_FILE))) {
            assertTrue(opt.names().stream().anyMatch(n -> n.endsWith(".state1") && "U8".equals(opt.entry(n).dtype()
                    .toString())), "the trainable layer's matrices have 8-bit state: " + opt.names());
            assertTrue(opt.names().stream().noneMatch(n -> n.startsWith("model.layers.0.")), "frozen layer 0 has none");
        }
        TrainResult l = ResumeTest.loraRun(dir.resolve("lora")).set("optim", "adamw_bnb_8bit").set("max_steps", 3)
                .build().run();
        assertEquals(TrainResult.Status.COMPLETED, l.status());
        assertTrue(Double.isFinite(l.trainLoss()), "LoRA loss " + l.trainLoss());
    }
}
