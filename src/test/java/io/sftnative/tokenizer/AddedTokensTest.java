package io.sftnative.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.testing.Shared;

/**
 * add_tokens / add_special_tokens on real tokenizers: ids as the tokenizers library assigns them, each new token
 * one id, special tokens skipped when decoding without special tokens and normal ones kept, HF's saved-file layout,
 * and the refusals (already present, empty, repeated, sentencepiece-only).
 */
class AddedTokensTest {

    @Test
    void qwen3GainsTokensAfterItsLastAddedTokenEachEncodedAsOneId() throws Exception {
        Path qwen = Shared.require("assets/tokenizers/qwen3");
        try (Tokenizer base = Tokenizer.load(qwen);
                AddedTokens added = AddedTokens.stage(qwen, List.of("<tool_a>", "ztoken"), List.of("<|svg_start|>"),
                        "test.yaml");
                Tokenizer tok = Tokenizer.load(added.directory())) {
            // Qwen3: 151643 BPE tokens, added tokens up to 151668: new ids continue from there (tokenizers' rule)
            assertEquals(151669, added.ids().get("<tool_a>"));
            assertEquals(151670, added.ids().get("ztoken"));
            assertEquals(151671, added.ids().get("<|svg_start|>"));
            assertEquals(base.length() + 3, tok.length(), "len(tokenizer) grows by the new tokens");
            added.verify(tok);
            String text = "Call <tool_a> then<|svg_start|>ztoken.";
            int[] ids = tok.encode(text);
            assertEquals(1, count(ids, 151669));
            assertEquals(1, count(ids, 151670));
            assertEquals(1, count(ids, 151671));
            assertEquals(text, tok.decode(ids, false), "round trip");
            String skipped = tok.decode(ids, true);
            assertFalse(skipped.contains("<|svg_start|>"), "special tokens are skipped: " + skipped);
            assertTrue(skipped.contains("<tool_a>") && skipped.contains("ztoken"), "normal tokens are kept: "
                    + skipped);
            assertTrue(tok.specialTokenIds().containsKey("<|svg_start|>"));
            assertFalse(tok.specialTokenIds().containsKey("<tool_a>"));
            // the base tokenizer splits them; the original files are untouched
            assertTrue(base.encode("<tool_a>").length > 1);
            assertTrue(base.tokenId("<tool_a>") < 0);
            assertTrue(base.fingerprint() != null && !base.fingerprint().equals(tok.fingerprint()),
                    "a different tokenizer for the dataset cache");

            // the files as HF's save_pretrained writes them
            ObjectMapper json = new ObjectMapper();
            JsonNode last = json.readTree(added.directory().resolve("tokenizer.json").toFile()).get("added_tokens");
            JsonNode sp = last.get(last.size() - 1);
            assertEquals("<|svg_start|>", sp.get("content").asText());
            assertEquals(151671, sp.get("id").asInt());
            assertTrue(sp.get("special").asBoolean());
            assertFalse(sp.get("normalized").asBoolean());
            JsonNode normal = last.get(last.size() - 3);
            assertFalse(normal.get("special").asBoolean());
            assertTrue(normal.get("normalized").asBoolean());
            JsonNode decoder = json.readTree(added.directory().resolve("tokenizer_config.json").toFile())
                    .get("added_tokens_decoder");
            assertEquals("<tool_a>", decoder.get("151669").get("content").asText());
            assertTrue(decoder.get("151671").get("special").asBoolean());
            assertTrue(decoder.has("151643"), "the existing entries are kept");
        }
    }

    @Test
    void mistralsNewTokensStartAtTheModelVocabulary() throws Exception {
        Path mistral = Shared.require("assets/tokenizers/mistral");
        try (AddedTokens added = AddedTokens.stage(mistral, List.of("<tool_a>"), List.of("<|b|>"), "t");
                Tokenizer tok = Tokenizer.load(added.directory())) {
            // 32000 BPE tokens, added tokens only at 0..2 (inside the vocabulary): the first new id is 32000
            assertEquals(32000, added.ids().get("<tool_a>"));
            assertEquals(32001, added.ids().get("<|b|>"));
            added.verify(tok);
            assertArrayEquals(new int[] {32001}, tok.encode("<|b|>"));
        }
    }

    @Test
    void badTokensAreRefusedNamingTheKey() throws Exception {
        Path qwen = Shared.require("assets/tokenizers/qwen3");
        TokenizerException present = assertThrows(TokenizerException.class,
                () -> AddedTokens.stage(qwen, List.of(), List.of("<|im_end|>"), "train.yaml"));
        assertTrue(present.getMessage().contains("'add_special_tokens' (train.yaml)")
                && present.getMessage().contains("already in the vocabulary") && present.getMessage().contains(
                        "151645"), present.getMessage());
        TokenizerException word = assertThrows(TokenizerException.class,
                () -> AddedTokens.stage(qwen, List.of("hello"), List.of(), "t"));
        assertTrue(word.getMessage().contains("'hello' is already in the vocabulary"), word.getMessage());
        TokenizerException empty = assertThrows(TokenizerException.class,
                () -> AddedTokens.stage(qwen, List.of(""), List.of(), "t"));
        assertTrue(empty.getMessage().contains("empty token"), empty.getMessage());
        TokenizerException twice = assertThrows(TokenizerException.class,
                () -> AddedTokens.stage(qwen, List.of("<x>"), List.of("<x>"), "t"));
        assertTrue(twice.getMessage().contains("twice"), twice.getMessage());
        Path spm = Shared.require("assets/tokenizers/llama2-spm");
        TokenizerException noJson = assertThrows(TokenizerException.class,
                () -> AddedTokens.stage(spm, List.of("<x>"), List.of(), "t"));
        assertTrue(noJson.getMessage().contains("tokenizer.json"), noJson.getMessage());
    }

    @Test
    void closingDeletesTheCopy() throws Exception {
        Path qwen = Shared.require("assets/tokenizers/qwen3");
        Path dir;
        try (AddedTokens added = AddedTokens.stage(qwen, List.of("<q>"), List.of(), "t")) {
            dir = added.directory();
            assertTrue(Files.isRegularFile(dir.resolve("tokenizer.json")));
        }
        assertFalse(Files.exists(dir));
    }

    private static int count(int[] ids, int id) {
        int n = 0;
        for (int i : ids) {
            n += i == id ? 1 : 0;
        }
        return n;
    }
}
