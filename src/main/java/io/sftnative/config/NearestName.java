package io.sftnative.config;

/** The "did you mean ...?" suggestion for a mistyped name (config key, dataset name), by edit distance. */
public final class NearestName {
    private NearestName() {}

    /**
     * The candidate closest to {@code typed} in Levenshtein distance (the first one of equally close candidates, in
     * iteration order), or null when there is none within {@code maxDistance} edits.
     */
    public static String of(String typed, Iterable<String> candidates, int maxDistance) {
        String best = null;
        int bestD = Integer.MAX_VALUE;
        for (String c : candidates) {
            int d = levenshtein(typed, c);
            if (d < bestD) {
                bestD = d;
                best = c;
            }
        }
        return best != null && bestD <= maxDistance ? best : null;
    }

    /** Insertions, deletions and substitutions that turn {@code a} into {@code b}. */
    static int levenshtein(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int sub = prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                cur[j] = Math.min(sub, Math.min(prev[j] + 1, cur[j - 1] + 1));
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }
}
