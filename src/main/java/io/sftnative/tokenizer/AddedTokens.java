package io.sftnative.tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * LLaMA-Factory's {@code add_tokens} / {@code add_special_tokens}: HF's {@code tokenizer.add_tokens(tokens,
 * special_tokens=...)} on a fast tokenizer, done on the files. The DJL binding of HF tokenizers has no add_tokens,
 * so the tokens are appended to {@code tokenizer.json}'s {@code added_tokens} (and {@code tokenizer_config.json}'s
 * {@code added_tokens_decoder}, as {@code save_pretrained} writes them) in a private copy of the tokenizer files;
 * everything that loads or saves the tokenizer uses that directory, so checkpoints and the output directory get
 * the tokenizer with the new tokens, exactly as HF's Trainer saves it.
 *
 * <p>Ids follow the tokenizers library's {@code AddedVocabulary::add_tokens}: the next id after the largest added
 * token when that is at or past the model vocabulary, else the model vocabulary size. Normal tokens are
 * {@code normalized: true, special: false} (matched after normalisation, kept when decoding); special ones
 * {@code normalized: false, special: true} (matched on the raw text, skipped by {@code skip_special_tokens}), as
 * {@code AddedToken.from(content, special)} builds them. Closing deletes the copy.
 */
public final class AddedTokens implements AutoCloseable {
    /** The tokenizer files a model directory may hold; the copy takes every one present. */
    public static final List<String> FILES = List.of("tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
            "generation_config.json", "chat_template.jinja", "chat_template.json");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;
    private final Map<String, Integer> ids; // each new token, in the order given (normal first, then special)
    private final Map<String, Boolean> special;

    private AddedTokens(Path dir, Map<String, Integer> ids, Map<String, Boolean> special) {
        this.dir = dir;
        this.ids = Collections.unmodifiableMap(ids);
        this.special = Collections.unmodifiableMap(special);
    }

