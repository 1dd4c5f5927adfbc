package io.sftnative.tokenizer;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;

/** Cuts text at special-token strings (longest match first), as HF's added-token trie does before tokenizing. */
final class SpecialTokenSplitter {
    record Piece(String text, boolean special) {}

    private final List<String> tokens; // longest first

    SpecialTokenSplitter(Collection<String> specialTokens) {
        this.tokens = specialTokens.stream().filter(t -> !t.isEmpty())
                .sorted(Comparator.comparingInt(String::length).reversed()).toList();
    }

    List<Piece> split(String text) {
        List<Piece> out = new ArrayList<>();
        int start = 0;
        int i = 0;
        outer:
        while (i < text.length()) {
            for (String t : tokens) {
                if (text.startsWith(t, i)) {
                    if (i > start) {
                        out.add(new Piece(text.substring(start, i), false));
                    }
                    out.add(new Piece(t, true));
                    i += t.length();
                    start = i;
                    continue outer;
                }
            }
            i++;
        }
        if (start < text.length()) {
            out.add(new Piece(text.substring(start), false));
        }
        return out;
    }
}
