package io.sftnative.train.log;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainerLogTest {
    @TempDir
    Path dir;

    @Test
    void linesAreLlamaFactoryJson() throws Exception {
        AtomicLong now = new AtomicLong(0);
        TrainerLog log = TrainerLog.open(dir, 30, 0, 0, now::get);
        now.set(125_700_000_000L); // 125.7 s
        log.log(TrainerLog.Event.train(10, 1.2345, 4.5e-05, 0.33, 5120));
        // Python: json.dumps of LLaMA-Factory's LogCallback dict for the same values
        assertEquals(List.of("{\"current_steps\": 10, \"total_steps\": 30, \"loss\": 1.2345, \"lr\": 4.5e-05, \"epoch\":"
                + " 0.33, \"percentage\": 33.33, \"elapsed_time\": \"0:02:05\", \"remaining_time\": \"0:04:11\","
                + " \"throughput\": 40.73, \"total_tokens\": 5120}"), Files.readAllLines(dir.resolve("trainer_log.jsonl")));
        log.log(TrainerLog.Event.eval(20, 0.75, 0.66, 0));
        String second = Files.readAllLines(dir.resolve("trainer_log.jsonl")).get(1);
        assertTrue(second.startsWith("{\"current_steps\": 20, \"total_steps\": 30, \"eval_loss\": 0.75, \"epoch\":"
                + " 0.66, \"percentage\": 66.67,"), second);
        assertTrue(!second.contains("throughput"), "no tokens: no throughput");
    }

    @Test
    void resumeDropsLinesAfterTheCheckpointAndTornLines() throws Exception {
        Path file = dir.resolve("trainer_log.jsonl");
        Files.writeString(file, """
                {"current_steps": 5, "total_steps": 20, "loss": 2.0}
                {"current_steps": 10, "total_steps": 20, "loss": 1.5}
                {"current_steps": 15, "total_steps": 20, "loss": 1.2}
                {"current_steps": 20, "total_st""");
        AtomicLong now = new AtomicLong(0);
        TrainerLog log = TrainerLog.open(dir, 20, 10, 1000, now::get);
        assertEquals(2, Files.readAllLines(file).size(), "kept steps 5 and 10 only");
        now.set(10_000_000_000L);
        log.log(TrainerLog.Event.train(15, 1.1, 1e-5, 0.75, 3000));
        List<String> lines = Files.readAllLines(file);
        assertEquals(3, lines.size());
        // ETA from this process's 5 steps in 10 s: 5 steps left -> 10 s; throughput from its 2000 tokens
        assertTrue(lines.get(2).contains("\"remaining_time\": \"0:00:10\""), lines.get(2));
        assertTrue(lines.get(2).contains("\"throughput\": 200.0"), lines.get(2));
    }

    @Test
    void freshRunStartsAnEmptyLog() throws Exception {
        Files.writeString(dir.resolve("trainer_log.jsonl"), "{\"current_steps\": 5}\n", StandardCharsets.UTF_8,
                StandardOpenOption.CREATE);
        TrainerLog.open(dir, 10, 0, 0);
        assertEquals("", Files.readString(dir.resolve("trainer_log.jsonl")));
    }

    @Test
    void timedeltaLikePython() {
        assertEquals("0:00:00", TrainerLog.timedelta(0.9));
        assertEquals("1 day, 1:01:01", TrainerLog.timedelta(90061));
        assertEquals("2 days, 0:00:05", TrainerLog.timedelta(2 * 86400 + 5));
    }
}
