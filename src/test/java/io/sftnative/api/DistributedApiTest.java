package io.sftnative.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.distributed.DataParallelTestAccess;
import io.sftnative.testing.TempDatasetCache;

/**
 * The library API joins and starts data-parallel jobs: this JVM trains as rank 0 of a 2-rank job (explicit rank,
 * world size and rendezvous, the other rank a child JVM with torchrun's environment), and
 * {@link SftTrainer#runLocalRanks} starts both ranks as child JVMs. Both equal one process with the same global
 * batch within the reduction-order tolerances derived in {@code DataParallelEquivalenceTest}.
 */
@ExtendWith(TempDatasetCache.class)
class DistributedApiTest {
    @TempDir
    Path dir;

    @Test
    void aJobJoinedAndAJobStartedThroughTheApiTrainLikeOneProcess() throws Exception {
        Map<String, Object> cfg = DataParallelTestAccess.loraConfig();
        List<Double> single = new ArrayList<>();
        SftTrainer.Builder one = SftTrainer.builder();
        cfg.forEach(one::set);
        one.set("gradient_accumulation_steps", 2).set("output_dir", dir.resolve("single").toString());
        one.listener(new TrainingListener() {
            @Override
            public void onStep(StepEvent e) {
                single.add(e.loss());
            }
        });
        one.build().run();

        // this JVM is rank 0; rank 1 is a child with torchrun's environment
        int port = DataParallelTestAccess.freePort();
        Path joined = dir.resolve("joined");
        List<String> args = new ArrayList<>();
        cfg.forEach((k, v) -> args.add(k + "=" + v));
        args.add("gradient_accumulation_steps=1");
        args.add("output_dir=" + joined);
        Process rank1 = DataParallelTestAccess.rank(1, 2, port, args, dir.resolve("rank1.log"));
        List<Double> rank0 = new ArrayList<>();
        try {
            SftTrainer.Builder b = SftTrainer.builder().joinJob(0, 2, "127.0.0.1", port);
            cfg.forEach(b::set);
            b.set("gradient_accumulation_steps", 1).set("output_dir", joined.toString());
            b.listener(new TrainingListener() {
                @Override
                public void onStep(StepEvent e) {
                    rank0.add(e.loss());
                }
            });
            TrainResult r = b.build().run();
            assertEquals(TrainResult.Status.COMPLETED, r.status());
            assertTrue(rank1.waitFor(120, TimeUnit.SECONDS), "rank 1 did not finish");
            assertEquals(0, rank1.exitValue(), java.nio.file.Files.readString(dir.resolve("rank1.log")));
        } finally {
            rank1.destroyForcibly();
        }
        compare("joined (this JVM rank 0)", single, rank0, dir.resolve("single"), joined);

        // both ranks started by the API as child JVMs
        Path launched = dir.resolve("launched");
        SftTrainer.Builder l = SftTrainer.builder();
        cfg.forEach(l::set);
        l.set("gradient_accumulation_steps", 1).set("output_dir", launched.toString());
        l.build().runLocalRanks(2);
        List<Double> fromLog = new ArrayList<>();
        for (double[] s : DataParallelTestAccess.stepsOf(launched)) {
            fromLog.add(s[0]);
        }
        compare("started by runLocalRanks(2)", single, fromLog, dir.resolve("single"), launched);
    }

    private static void compare(String what, List<Double> ref, List<Double> got, Path a, Path b) throws Exception {
        assertEquals(ref.size(), got.size(), what + ": steps");
        double d = 0;
        for (int i = 0; i < ref.size(); i++) {
            d = Math.max(d, Math.abs(ref.get(i) - got.get(i)));
        }
        double[] w = DataParallelTestAccess.maxDiff(a.resolve("adapter_model.safetensors"),
                b.resolve("adapter_model.safetensors"));
        System.out.printf("API, %s vs one process: %d steps, max |loss diff| %.3g, max |adapter diff| %.3g%n", what,
                ref.size(), d, w[0]);
        assertTrue(d < 1e-5, what + ": losses " + ref + " vs " + got);
        assertTrue(w[0] < 1e-5 * Math.max(1, w[1]), what + ": adapter diff " + w[0]);
    }
}
