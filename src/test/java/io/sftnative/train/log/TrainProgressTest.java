package io.sftnative.train.log;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import org.junit.jupiter.api.Test;

class TrainProgressTest {
    @Test
    void withoutTerminalOneLinePerLoggingStep() {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (TrainProgress p = TrainProgress.start("train", 100, 0, new PrintStream(buf, true, StandardCharsets.UTF_8),
                false)) {
            for (int step = 1; step <= 20; step++) {
                p.step(step, 1.0, 1e-4, 500);
                if (step % 10 == 0) {
                    p.log(step, 1.23456, 2e-5, 0.5, 1234);
                }
            }
            p.line("saved checkpoint-20");
        }
        String out = buf.toString(StandardCharsets.UTF_8);
        assertTrue(!out.contains("\r"), "no carriage returns in logs");
        String[] lines = out.split("\n");
        assertEquals(3, lines.length, out);
        assertTrue(lines[0].startsWith("step 10/100 (10.0%) | loss 1.2346 | lr 2.000e-05 | grad_norm 0.5000 |"
                + " 1234 tokens/s | elapsed 0:00:00 | eta "), lines[0]);
        assertEquals("saved checkpoint-20", lines[2]);
    }

    @Test
    void onATerminalDrawsABar() {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (TrainProgress p = TrainProgress.start("train", 10, 2, new PrintStream(buf, true, StandardCharsets.UTF_8),
                true)) {
            p.step(5, 0.9, 1e-4, 100);
            p.log(5, 0.9, 1e-4, null, 100);
        }
        String out = buf.toString(StandardCharsets.UTF_8);
        assertTrue(out.contains("train") && out.contains("\r"), out);
        assertTrue(out.contains("step 5/10 (50.0%) | loss 0.9000"), out);
    }
}
