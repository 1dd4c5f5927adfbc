package io.sftnative.config;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;

/**
 * LLaMA-Factory's new-token keys (ModelArguments): tokens added to the tokenizer, and the resize and initialisation
 * of the embedding rows they need.
 *
 * @param addTokens         {@code add_tokens}: normal tokens (comma-separated), in order
 * @param addSpecialTokens  {@code add_special_tokens}, or the keys of {@code new_special_tokens_config}
 * @param resizeVocab       {@code resize_vocab}: as given (adding tokens turns it on, as LLaMA-Factory does)
 * @param descriptions      {@code new_special_tokens_config}: token to description text (empty when not set)
 * @param initSpecialTokens {@code init_special_tokens}: noise_init, desc_init or desc_init_w_noise (the desc ones
 *                          fall back to noise_init without descriptions, as LLaMA-Factory does)
 * @param origin            where the keys were set, for messages
 */
public record NewTokensArgs(List<String> addTokens, List<String> addSpecialTokens, boolean resizeVocab,
        Map<String, String> descriptions, String initSpecialTokens, String origin) {

    public NewTokensArgs {
        addTokens = List.copyOf(addTokens);
        addSpecialTokens = List.copyOf(addSpecialTokens);
        descriptions = Collections.unmodifiableMap(new LinkedHashMap<>(descriptions));
    }

    public static NewTokensArgs none() {
        return new NewTokensArgs(List.of(), List.of(), false, Map.of(), "noise_init", "code");
    }

    /** True when tokens are added (then the vocabulary is resized / initialised, as LLaMA-Factory's patcher does). */
    public boolean addsTokens() {
        return !addTokens.isEmpty() || !addSpecialTokens.isEmpty();
    }

    /** LLaMA-Factory's effective resize_vocab: set, or turned on because tokens are added. */
    public boolean resizes() {
        return resizeVocab || addsTokens();
    }

    static NewTokensArgs from(RawConfig c) {
        List<String> tokens = tokens(c, "add_tokens");
        List<String> special = tokens(c, "add_special_tokens");
        Map<String, String> descriptions = Map.of();
        if (c.has("new_special_tokens_config")) {
            descriptions = descriptions(c);
            // LLaMA-Factory: the config's tokens take precedence over add_special_tokens (with a warning)
            special = new ArrayList<>(descriptions.keySet());
        }
        String init = c.choice("init_special_tokens", "noise_init", "noise_init", "desc_init", "desc_init_w_noise");
        if (!init.equals("noise_init") && descriptions.isEmpty()) {
            init = "noise_init"; // LLaMA-Factory: desc_init needs new_special_tokens_config, else noise_init
        }
        String origin = c.origin(c.has("add_tokens") ? "add_tokens" : c.has("add_special_tokens")
                ? "add_special_tokens" : "new_special_tokens_config");
        return new NewTokensArgs(tokens, special, c.bool("resize_vocab", false), descriptions, init, origin);
    }

    /** LLaMA-Factory's {@code [t.strip() for t in value.split(",")]}, or a YAML list; an empty token is an error. */
    private static List<String> tokens(RawConfig c, String key) {
        if (!c.has(key)) {
            return List.of();
        }
        Object v = c.values().get(key);
        List<String> raw = new ArrayList<>();
        if (v instanceof List<?> l) {
            l.forEach(x -> raw.add(String.valueOf(x)));
        } else {
            raw.addAll(List.of(String.valueOf(v).split(",", -1)));
        }
        List<String> out = new ArrayList<>();
        for (String t : raw) {
            String s = t.strip();
            if (s.isEmpty()) {
                throw new ConfigException("key '" + key + "' (" + c.origin(key) + ") has an empty token ('" + v
                        + "'): separate the tokens by single commas, with no comma at the end");
            }
            out.add(s);
        }
        return out;
    }

    /** The YAML file of new_special_tokens_config: a mapping of token to description text. */
    private static Map<String, String> descriptions(RawConfig c) {
        String key = "new_special_tokens_config";
        Path file = Path.of(c.string(key, ""));
        if (!Files.isRegularFile(file)) {
            throw new ConfigException("key '" + key + "' (" + c.origin(key) + "): " + file + " does not exist; it"
                    + " must be a YAML file mapping each new special token to its description, e.g."
                    + " '<|START_OF_SVG|>: Marks the beginning of an SVG document'");
        }
        JsonNode root;
        try {
            root = new ObjectMapper(new YAMLFactory()).readTree(file.toFile());
        } catch (IOException e) {
            throw new ConfigException("key '" + key + "' (" + c.origin(key) + "): " + file + " is not valid YAML: "
                    + e.getMessage(), e);
        }
        if (root == null || !root.isObject() || root.isEmpty()) {
            throw new ConfigException("key '" + key + "' (" + c.origin(key) + "): " + file + " must be a mapping of"
                    + " token to description text (LLaMA-Factory: 'YAML config must be a dictionary')");
        }
        Map<String, String> out = new LinkedHashMap<>();
        root.properties().forEach(e -> {
            if (!e.getValue().isValueNode() || e.getValue().isNull()) {
                throw new ConfigException("key '" + key + "' (" + c.origin(key) + "): " + file + ": the description"
                        + " of '" + e.getKey() + "' must be text");
            }
            out.put(e.getKey(), e.getValue().asText());
        });
        return out;
    }
}
