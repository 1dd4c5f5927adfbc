package io.sftnative.tokenizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.TokenizersLibrary;

/**
 * A HF {@code tokenizer.json} (byte-level BPE for Qwen/Llama-3/GPT-2, Metaspace BPE for Mistral, ...) run by the
 * HF tokenizers library itself (Rust, through DJL), so ids are exactly those of {@code AutoTokenizer}.
 *
 * <p>DJL's defaults are overridden: no special tokens added, no truncation (DJL truncates to 512 otherwise), no
 * padding. Encoding goes straight to the JNI functions and fetches only the ids (DJL's {@code encode} also copies
 * tokens, offsets and masks back into Java, which halves throughput).
 */
final class HfTokenizer implements TokenizerEngine {
    static final String FILE = "tokenizer.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HuggingFaceTokenizer djl;
    private final long handle;

    private HfTokenizer(HuggingFaceTokenizer djl) {
        this.djl = djl;
        this.handle = djl.getHandle();
    }

    static LoadedTokenizer load(Path dir) {
        Path file = dir.resolve(FILE);
        TokenizerConfig cfg = TokenizerConfig.read(dir, false);
        Map<String, Integer> vocab = new HashMap<>();
        Map<String, Integer> specialAdded = new LinkedHashMap<>();
        int maxId = readVocab(file, vocab, specialAdded);
        cfg.addedTokens().forEach(vocab::putIfAbsent);
        for (int id : cfg.addedTokens().values()) {
            maxId = Math.max(maxId, id);
        }
        SpecialTokens special = SpecialTokens.resolve(cfg, null, null, null, specialAdded,
                t -> vocab.getOrDefault(t, -1));
        Map<String, String> options = Map.of(
                "addSpecialTokens", "false",
                "truncation", "false",
                "padding", "false",
                "modelMaxLength", String.valueOf(Integer.MAX_VALUE));
        HuggingFaceTokenizer djl;
        try {
            djl = HuggingFaceTokenizer.newInstance(file, options);
        } catch (IOException | RuntimeException e) {
            throw new TokenizerException("cannot load " + file + " with the HF tokenizers library: " + e.getMessage()
                    + " (is it a valid tokenizer.json?)", e);
        }
        return new LoadedTokenizer(dir, file, new HfTokenizer(djl), vocab, maxId + 1, special, cfg);
    }

    /** Streams tokenizer.json for model.vocab and added_tokens; returns the largest id. */
    private static int readVocab(Path file, Map<String, Integer> vocab, Map<String, Integer> specialAdded) {
        int maxId = -1;
        try (JsonParser p = new JsonFactory().setCodec(JSON).createParser(file.toFile())) {
            expect(p.nextToken(), JsonToken.START_OBJECT, file);
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                p.nextToken();
                if ("added_tokens".equals(field) && p.currentToken() == JsonToken.START_ARRAY) {
                    JsonNode added = p.readValueAsTree();
                    for (JsonNode t : added) {
                        int id = t.path("id").asInt(-1);
                        String content = t.path("content").asText();
                        vocab.put(content, id);
                        maxId = Math.max(maxId, id);
                        if (t.path("special").asBoolean(false)) {
                            specialAdded.put(content, id);
                        }
                    }
                } else if ("model".equals(field) && p.currentToken() == JsonToken.START_OBJECT) {
                    while (p.nextToken() == JsonToken.FIELD_NAME) {
                        String mf = p.currentName();
                        JsonToken v = p.nextToken();
                        if ("vocab".equals(mf) && v == JsonToken.START_OBJECT) { // BPE, WordPiece: {token: id}
                            while (p.nextToken() == JsonToken.FIELD_NAME) {
                                String tok = p.currentName();
                                p.nextToken();
                                int id = p.getIntValue();
                                vocab.putIfAbsent(tok, id);
                                maxId = Math.max(maxId, id);
                            }
                        } else if ("vocab".equals(mf) && v == JsonToken.START_ARRAY) { // Unigram: [[piece, score]]
                            int id = 0;
                            while (p.nextToken() == JsonToken.START_ARRAY) {
                                p.nextToken();
                                vocab.putIfAbsent(p.getText(), id);
                                maxId = Math.max(maxId, id);
                                id++;
                                while (p.nextToken() != JsonToken.END_ARRAY) {
                                    p.skipChildren();
                                }
                            }
                        } else {
                            p.skipChildren();
                        }
                    }
                } else {
                    p.skipChildren();
                }
            }
        } catch (IOException e) {
            throw new TokenizerException(file + " is not a readable tokenizer.json: " + e.getMessage(), e);
        }
        if (vocab.isEmpty()) {
            throw new TokenizerException(file + " has no model.vocab: not a HF tokenizer.json");
        }
        return maxId;
    }

    private static void expect(JsonToken got, JsonToken want, Path file) {
        if (got != want) {
            throw new TokenizerException(file + " is not a JSON object: not a HF tokenizer.json");
        }
    }

    @Override
    public int[] encode(String text) {
        if (text.isEmpty()) {
            return new int[0];
        }
        long encoding = TokenizersLibrary.LIB.encode(handle, text, false);
        try {
            long[] ids = TokenizersLibrary.LIB.getTokenIds(encoding);
            int[] out = new int[ids.length];
            for (int i = 0; i < ids.length; i++) {
                out[i] = (int) ids[i];
            }
            return out;
        } finally {
            TokenizersLibrary.LIB.deleteEncoding(encoding);
        }
    }

    @Override
    public String decode(int[] ids, boolean skipSpecialTokens) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            l[i] = ids[i];
        }
        return djl.decode(l, skipSpecialTokens);
    }

    @Override
    public void close() {
        djl.close();
    }
}
