package io.sftnative.tokenizer;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The special tokens of a tokenizer, as text and id (-1 / null when the model has none).
 *
 * @param all every special token's text to id (the four below and added tokens marked special)
 */
public record SpecialTokens(String bos, int bosId, String eos, int eosId, String pad, int padId, String unk,
        int unkId, Map<String, Integer> all) {

    public SpecialTokens {
        all = Collections.unmodifiableMap(new LinkedHashMap<>(all));
    }

    /** Resolves the config's token texts against the vocabulary. */
    static SpecialTokens resolve(TokenizerConfig cfg, String defaultBos, String defaultEos, String defaultUnk,
            Map<String, Integer> special, java.util.function.ToIntFunction<String> idOf) {
        String bos = cfg.bosToken() != null ? cfg.bosToken() : defaultBos;
        String eos = cfg.eosToken() != null ? cfg.eosToken() : defaultEos;
        String unk = cfg.unkToken() != null ? cfg.unkToken() : defaultUnk;
        String pad = cfg.padToken();
        Map<String, Integer> all = new LinkedHashMap<>(special);
        int bosId = id(bos, idOf, all);
        int eosId = id(eos, idOf, all);
        int padId = id(pad, idOf, all);
        int unkId = id(unk, idOf, all);
        return new SpecialTokens(bosId < 0 ? null : bos, bosId, eosId < 0 ? null : eos, eosId,
                padId < 0 ? null : pad, padId, unkId < 0 ? null : unk, unkId, all);
    }

    private static int id(String token, java.util.function.ToIntFunction<String> idOf, Map<String, Integer> all) {
        if (token == null) {
            return -1;
        }
        int id = idOf.applyAsInt(token);
        if (id >= 0) {
            all.putIfAbsent(token, id);
        }
        return id;
    }
}
