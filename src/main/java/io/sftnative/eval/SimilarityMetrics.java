package io.sftnative.eval;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * LLaMA-Factory's predict-with-generate metrics ({@code ComputeSimilarity}): for each (prediction, reference) pair of
 * decoded texts, ROUGE-1/2/L over jieba words ({@link Rouge}) and BLEU-4 over characters ({@link Bleu}), each
 * multiplied by 100 and rounded to 4 decimals; {@link #result()} averages them over all pairs added so far.
 * A prediction or reference without any non-whitespace word scores 0 on the three ROUGE metrics.
 *
 * <p>Not thread-safe; one instance per evaluation run.
 */
public final class SimilarityMetrics {
    /** The metric names, in LLaMA-Factory's order (HF prefixes them with {@code eval_}/{@code predict_}). */
    public static final List<String> NAMES = List.of("rouge-1", "rouge-2", "rouge-l", "bleu-4");

    private final Jieba jieba;
    private final BigDecimal[] sums = {BigDecimal.ZERO, BigDecimal.ZERO, BigDecimal.ZERO, BigDecimal.ZERO};
    private long count;

    /** One pair's scores, already ×100 and rounded to 4 decimals. */
    public record Example(double rouge1, double rouge2, double rougeL, double bleu4) {}

    public SimilarityMetrics() {
        this(Jieba.shared());
    }

    public SimilarityMetrics(Jieba jieba) {
        this.jieba = jieba;
    }

    /** Scores one pair and adds it to the running means. */
    public Example add(String prediction, String reference) {
        Example e = score(prediction, reference);
        double[] v = {e.rouge1(), e.rouge2(), e.rougeL(), e.bleu4()};
        for (int i = 0; i < v.length; i++) {
            sums[i] = sums[i].add(new BigDecimal(v[i]));
        }
        count++;
        return e;
    }

    /** One pair's scores without accumulating. */
    public Example score(String prediction, String reference) {
        String hyp = String.join(" ", jieba.cut(prediction));
        String ref = String.join(" ", jieba.cut(reference));
        double r1 = 0;
        double r2 = 0;
        double rl = 0;
        if (!PyText.split(hyp).isEmpty() && !PyText.split(ref).isEmpty()) {
            Rouge.Scores s = Rouge.score(hyp, ref);
            r1 = s.rouge1();
            r2 = s.rouge2();
            rl = s.rougeL();
        }
        double bleu = Bleu.charBleu4(prediction, reference);
        return new Example(round4(r1 * 100), round4(r2 * 100), round4(rl * 100), round4(bleu * 100));
    }

    /** Mean of each metric over the pairs added ({@link #NAMES} order); empty when none was added. */
    public Map<String, Double> result() {
        Map<String, Double> out = new LinkedHashMap<>();
        if (count == 0) {
            return out;
        }
        for (int i = 0; i < NAMES.size(); i++) {
            BigDecimal mean = sums[i].divide(BigDecimal.valueOf(count), MathContext.DECIMAL128);
            out.put(NAMES.get(i), Double.parseDouble(mean.toString()));
        }
        return out;
    }

    public long count() {
        return count;
    }

    /** Python's {@code round(x, 4)}: half-to-even on the exact binary value. */
    static double round4(double x) {
        if (Double.isNaN(x) || Double.isInfinite(x)) {
            return x;
        }
        return Double.parseDouble(new BigDecimal(x).setScale(4, RoundingMode.HALF_EVEN).toPlainString());
    }
}
