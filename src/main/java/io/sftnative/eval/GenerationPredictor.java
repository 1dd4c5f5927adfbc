package io.sftnative.eval;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.data.Example;
import io.sftnative.data.ExampleSet;
import io.sftnative.files.AtomicFiles;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.Generation;
import io.sftnative.model.GenerationOptions;
import io.sftnative.tokenizer.Tokenizer;

/**
 * LLaMA-Factory's predict with generate: for every evaluation example, the prompt (everything before its last
 * answer) is continued by the model, and the generation is compared with the reference answer by BLEU-4 and
 * ROUGE-1/2/L ({@link SimilarityMetrics}). Writes {@code generated_predictions.jsonl} with one
 * {@code {"prompt", "predict", "label"}} object per line as LLaMA-Factory does (prompt decoded with special tokens,
 * predict and label without).
 */
public final class GenerationPredictor {
    public static final String FILE_NAME = "generated_predictions.jsonl";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int IGNORE_INDEX = -100;

    private GenerationPredictor() {}

    /** One prediction. */
    public record Prediction(String prompt, String predict, String label) {}

    /** The predictions and the averaged metrics ({@link SimilarityMetrics#NAMES}). */
    public record Result(List<Prediction> predictions, Map<String, Double> metrics, double runtimeSeconds) {}

    /**
     * Splits a training row into (prompt ids, reference answer ids): the answer is the last run of labelled
     * tokens, the prompt everything before it. Null when the row has no labelled token or nothing before it.
     */
    public static long[][] promptAndAnswer(Example e) {
        int[] labels = e.labels();
        int end = labels.length;
        while (end > 0 && labels[end - 1] == IGNORE_INDEX) {
            end--;
        }
        int start = end;
        while (start > 0 && labels[start - 1] != IGNORE_INDEX) {
            start--;
        }
        if (end == 0 || start == 0) {
            return null;
        }
        long[] prompt = new long[start];
        long[] answer = new long[end - start];
        for (int i = 0; i < start; i++) {
            prompt[i] = e.inputIds()[i];
        }
        for (int i = start; i < end; i++) {
            answer[i - start] = e.inputIds()[i];
        }
        return new long[][] {prompt, answer};
    }

    /** Generates for every example of {@code set} with a prompt, {@code batchSize} prompts at a time. */
    public static Result predict(DecoderModel model, Tokenizer tokenizer, ExampleSet set, int batchSize,
            GenerationOptions options) {
        long start = System.nanoTime();
        SimilarityMetrics metrics = new SimilarityMetrics();
        List<Prediction> out = new ArrayList<>();
        List<long[][]> pending = new ArrayList<>();
        for (int i = 0; i < set.size(); i++) {
            long[][] pa = promptAndAnswer(set.get(i));
            if (pa != null) {
                pending.add(pa);
            }
            if (pending.size() == batchSize || (i == set.size() - 1 && !pending.isEmpty())) {
                long[][] prompts = pending.stream().map(p -> p[0]).toArray(long[][]::new);
                long[][] generated = Generation.generate(model, prompts, options);
                for (int r = 0; r < prompts.length; r++) {
                    String prompt = tokenizer.decode(ints(prompts[r]), false);
                    String predict = tokenizer.decode(ints(generated[r]), true);
                    String label = tokenizer.decode(ints(pending.get(r)[1]), true);
                    metrics.add(predict, label);
                    out.add(new Prediction(prompt, predict, label));
                }
                pending.clear();
            }
        }
        return new Result(out, metrics.result(), (System.nanoTime() - start) / 1e9);
    }

    /** Writes {@code dir/generated_predictions.jsonl} atomically (Python's json.dumps, ensure_ascii=False). */
    public static Path write(Path dir, List<Prediction> predictions) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (Prediction p : predictions) {
            sb.append("{\"prompt\": ").append(quote(p.prompt())).append(", \"predict\": ").append(quote(p.predict()))
                    .append(", \"label\": ").append(quote(p.label())).append("}\n");
        }
        Path file = dir.resolve(FILE_NAME);
        AtomicFiles.writeBytes(file, sb.toString().getBytes(StandardCharsets.UTF_8));
        return file;
    }

    /** Metrics with HF's prefix ({@code predict_bleu-4}, ...). */
    public static Map<String, Double> prefixed(String prefix, Map<String, Double> metrics) {
        Map<String, Double> m = new LinkedHashMap<>();
        metrics.forEach((k, v) -> m.put(prefix + "_" + k, v));
        return m;
    }

    private static String quote(String s) {
        try {
            return JSON.writeValueAsString(s);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static int[] ints(long[] ids) {
        return Arrays.stream(ids).mapToInt(x -> (int) x).toArray();
    }

}