    /**
     * Copies the tokenizer of {@code tokenizerDir} into a new temporary directory with {@code tokens} (normal) and
     * {@code specialTokens} added. Every token must be non-empty, given once, and not already in the vocabulary.
     *
     * @param keyOrigin where the keys were set (for messages), e.g. {@code train.yaml}
     */
    public static AddedTokens stage(Path tokenizerDir, List<String> tokens, List<String> specialTokens,
            String keyOrigin) throws IOException {
        Path file = tokenizerDir.resolve(HfTokenizer.FILE);
        if (!Files.isRegularFile(file)) {
            throw new TokenizerException("add_tokens / add_special_tokens (" + keyOrigin + ") need a HF tokenizer.json"
                    + " in " + tokenizerDir + " (a sentencepiece-only tokenizer.model cannot take added tokens here);"
                    + " convert the tokenizer with transformers (AutoTokenizer.from_pretrained(...).save_pretrained)");
        }
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new TokenizerException(file + " is not a readable tokenizer.json: " + e.getMessage(), e);
        }
        if (!(root instanceof ObjectNode rootObj) || !root.path("model").isObject()) {
            throw new TokenizerException(file + " has no model section: not a HF tokenizer.json");
        }
        JsonNode vocab = root.path("model").path("vocab");
        int modelVocab = vocab.isObject() || vocab.isArray() ? vocab.size() : 0;
        Map<String, Integer> known = new HashMap<>(); // every token text the tokenizer has, model vocab and added
        if (vocab.isObject()) {
            vocab.properties().forEach(e -> known.put(e.getKey(), e.getValue().asInt()));
        } else if (vocab.isArray()) {
            for (int i = 0; i < vocab.size(); i++) {
                known.putIfAbsent(vocab.get(i).path(0).asText(), i);
            }
        }
        JsonNode addedNode = root.path("added_tokens");
        ArrayNode added = addedNode.isArray() ? (ArrayNode) addedNode : rootObj.putArray("added_tokens");
        int maxAdded = -1;
        for (JsonNode t : added) {
            known.put(t.path("content").asText(), t.path("id").asInt());
            maxAdded = Math.max(maxAdded, t.path("id").asInt());
        }
        Map<String, Integer> ids = new LinkedHashMap<>();
        Map<String, Boolean> isSpecial = new LinkedHashMap<>();
        List<String> all = new ArrayList<>(tokens);
        all.addAll(specialTokens);
        for (int i = 0; i < all.size(); i++) {
            String token = all.get(i);
            boolean sp = i >= tokens.size();
            String key = sp ? "add_special_tokens" : "add_tokens";
            if (token.isEmpty()) {
                throw new TokenizerException("key '" + key + "' (" + keyOrigin + ") has an empty token (two commas in"
                        + " a row, or a comma at the end); list the tokens separated by single commas");
            }
            if (ids.containsKey(token)) {
                throw new TokenizerException("key '" + key + "' (" + keyOrigin + ") adds '" + token + "' twice (it is"
                        + " in add_tokens and add_special_tokens together or repeated); give each token once");
            }
            Integer existing = known.get(token);
            if (existing != null) {
                throw new TokenizerException("key '" + key + "' (" + keyOrigin + "): '" + token + "' is already in"
                        + " the vocabulary of the tokenizer in " + tokenizerDir + " (id " + existing + "). Remove it:"
                        + " HF would add nothing, and LLaMA-Factory would still re-initialise that token's trained"
                        + " embedding row when other tokens are added");
            }
            // tokenizers' AddedVocabulary::add_tokens: after the largest added id, or at the model vocabulary size
            int id = maxAdded >= modelVocab || modelVocab == 0 ? maxAdded + 1 : modelVocab;
            maxAdded = Math.max(maxAdded, id);
            ids.put(token, id);
            isSpecial.put(token, sp);
            ObjectNode t = added.addObject();
            t.put("id", id);
            t.put("content", token);
            t.put("single_word", false);
            t.put("lstrip", false);
            t.put("rstrip", false);
            t.put("normalized", !sp);
            t.put("special", sp);
        }
        Path staged = Files.createTempDirectory("sft-native-tokenizer-");
        try {
            for (String name : FILES) {
                Path src = tokenizerDir.resolve(name);
                if (Files.isRegularFile(src) && !name.equals(HfTokenizer.FILE)
                        && !name.equals(TokenizerConfig.FILE)) {
                    Files.copy(src, staged.resolve(name), StandardCopyOption.COPY_ATTRIBUTES);
                }
            }
            JSON.writeValue(staged.resolve(HfTokenizer.FILE).toFile(), root);
            Files.writeString(staged.resolve(TokenizerConfig.FILE), tokenizerConfig(tokenizerDir, ids, isSpecial));
        } catch (IOException | RuntimeException e) {
            deleteRecursively(staged);
            throw e;
        }
        return new AddedTokens(staged, ids, isSpecial);
    }

    /** tokenizer_config.json with each new token in added_tokens_decoder (what HF's save_pretrained writes). */
    private static String tokenizerConfig(Path dir, Map<String, Integer> ids, Map<String, Boolean> special)
            throws IOException {
        Path src = dir.resolve(TokenizerConfig.FILE);
        ObjectNode cfg = Files.isRegularFile(src) && JSON.readTree(src.toFile()) instanceof ObjectNode o ? o
                : JSON.createObjectNode();
        JsonNode decoderNode = cfg.path("added_tokens_decoder");
        ObjectNode decoder = decoderNode.isObject() ? (ObjectNode) decoderNode : cfg.putObject("added_tokens_decoder");
        for (Map.Entry<String, Integer> e : ids.entrySet()) {
            boolean sp = special.get(e.getKey());
            ObjectNode t = decoder.putObject(String.valueOf(e.getValue()));
            t.put("content", e.getKey());
            t.put("lstrip", false);
            t.put("normalized", !sp);
            t.put("rstrip", false);
            t.put("single_word", false);
            t.put("special", sp);
        }
        return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(cfg) + "\n";
    }

    /** The directory holding the tokenizer with the new tokens (load it with {@link Tokenizer#load}). */
    public Path directory() {
        return dir;
    }

    /** Each new token (add_tokens first, then add_special_tokens) to its id. */
    public Map<String, Integer> ids() {
        return ids;
    }

    /** Whether the token was added as special. */
    public boolean isSpecial(String token) {
        return special.getOrDefault(token, false);
    }

    /**
     * Checks that the loaded tokenizer encodes every new token as its one id (what training relies on); a token that
     * the tokenizer's normaliser rewrites cannot be matched and is refused naming it.
     */
    public void verify(Tokenizer tok) {
        for (Map.Entry<String, Integer> e : ids.entrySet()) {
            int[] enc = tok.encode(e.getKey());
            if (enc.length != 1 || enc[0] != e.getValue()) {
                throw new TokenizerException("the added token '" + e.getKey() + "' should encode as id "
                        + e.getValue() + " but the tokenizer gives " + java.util.Arrays.toString(enc)
                        + " (its normaliser changes the text?); add it with add_special_tokens, which matches"
                        + " the raw text");
            }
        }
    }

    @Override
    public void close() {
        deleteRecursively(dir);
    }

    private static void deleteRecursively(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            // a temporary directory left behind is harmless; nothing to report to the run
        }
    }
}
