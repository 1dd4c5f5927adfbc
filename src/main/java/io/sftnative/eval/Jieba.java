package io.sftnative.eval;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Chinese word segmentation exactly as Python jieba 0.42's default {@code jieba.cut(text)} (accurate mode, HMM on):
 * text split into "han" blocks; each block cut along the most probable path of the prefix-dictionary DAG; runs of
 * single characters that are not a dictionary word re-cut by the BMES HMM (Viterbi); everything else one character
 * at a time ({@code \r\n} kept together).
 *
 * <p>The dictionary and HMM emission table are jieba's, read from the {@code com.huaban:jieba-analysis} jar
 * ({@code dict.txt}, {@code prob_emit.txt}). Two known differences from Python jieba's data: that {@code dict.txt}
 * lacks one entry of jieba 0.42.1's ({@code 吉林 89}), which is added back here, and its emission log-probabilities
 * are rounded to 12 significant digits (this could only flip an exact near-tie of two HMM paths). huaban's own
 * segmenter is not used: it lower-cases, converts full-width characters and groups differently from Python jieba.
 *
 * <p>Thread-safe after construction; {@link #shared()} loads the ~350k-word dictionary once (about a second).
 */
public final class Jieba {
    private static final double MIN_FLOAT = -3.14e100;
    private static final String STATES = "BMES"; // index order of the emission tables
    private static final int B = 0;
    private static final int M = 1;
    private static final int E = 2;
    private static final int S = 3;
    // finalseg/prob_start.py and prob_trans.py of jieba (natural logs)
    private static final double[] START = {-0.26268660809250016, MIN_FLOAT, MIN_FLOAT, -1.4652633398537678};
    private static final double[][] TRANS = new double[4][4];
    private static final int[][] PREV = {{E, S}, {M, B}, {B, M}, {S, E}}; // allowed previous states of B, M, E, S

    static {
        for (double[] row : TRANS) {
            Arrays.fill(row, MIN_FLOAT);
        }
        TRANS[B][E] = -0.510825623765990;
        TRANS[B][M] = -0.916290731874155;
        TRANS[E][B] = -0.5897149736854513;
        TRANS[E][S] = -0.8085250474669937;
        TRANS[M][E] = -0.33344856811948514;
        TRANS[M][M] = -1.2603623820268226;
        TRANS[S][B] = -0.7211965654669841;
        TRANS[S][S] = -0.6658631448798212;
    }

    /** jieba's re_han_default: the characters the dictionary path handles. */
    private static final Pattern HAN_DEFAULT = Pattern.compile("[\\x{4E00}-\\x{9FD5}a-zA-Z0-9+#&._%\\-]+");
    /** finalseg's re_han / re_skip (Python's \d is any Unicode decimal digit). */
    private static final Pattern HAN = Pattern.compile("[\\x{4E00}-\\x{9FD5}]+");
    private static final Pattern SKIP = Pattern.compile("[a-zA-Z0-9]+(?:\\.\\p{Nd}+)?%?");
    private static final Map<String, Integer> MISSING_FROM_HUABAN_DICT = Map.of("吉林", 89);

    private static volatile Jieba shared;

    private final String[] words; // sorted (String order), every dictionary word
    private final int[] freqs;    // freqs[i] = frequency of words[i]
    private final double logTotal;
    private final List<Map<Integer, Double>> emit; // per state B, M, E, S: code point -> log probability

    private Jieba(String[] words, int[] freqs, long total, List<Map<Integer, Double>> emit) {
        this.words = words;
        this.freqs = freqs;
        this.logTotal = Math.log(total);
        this.emit = emit;
    }

    /** The process-wide instance (loaded on first use). */
    public static Jieba shared() {
        Jieba j = shared;
        if (j == null) {
            synchronized (Jieba.class) {
                j = shared;
                if (j == null) {
                    shared = j = load();
                }
            }
        }
        return j;
    }

    /** {@code list(jieba.cut(text))}. */
    public List<String> cut(String text) {
        List<String> out = new ArrayList<>();
        Matcher m = HAN_DEFAULT.matcher(text);
        int last = 0;
        while (m.find()) {
            cutOther(text.substring(last, m.start()), out);
            cutDag(text.substring(m.start(), m.end()).codePoints().toArray(), out);
            last = m.end();
        }
        cutOther(text.substring(last), out);
        return out;
    }

    /** Outside han blocks every character is its own token; {@code \r\n} stays one token. */
    private static void cutOther(String block, List<String> out) {
        int i = 0;
        while (i < block.length()) {
            if (block.startsWith("\r\n", i)) {
                out.add("\r\n");
                i += 2;
            } else {
                int cp = block.codePointAt(i);
                out.add(new String(Character.toChars(cp)));
                i += Character.charCount(cp);
            }
        }
    }

    private void cutDag(int[] s, List<String> out) {
        int n = s.length;
        int[] next = route(s); // next[i] = end (exclusive) of the best word starting at i
        StringBuilder buf = new StringBuilder();
        int x = 0;
        while (x < n) {
            int y = next[x];
            if (y - x == 1) {
                buf.appendCodePoint(s[x]);
            } else {
                flush(buf, out);
                out.add(new String(s, x, y - x));
            }
            x = y;
        }
        flush(buf, out);
    }

    /** A run of single characters: one token, a dictionary word split into characters, or HMM-segmented. */
    private void flush(StringBuilder buf, List<String> out) {
        if (buf.isEmpty()) {
            return;
        }
        String b = buf.toString();
        buf.setLength(0);
        if (b.codePointCount(0, b.length()) == 1) {
            out.add(b);
        } else if (freq(b) <= 0) {
            hmmCut(b, out);
        } else {
            b.codePoints().forEach(cp -> out.add(new String(Character.toChars(cp))));
        }
    }

    /** The best path through the DAG, from the right: maximise the sum of log(freq / total). */
    private int[] route(int[] s) {
        int n = s.length;
        double[] score = new double[n + 1];
        int[] next = new int[n + 1];
        for (int i = n - 1; i >= 0; i--) {
            double best = Double.NEGATIVE_INFINITY;
            int bestEnd = -1;
            for (int end : dagEnds(s, i)) {
                int f = freq(new String(s, i, end - i));
                double v = Math.log(f > 0 ? f : 1) - logTotal + score[end];
                if (bestEnd < 0 || v > best || (v == best && end > bestEnd)) { // Python max((v, x)): ties -> larger x
                    best = v;
                    bestEnd = end;
                }
            }
            score[i] = best;
            next[i] = bestEnd;
        }
        return next;
    }

    /** Ends (exclusive) of every dictionary word starting at {@code k}; just {@code k + 1} when none. */
    private List<Integer> dagEnds(int[] s, int k) {
        List<Integer> ends = new ArrayList<>();
        for (int i = k; i < s.length; i++) {
            String frag = new String(s, k, i - k + 1);
            int idx = Arrays.binarySearch(words, frag);
            if (idx >= 0) {
                if (freqs[idx] > 0) {
                    ends.add(i + 1);
                }
            } else {
                int at = -idx - 1;
                if (at >= words.length || !words[at].startsWith(frag)) {
                    break; // no word has this prefix
                }
            }
        }
        if (ends.isEmpty()) {
            ends.add(k + 1);
        }
        return ends;
    }

    private int freq(String word) {
        int idx = Arrays.binarySearch(words, word);
        return idx >= 0 ? freqs[idx] : 0;
    }

    /** finalseg.cut: han runs by Viterbi over B/M/E/S, the rest as [a-zA-Z0-9]+(.digits)?%? runs and leftovers. */
    private void hmmCut(String text, List<String> out) {
        Matcher m = HAN.matcher(text);
        int last = 0;
        while (m.find()) {
            skipCut(text.substring(last, m.start()), out);
            viterbiCut(text.substring(m.start(), m.end()).codePoints().toArray(), out);
            last = m.end();
        }
        skipCut(text.substring(last), out);
    }

    private static void skipCut(String block, List<String> out) {
        Matcher m = SKIP.matcher(block);
        int last = 0;
        while (m.find()) {
            if (m.start() > last) {
                out.add(block.substring(last, m.start()));
            }
            out.add(m.group());
            last = m.end();
        }
        if (last < block.length()) {
            out.add(block.substring(last));
        }
    }

    private void viterbiCut(int[] obs, List<String> out) {
        int n = obs.length;
        double[][] v = new double[n][4];
        int[][] back = new int[n][4];
        for (int y = 0; y < 4; y++) {
            v[0][y] = START[y] + emission(y, obs[0]);
        }
        for (int t = 1; t < n; t++) {
            for (int y = 0; y < 4; y++) {
                double em = emission(y, obs[t]);
                int bestPrev = -1;
                double best = 0;
                for (int y0 : PREV[y]) {
                    double p = v[t - 1][y0] + TRANS[y0][y] + em;
                    // Python max((prob, state)): ties go to the later letter of "BMES" order by character
                    if (bestPrev < 0 || p > best || (p == best && STATES.charAt(y0) > STATES.charAt(bestPrev))) {
                        best = p;
                        bestPrev = y0;
                    }
                }
                v[t][y] = best;
                back[t][y] = bestPrev;
            }
        }
        int state = v[n - 1][S] > v[n - 1][E] || v[n - 1][S] == v[n - 1][E] ? S : E; // max over (E, S); tie -> S
        int[] path = new int[n];
        for (int t = n - 1; t >= 0; t--) {
            path[t] = state;
            state = back[t][state];
        }
        int begin = 0;
        int nexti = 0;
        for (int i = 0; i < n; i++) {
            if (path[i] == B) {
                begin = i;
            } else if (path[i] == E) {
                out.add(new String(obs, begin, i + 1 - begin));
                nexti = i + 1;
            } else if (path[i] == S) {
                out.add(new String(obs, i, 1));
                nexti = i + 1;
            }
        }
        if (nexti < n) {
            out.add(new String(obs, nexti, n - nexti));
        }
    }

    private double emission(int state, int codePoint) {
        Double p = emit.get(state).get(codePoint);
        return p != null ? p : MIN_FLOAT;
    }

    private static Jieba load() {
        try {
            Map<String, Integer> dict = new LinkedHashMap<>(); // a repeated word keeps its last frequency
            long total = 0;
            try (BufferedReader r = reader("/dict.txt")) {
                String line;
                int lineNo = 0;
                while ((line = r.readLine()) != null) {
                    lineNo++;
                    if (line.isBlank()) {
                        continue;
                    }
                    String[] parts = line.split(" ");
                    if (parts.length < 2) {
                        throw new IllegalStateException("jieba dict.txt line " + lineNo + " is malformed: " + line);
                    }
                    int f = Integer.parseInt(parts[1]);
                    dict.put(parts[0], f);
                    total += f;
                }
            }
            for (Map.Entry<String, Integer> e : MISSING_FROM_HUABAN_DICT.entrySet()) {
                if (!dict.containsKey(e.getKey())) {
                    dict.put(e.getKey(), e.getValue());
                    total += e.getValue();
                }
            }
            String[] words = dict.keySet().toArray(new String[0]);
            Arrays.sort(words);
            int[] freqs = new int[words.length];
            for (int i = 0; i < words.length; i++) {
                freqs[i] = dict.get(words[i]);
            }
            Jieba j = new Jieba(words, freqs, total, loadEmission());
            if (words.length < 300_000 || j.freq("北京") <= 0) {
                throw new IllegalStateException("the dict.txt on the class path (" + words.length + " words) is not"
                        + " jieba's: another jar shadows the one of com.huaban:jieba-analysis");
            }
            return j;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read jieba's dictionary from the jieba-analysis jar", e);
        }
    }

    private static List<Map<Integer, Double>> loadEmission() throws IOException {
        List<Map<Integer, Double>> emit = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            emit.add(new HashMap<>());
        }
        try (BufferedReader r = reader("/prob_emit.txt")) {
            Map<Integer, Double> current = null;
            String line;
            while ((line = r.readLine()) != null) {
                int tab = line.indexOf('\t');
                if (tab < 0) {
                    String state = line.trim();
                    if (state.length() == 1 && STATES.contains(state)) {
                        current = emit.get(STATES.indexOf(state));
                    }
                    continue;
                }
                if (current != null) {
                    current.put(line.codePointAt(0), Double.parseDouble(line.substring(tab + 1).trim()));
                }
            }
        }
        return emit;
    }

    private static BufferedReader reader(String resource) throws IOException {
        InputStream in = Jieba.class.getResourceAsStream(resource);
        if (in == null) {
            throw new IOException(resource + " not on the class path (it comes with com.huaban:jieba-analysis)");
        }
        return new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
    }
}
