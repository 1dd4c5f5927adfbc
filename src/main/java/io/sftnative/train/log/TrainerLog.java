package io.sftnative.train.log;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.sftnative.files.AtomicFiles;
import io.sftnative.json.PyJson;

/**
 * {@code trainer_log.jsonl} as LLaMA-Factory's {@code LogCallback} writes it (LlamaBoard and users' scripts read it):
 * one JSON object per logging step with {@code current_steps, total_steps, loss, eval_loss, predict_loss, accuracy,
 * lr, epoch, percentage, elapsed_time, remaining_time, throughput, total_tokens} (absent values left out), in
 * Python's JSON formatting.
 *
 * <p>Two deliberate differences: {@code remaining_time} and {@code throughput} are computed from the steps and
 * tokens of this process only (LLaMA-Factory divides the resumed run's totals by this process's time, which
 * overstates throughput and understates the ETA after a resume); and lines an interrupted earlier run logged after
 * the checkpoint being resumed are dropped when the log is opened, so the file never holds a step twice.
 *
 * <p>Crash safety: opening rewrites the file atomically ({@link AtomicFiles}); each entry is then appended with one
 * write and an fsync, so a crash can at worst leave a torn last line, which the next {@link #open} drops.
 */
public final class TrainerLog {
    public static final String FILE_NAME = "trainer_log.jsonl";
    private static final ObjectMapper LENIENT = JsonMapper.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();

    private final Path file;
    private final long totalSteps;
    private final long startStep;
    private final long startTokens;
    private final LongSupplier nanoTime;
    private final long startNanos;

    /** What happened at a logging step; null fields are left out of the line. */
    public record Event(long step, Double loss, Double evalLoss, Double predictLoss, Double accuracy, Double lr,
            Double epoch, long totalTokens) {
        public static Event train(long step, double loss, double lr, double epoch, long totalTokens) {
            return new Event(step, loss, null, null, null, lr, epoch, totalTokens);
        }

        public static Event eval(long step, double evalLoss, double epoch, long totalTokens) {
            return new Event(step, null, evalLoss, null, null, null, epoch, totalTokens);
        }
    }

    private TrainerLog(Path file, long totalSteps, long startStep, long startTokens, LongSupplier nanoTime) {
        this.file = file;
        this.totalSteps = totalSteps;
        this.startStep = startStep;
        this.startTokens = startTokens;
        this.nanoTime = nanoTime;
        this.startNanos = nanoTime.getAsLong();
    }

    /**
     * Opens {@code outputDir/trainer_log.jsonl} for a run that starts after {@code startStep} updates (0 for a fresh
     * run, the checkpoint's global step on resume): earlier lines with {@code current_steps <= startStep} are kept,
     * later and unreadable ones dropped.
     *
     * @param startTokens input tokens already seen at {@code startStep} (0 for a fresh run)
     */
    public static TrainerLog open(Path outputDir, long totalSteps, long startStep, long startTokens)
            throws IOException {
        return open(outputDir, totalSteps, startStep, startTokens, System::nanoTime);
    }

    static TrainerLog open(Path outputDir, long totalSteps, long startStep, long startTokens, LongSupplier nanoTime)
            throws IOException {
        Path file = outputDir.resolve(FILE_NAME);
        List<String> kept = new ArrayList<>();
        if (startStep > 0 && Files.exists(file)) {
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                JsonNode n = parse(line);
                if (n != null && n.path("current_steps").canConvertToLong()
                        && n.get("current_steps").asLong() <= startStep) {
                    kept.add(line);
                }
            }
        }
        StringBuilder sb = new StringBuilder();
        kept.forEach(l -> sb.append(l).append('\n'));
        AtomicFiles.writeString(file, sb.toString());
        return new TrainerLog(file, totalSteps, startStep, startTokens, nanoTime);
    }

    /** Appends the line for {@code e} and returns what was written (as ordered key/values). */
    public Map<String, Object> log(Event e) throws IOException {
        double elapsed = elapsedSeconds();
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("current_steps", e.step());
        line.put("total_steps", totalSteps);
        putIfPresent(line, "loss", e.loss());
        putIfPresent(line, "eval_loss", e.evalLoss());
        putIfPresent(line, "predict_loss", e.predictLoss());
        putIfPresent(line, "accuracy", e.accuracy());
        putIfPresent(line, "lr", e.lr());
        putIfPresent(line, "epoch", e.epoch());
        timing(line, e.step(), elapsed);
        if (e.totalTokens() > 0 && elapsed > 0) {
            line.put("throughput", PyJson.round((e.totalTokens() - startTokens) / elapsed, 2));
            line.put("total_tokens", e.totalTokens());
        }
        append(line);
        return line;
    }

    /** A progress-only line (LLaMA-Factory writes these every 5 batches of a predict-only run). */
    public Map<String, Object> logProgress(long step) throws IOException {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("current_steps", step);
        line.put("total_steps", totalSteps);
        timing(line, step, elapsedSeconds());
        append(line);
        return line;
    }

    public Path file() {
        return file;
    }

    private void timing(Map<String, Object> line, long step, double elapsed) {
        long done = step - startStep;
        double remaining = done > 0 ? (totalSteps - step) * (elapsed / done) : 0;
        line.put("percentage", totalSteps != 0 ? (Object) PyJson.round((double) step / totalSteps * 100, 2) : 100);
        line.put("elapsed_time", timedelta(elapsed));
        line.put("remaining_time", timedelta(remaining));
    }

    private double elapsedSeconds() {
        return (nanoTime.getAsLong() - startNanos) / 1e9;
    }

    private void append(Map<String, Object> line) throws IOException {
        byte[] bytes = (PyJson.dumps(line) + "\n").getBytes(StandardCharsets.UTF_8);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.APPEND)) {
            ByteBuffer buf = ByteBuffer.wrap(bytes);
            while (buf.hasRemaining()) {
                ch.write(buf);
            }
            ch.force(false);
        }
    }

    /** Python's {@code str(timedelta(seconds=int(seconds)))}: {@code 1:02:03}, {@code 2 days, 0:00:05}. */
    public static String timedelta(double seconds) {
        long s = (long) seconds; // int() truncates toward zero
        long days = Math.floorDiv(s, 86400);
        long rest = Math.floorMod(s, 86400);
        String hms = String.format("%d:%02d:%02d", rest / 3600, (rest % 3600) / 60, rest % 60);
        if (days == 0) {
            return hms;
        }
        return days + (Math.abs(days) == 1 ? " day, " : " days, ") + hms;
    }

    private static void putIfPresent(Map<String, Object> line, String key, Double v) {
        if (v != null) {
            line.put(key, v);
        }
    }

    private static JsonNode parse(String line) {
        try {
            JsonNode n = LENIENT.readTree(line);
            return n != null && n.isObject() ? n : null;
        } catch (IOException | RuntimeException e) {
            return null; // a torn last line after a crash
        }
    }
}
