package io.sftnative.train.log;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainerStateTest {
    @TempDir
    Path dir;

    static TrainerState sample() {
        return new TrainerState(0.5, 4, 8, 2, 500, 4, 2, 1, 0, 1234.0,
                List.of(LogHistory.train(2, 0.25, 2.34567, 1.5, 5e-05, null),
                        LogHistory.eval("eval", 4, 0.5, Map.of("loss", 2.0), 1.2345678, 10, 2)),
                null, null, null, false);
    }

    @Test
    void writesExactlyWhatHfWrites() throws Exception {
        String expected;
        try (InputStream in = getClass().getResourceAsStream("/golden/log/trainer_state.json")) {
            expected = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        assertEquals(expected, sample().toJson());
    }

    @Test
    void roundTrips() throws Exception {
        sample().write(dir);
        TrainerState back = TrainerState.read(dir.resolve(TrainerState.FILE_NAME));
        assertEquals(sample().toJson(), back.toJson());
        assertEquals(4, back.globalStep());
        assertEquals(2.3457, back.logHistory().get(0).get("loss"));
    }

    @Test
    void damagedFileGivesAClearError() throws Exception {
        Path f = dir.resolve(TrainerState.FILE_NAME);
        Files.writeString(f, "{\"global_st");
        IOException e = assertThrows(IOException.class, () -> TrainerState.read(f));
        assertTrue(e.getMessage().contains("damaged"), e.getMessage());
        Files.writeString(f, "{}");
        e = assertThrows(IOException.class, () -> TrainerState.read(f));
        assertTrue(e.getMessage().contains("global_step"), e.getMessage());
    }

    @Test
    void resultsFilesMergeLikeHf() throws Exception {
        ResultsWriter.save(dir, "train", Map.of("train_loss", 1.5, "epoch", 3.0));
        ResultsWriter.save(dir, "predict", Map.of("predict_bleu-4", 12.34567, "epoch", 3.0));
        assertEquals("{\n    \"epoch\": 3.0,\n    \"train_loss\": 1.5\n}", Files.readString(dir.resolve(
                "train_results.json")));
        assertEquals("{\n    \"epoch\": 3.0,\n    \"predict_bleu-4\": 12.34567,\n    \"train_loss\": 1.5\n}",
                Files.readString(dir.resolve("all_results.json")));
        String table = ResultsWriter.table("train", Map.of("train_loss", 1.23456789, "train_runtime", 65.4321,
                "total_flos", 3.0 * (1L << 30)));
        assertEquals("""
                ***** train metrics *****
                  total_flos    =        3GF
                  train_loss    =     1.2346
                  train_runtime = 0:01:05.43
                """, table);
    }
}
