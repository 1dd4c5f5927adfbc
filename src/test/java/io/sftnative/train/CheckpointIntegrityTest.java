package io.sftnative.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.checkpoint.CheckpointManifest;
import io.sftnative.testing.Cli;
import io.sftnative.testing.Cli.Run;
import io.sftnative.testing.Poison;
import io.sftnative.testing.TempDatasetCache;

/** Issue 13: damaged checkpoints are caught on resume, naming the file and the checkpoint to use instead. */
@ExtendWith(TempDatasetCache.class)
class CheckpointIntegrityTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/train/pt_full");

    @TempDir
    Path dir;

    String[] args(String... extra) {
        List<String> a = new ArrayList<>(List.of("train", "model_name_or_path=" + GOLDEN.resolve("model"),
                "dataset=" + GOLDEN.resolve("train.jsonl"), "stage=pt", "finetuning_type=full", "cutoff_len=32",
                "per_device_train_batch_size=2", "max_steps=4", "save_steps=2", "logging_steps=1",
                "preprocessing_num_workers=1", "output_dir=" + dir.resolve("out")));
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }

    Path trained() {
        Run r = Cli.run(args());
        assertEquals(0, r.code(), r.err());
        Path c4 = dir.resolve("out").resolve("checkpoint-4");
        assertTrue(Files.isRegularFile(c4.resolve(CheckpointManifest.FILE)));
        return c4;
    }

    static String error(Run r) {
        assertEquals(1, r.code(), r.out() + r.err());
        return r.err().lines().filter(l -> l.startsWith("error: ")).findFirst().orElse(r.err());
    }

    @Test
    void aTruncatedOptimizerFileNamesThePreviousCheckpoint() throws Exception {
        Path c4 = trained();
        Path opt = c4.resolve("optimizer.safetensors");
        long size = Files.size(opt);
        try (RandomAccessFile f = new RandomAccessFile(opt.toFile(), "rw")) {
            f.setLength(size / 2);
        }
        String e = error(Cli.run(args("max_steps=6", "resume_from_checkpoint=" + c4)));
        assertTrue(e.contains("checkpoint " + c4 + " is damaged: optimizer.safetensors has " + size / 2 + " bytes, "
                + size + " were written (truncated)"), e);
        assertTrue(e.contains("Resume from checkpoint-2 instead"), e);
    }

    @Test
    void aFlippedByteInTheWeightsIsCaughtByTheChecksum() throws Exception {
        Path c4 = trained();
        Path w = c4.resolve("model.safetensors");
        try (RandomAccessFile f = new RandomAccessFile(w.toFile(), "rw")) {
            f.seek(f.length() - 3);
            int b = f.read();
            f.seek(f.length() - 3);
            f.write(b ^ 0x10);
        }
        String e = error(Cli.run(args("max_steps=6"))); // the automatic resume from the latest
        assertTrue(e.contains("is damaged: model.safetensors has checksum"), e);
        assertTrue(e.contains("Resume from checkpoint-2 instead"), e);
    }

    @Test
    void nanOptimizerStateIsRefused() throws Exception {
        Path c4 = trained();
        Poison.nan(c4.resolve("optimizer.safetensors"), "model.norm.weight.exp_avg");
        CheckpointManifest.write(c4); // the bytes match the manifest: only the values are bad
        String e = error(Cli.run(args("max_steps=6")));
        assertTrue(e.contains("optimizer state 'model.norm.weight.exp_avg'") && e.contains("holds 1 NaN"), e);
        assertTrue(e.contains("Resume from checkpoint-2 instead"), e);
    }

    @Test
    void aCheckpointWithNonFiniteWeightsIsNeverWritten() {
        // the loss and gradients of step 2 are finite, but a weight overflowed: checkpoint-2 must not hold it, and
        // the message names checkpoint-1 (finite) as the one to resume from
        io.sftnative.loss.LossComputation plain = new io.sftnative.loss.PlainLossComputation(
                io.sftnative.torch.Autocast.OFF);
        io.sftnative.loss.LossComputation poisonAt2 = new io.sftnative.loss.LossComputation() {
            int calls;

            @Override
            public double forwardBackward(io.sftnative.model.DecoderModel model, io.sftnative.loss.MicroBatch b,
                    double normaliser) {
                double loss = plain.forwardBackward(model, b, normaliser);
                if (++calls == 2) {
                    try (var g = new org.bytedeco.pytorch.NoGradGuard()) {
                        model.parameter("model.norm.weight").fill_(new org.bytedeco.pytorch.Scalar(
                                Double.POSITIVE_INFINITY));
                    }
                }
                return loss;
            }

            @Override
            public double lossSum(io.sftnative.model.DecoderModel model, io.sftnative.loss.MicroBatch b) {
                return plain.lossSum(model, b);
            }

            @Override
            public String name() {
                return "inf-weight-at-2";
            }
        };
        List<String> a = new ArrayList<>(List.of(args("save_steps=1", "max_steps=3")));
        a.remove(0);
        Path out = dir.resolve("out");
        var e = org.junit.jupiter.api.Assertions.assertThrows(TrainingDivergedException.class,
                () -> io.sftnative.api.SftTrainer.builder().overrides(a).lossComputation(poisonAt2).build().run());
        assertTrue(e.getMessage().contains("training diverged by step 2: 'model.norm.weight' holds 0 NaN and"),
                e.getMessage());
        assertTrue(e.getMessage().contains("checkpoint-2 was not written. The last good checkpoint is "
                + out.resolve("checkpoint-1")), e.getMessage());
        assertTrue(Files.exists(out.resolve("checkpoint-1")));
        assertFalse(Files.exists(out.resolve("checkpoint-2")));
    }
}
