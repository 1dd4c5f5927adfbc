package io.sftnative.eval;

import java.math.BigDecimal;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Sentence BLEU-4 exactly as NLTK's {@code sentence_bleu([reference], hypothesis,
 * smoothing_function=SmoothingFunction().method3)} with the default weights (0.25, 0.25, 0.25, 0.25) and one
 * reference. LLaMA-Factory calls it on lists of characters, which {@link #charBleu4} does.
 *
 * <ul>
 *   <li>modified precision p_n = clipped n-gram matches / max(1, hypothesis n-grams), kept as an unreduced
 *       fraction (NLTK's {@code Fraction(..., _normalize=False)});</li>
 *   <li>no unigram match at all: BLEU = 0;</li>
 *   <li>method 3 (NIST geometric smoothing): the k-th order with zero matches (k = 1, 2, ...) gets
 *       {@code 1 / (2^k * denominator)};</li>
 *   <li>brevity penalty: 1 if the hypothesis is longer than the reference, 0 if it is empty, else
 *       {@code exp(1 - ref_len / hyp_len)};</li>
 *   <li>BLEU = bp * exp(fsum(0.25 * log p_n)), the sum exactly rounded like Python's {@code math.fsum}.</li>
 * </ul>
 */
public final class Bleu {
    private static final int MAX_ORDER = 4;

    private Bleu() {}

    /** BLEU-4 (0..1) over the characters (code points) of {@code prediction} against {@code reference}. */
    public static double charBleu4(String prediction, String reference) {
        return sentenceBleu4(PyText.chars(prediction), PyText.chars(reference));
    }

    /** BLEU-4 (0..1) of a token sequence against one reference token sequence. */
    public static double sentenceBleu4(List<String> hypothesis, List<String> reference) {
        long[] numerators = new long[MAX_ORDER];
        long[] denominators = new long[MAX_ORDER];
        for (int n = 1; n <= MAX_ORDER; n++) {
            Map<List<String>, Integer> hyp = counts(hypothesis, n);
            Map<List<String>, Integer> ref = counts(reference, n);
            long clipped = 0;
            long total = 0;
            for (Map.Entry<List<String>, Integer> e : hyp.entrySet()) {
                clipped += Math.min(e.getValue(), ref.getOrDefault(e.getKey(), 0));
                total += e.getValue();
            }
            numerators[n - 1] = clipped;
            denominators[n - 1] = Math.max(1, total);
        }
        int hypLen = hypothesis.size();
        int refLen = reference.size();
        double bp = hypLen > refLen ? 1.0 : hypLen == 0 ? 0.0 : Math.exp(1 - (double) refLen / hypLen);
        if (numerators[0] == 0) {
            return 0.0;
        }
        BigDecimal sum = BigDecimal.ZERO; // math.fsum: exact sum, one final rounding
        int k = 1;
        for (int i = 0; i < MAX_ORDER; i++) {
            double p;
            if (numerators[i] == 0) {
                p = 1.0 / ((double) (1L << k) * denominators[i]);
                k++;
            } else {
                p = (double) numerators[i] / (double) denominators[i];
            }
            sum = sum.add(new BigDecimal(0.25 * Math.log(p)));
        }
        return bp * Math.exp(Double.parseDouble(sum.toString()));
    }

    private static Map<List<String>, Integer> counts(List<String> tokens, int n) {
        Map<List<String>, Integer> out = new HashMap<>();
        for (int i = 0; i + n <= tokens.size(); i++) {
            out.merge(List.copyOf(tokens.subList(i, i + n)), 1, Integer::sum);
        }
        return out;
    }
}
