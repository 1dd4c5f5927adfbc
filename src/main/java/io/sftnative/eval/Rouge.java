package io.sftnative.eval;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * ROUGE-1, ROUGE-2 and ROUGE-L F-scores as the {@code rouge-chinese} package computes them
 * ({@code Rouge().get_scores(hyp, ref)}, default {@code exclusive=True}), on texts whose words are separated by
 * single spaces (LLaMA-Factory passes {@code " ".join(jieba.cut(text))}).
 *
 * <p>Semantics (they differ from the original ROUGE-1.5.5 in ways users see): the text is cut into sentences after
 * {@code 。！？?} (and after {@code ......}, {@code ……}, closing quotes); words are the sentences' space-separated
 * tokens, flattened; ROUGE-N counts <em>distinct</em> n-grams (sets: a repeated n-gram counts once); ROUGE-L is the
 * longest common subsequence of the flattened word lists (with repetitions); {@code f = 2pr / (p + r + 1e-8)}.
 */
public final class Rouge {
    private static final Pattern END = Pattern.compile("([。！？?])([^”’])");
    private static final Pattern DOTS6 = Pattern.compile("(\\.{6})([^”’])");
    private static final Pattern ELLIPSIS2 = Pattern.compile("(…{2})([^”’])");
    private static final Pattern QUOTE_END = Pattern.compile("([。！？?][”’])([^，。！？?])");

    /** F-scores (0..1) of one hypothesis against one reference. */
    public record Scores(double rouge1, double rouge2, double rougeL) {}

    private Rouge() {}

    /** Scores of {@code hypothesis} against {@code reference}; both must hold at least one non-whitespace word. */
    public static Scores score(String hypothesis, String reference) {
        List<String> hyp = words(sentences(hypothesis));
        List<String> ref = words(sentences(reference));
        if (hyp.isEmpty() || ref.isEmpty()) {
            throw new IllegalArgumentException("ROUGE needs a non-empty hypothesis and reference");
        }
        int lcs = lcs(ref, hyp);
        double r = (double) lcs / ref.size();
        double p = (double) lcs / hyp.size();
        return new Scores(rougeN(1, hyp, ref), rougeN(2, hyp, ref), f(p, r));
    }

    /** rouge-chinese's cut_sent, then each non-empty piece with its whitespace runs collapsed to one space. */
    static List<String> sentences(String text) {
        String para = END.matcher(text).replaceAll("$1\n$2");
        para = DOTS6.matcher(para).replaceAll("$1\n$2");
        para = ELLIPSIS2.matcher(para).replaceAll("$1\n$2");
        para = QUOTE_END.matcher(para).replaceAll("$1\n$2");
        List<String> out = new ArrayList<>();
        for (String piece : PyText.rstrip(para).split("\n", -1)) {
            if (!piece.isEmpty()) {
                out.add(String.join(" ", PyText.split(piece)));
            }
        }
        return out;
    }

    /** Sentences split at single spaces and flattened; a blank sentence contributes one empty word, as in Python. */
    static List<String> words(List<String> sentences) {
        List<String> out = new ArrayList<>();
        for (String s : sentences) {
            out.addAll(List.of(s.split(" ", -1)));
        }
        return out;
    }

    private static double rougeN(int n, List<String> hyp, List<String> ref) {
        Set<List<String>> h = ngrams(n, hyp);
        Set<List<String>> r = ngrams(n, ref);
        int hypCount = h.size();
        int refCount = r.size();
        h.retainAll(r);
        int overlap = h.size();
        double p = hypCount == 0 ? 0.0 : (double) overlap / hypCount;
        double rc = refCount == 0 ? 0.0 : (double) overlap / refCount;
        return f(p, rc);
    }

    private static Set<List<String>> ngrams(int n, List<String> words) {
        Set<List<String>> out = new HashSet<>();
        for (int i = 0; i + n <= words.size(); i++) {
            out.add(List.copyOf(words.subList(i, i + n)));
        }
        return out;
    }

    private static int lcs(List<String> x, List<String> y) {
        int[] prev = new int[y.size() + 1];
        int[] cur = new int[y.size() + 1];
        for (int i = 1; i <= x.size(); i++) {
            for (int j = 1; j <= y.size(); j++) {
                cur[j] = x.get(i - 1).equals(y.get(j - 1)) ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[y.size()];
    }

    private static double f(double p, double r) {
        return 2.0 * ((p * r) / (p + r + 1e-8));
    }
}
