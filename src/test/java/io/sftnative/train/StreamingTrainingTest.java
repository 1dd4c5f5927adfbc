package io.sftnative.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.api.SftTrainer;
import io.sftnative.api.TrainResult;
import io.sftnative.testing.TempDatasetCache;

/** streaming: true end to end on the golden tiny model: reproducible by seed, and a resume continues the stream. */
@ExtendWith(TempDatasetCache.class)
class StreamingTrainingTest {
    @TempDir
    Path dir;

    /** 8 steps of 6 rows (48) over a 21-row file: the stream wraps into its second and third passes mid-run. */
    static SftTrainer.Builder streamed(Path out) {
        return ResumeTest.loraRun(out).set("streaming", true).set("buffer_size", 5).set("max_steps", 8)
                .set("save_steps", 4);
    }

    @Test
    void seededStreamingRunsRepeatAndResumeExactly() throws Exception {
        List<TrainResult> r = new ArrayList<>();
        List<Double> a = ResumeTest.collect(streamed(dir.resolve("a")), -1, r);
        assertEquals(8, a.size());
        assertEquals(TrainResult.Status.COMPLETED, r.get(0).status(), String.valueOf(r.get(0)));
        List<Double> b = ResumeTest.collect(streamed(dir.resolve("b")), -1, r);
        assertEquals(a, b, "same seed, same stream, same losses");

        Path out = dir.resolve("c");
        List<Double> first = ResumeTest.collect(streamed(out), 4, r);
        assertEquals(TrainResult.Status.CANCELLED, r.get(2).status());
        List<Double> rest = ResumeTest.collect(streamed(out), -1, r); // resumes checkpoint-4, skips 24 rows
        assertEquals(TrainResult.Status.COMPLETED, r.get(3).status(), String.valueOf(r.get(3)));
        List<Double> resumed = new ArrayList<>(first);
        resumed.addAll(rest);
        assertEquals(a, resumed, "per-step losses of the resumed stream are bit-for-bit equal");
    }
}
