package io.sftnative.tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * What {@code tokenizer_config.json} says about special tokens and chat formatting (all optional).
 *
 * @param bosToken      text of the beginning-of-sequence token, or null
 * @param eosToken      text of the end-of-sequence token, or null
 * @param padToken      text of the padding token, or null
 * @param unkToken      text of the unknown token, or null
 * @param addBosToken   whether HF adds BOS when encoding with special tokens (pt prepends it to every text)
 * @param chatTemplate  the model's own Jinja chat template, or null
 * @param addedTokens   {@code added_tokens_decoder}: token text to id, special or not
 */
public record TokenizerConfig(String bosToken, String eosToken, String padToken, String unkToken,
        boolean addBosToken, String chatTemplate, Map<String, Integer> addedTokens) {

    public static final String FILE = "tokenizer_config.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    public TokenizerConfig {
        addedTokens = Collections.unmodifiableMap(new LinkedHashMap<>(addedTokens));
    }

    public static TokenizerConfig empty() {
        return new TokenizerConfig(null, null, null, null, false, null, Map.of());
    }

    /** Reads {@code dir/tokenizer_config.json}; an absent file gives {@link #empty()} with {@code addBosDefault}. */
    public static TokenizerConfig read(Path dir, boolean addBosDefault) {
        Path file = dir.resolve(FILE);
        if (!Files.exists(file)) {
            return new TokenizerConfig(null, null, null, null, addBosDefault, null, Map.of());
        }
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            var loc = e.getLocation();
            throw new TokenizerException(file + " is not valid JSON" + (loc == null ? "" : " at line "
                    + loc.getLineNr()) + ": " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new TokenizerException("cannot read " + file + ": " + e.getMessage(), e);
        }
        Map<String, Integer> added = new LinkedHashMap<>();
        JsonNode decoder = root.path("added_tokens_decoder");
        decoder.properties().forEach(e -> {
            try {
                added.put(e.getValue().path("content").asText(), Integer.parseInt(e.getKey()));
            } catch (NumberFormatException ex) {
                throw new TokenizerException(file + ": added_tokens_decoder key '" + e.getKey() + "' is not an id");
            }
        });
        return new TokenizerConfig(token(root, "bos_token"), token(root, "eos_token"), token(root, "pad_token"),
                token(root, "unk_token"), root.path("add_bos_token").asBoolean(addBosDefault),
                chatTemplate(root.path("chat_template")), added);
    }

    /** A token is a string or an AddedToken object {"content": ...}. */
    private static String token(JsonNode root, String key) {
        JsonNode n = root.path(key);
        if (n.isTextual()) {
            return n.asText();
        }
        if (n.isObject() && n.path("content").isTextual()) {
            return n.path("content").asText();
        }
        return null;
    }

    /** chat_template is a string, or a list of {name, template} of which "default" is the chat one. */
    private static String chatTemplate(JsonNode n) {
        if (n.isTextual()) {
            return n.asText();
        }
        if (n.isArray()) {
            for (JsonNode t : n) {
                if ("default".equals(t.path("name").asText())) {
                    return t.path("template").asText();
                }
            }
        }
        return null;
    }
}
