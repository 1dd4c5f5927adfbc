package io.sftnative.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.testing.Shared;

class TokenizerTest {
    static final List<String> TEXTS = List.of(
            "Hello world",
            "  leading spaces and trailing  ",
            "Describe a process of making crepes.\n\n1. Mix flour, eggs and milk.",
            "识别并解释给定列表中的两个科学理论：细胞理论和日心说。",
            "emoji 🙂👍🏽 and accents: café naïve Ünïcödé",
            "code:\n\tdef f(x):\n\t\treturn x ** 2  # comment\n",
            "numbers 1234567890 3.14159 -42");

    static Tokenizer load(String name) {
        return Tokenizer.load(Shared.require("assets/tokenizers/" + name));
    }

    @Test
    void qwenSpecialTokensAreIdsAndConfigIsRead() {
        try (Tokenizer t = load("qwen2_5")) {
            assertEquals(151644, t.tokenId("<|im_start|>"));
            assertEquals(151645, t.tokenId("<|im_end|>"));
            assertEquals(151645, t.eosId(), "eos_token from tokenizer_config.json");
            assertEquals(151643, t.padId(), "pad_token <|endoftext|>");
            assertEquals(-1, t.bosId(), "Qwen2.5 has no BOS");
            assertNotNull(t.config().chatTemplate());
            // Special-token text inside the input becomes the id, never pieces of "<|im_start|>".
            int[] ids = t.encode("<|im_start|>user\nHi<|im_end|>\n");
            assertEquals(151644, ids[0]);
            assertEquals(151645, ids[ids.length - 2]);
            assertTrue(t.vocabSize() >= 151665, "vocab + added tokens: " + t.vocabSize());
        }
    }

    @Test
    void llama3HasBosButEncodeNeverAddsIt() {
        try (Tokenizer t = load("llama3")) {
            assertEquals(128000, t.bosId());
            assertEquals(128001, t.eosId());
            assertEquals(128009, t.tokenId("<|eot_id|>"));
            assertEquals(128006, t.tokenId("<|start_header_id|>"));
            assertEquals(-1, t.specialTokens().padId(), "Llama-3 has no pad token");
            assertEquals(128001, t.padId(), "pad falls back to EOS");
            int[] ids = t.encode("Hello");
            assertEquals(1, ids.length, "no implicit BOS/EOS");
            assertEquals(9906, ids[0], "'Hello' is 9906 in Llama-3's vocabulary");
            assertEquals(128256, t.vocabSize());
        }
    }

    @Test
    void gpt2AndMistral() {
        try (Tokenizer g = load("gpt2"); Tokenizer m = load("mistral")) {
            assertEquals(50256, g.eosId());
            assertEquals(50257, g.vocabSize());
            assertArrayEquals(new int[] {15496, 995}, g.encode("Hello world"), "GPT-2's well-known ids");
            assertEquals(1, m.bosId());
            assertEquals(2, m.eosId());
            int[] ids = m.encode("Hello");
            assertFalse(ids[0] == 1, "no implicit BOS although add_bos_token is true");
            assertEquals(1, m.encode("<s>")[0]);
        }
    }

    @Test
    void sentencepieceLlama2() {
        try (Tokenizer t = load("llama2-spm")) {
            assertEquals(1, t.bosId());
            assertEquals(2, t.eosId());
            assertEquals(0, t.tokenId("<unk>"));
            assertEquals(32000, t.vocabSize());
            assertArrayEquals(new int[] {15043, 3186}, t.encode("Hello world"), "▁Hello ▁world");
            int[] ids = t.encode("[INST] hi </s>");
            assertEquals(2, ids[ids.length - 1], "special token text becomes its id");
            assertTrue(t.config().addBosToken());
            assertNull(t.config().chatTemplate());
            assertEquals("Hello world", t.decode(t.encode("Hello world"), true));
        }
    }

    @Test
    void decodeInvertsEncodeOnEveryTokenizer() {
        for (String name : List.of("qwen2_5", "qwen3", "llama3", "gpt2", "mistral", "llama2-spm")) {
            try (Tokenizer t = load(name)) {
                for (String text : TEXTS) {
                    int[] ids = t.encode(text);
                    String back = t.decode(ids, false);
                    if (name.equals("mistral") || name.equals("llama2-spm")) {
                        // sentencepiece-style tokenizers add a dummy prefix space that decoding removes
                        assertEquals(text.strip(), back.strip(), name + ": " + text);
                    } else {
                        assertEquals(text, back, name + ": " + text);
                    }
                }
            }
        }
    }

    @Test
    void noTruncationOfLongTexts() {
        try (Tokenizer t = load("qwen2_5")) {
            assertEquals(4000, t.encode("hello world ".repeat(2000).strip()).length, "2000 x (hello, Ġworld)");
        }
    }

    @Test
    void decodeKeepsOrSkipsSpecialTokens() {
        try (Tokenizer t = load("qwen2_5")) {
            int[] ids = t.encode("<|im_start|>user\nHi<|im_end|>");
            assertEquals("<|im_start|>user\nHi<|im_end|>", t.decode(ids, false));
            assertEquals("user\nHi", t.decode(ids, true));
        }
    }

    @Test
    void closedTokenizerFailsLoudly() {
        Tokenizer t = load("gpt2");
        t.close();
        assertThrows(IllegalStateException.class, () -> t.encode("x"));
    }

    @Test
    void missingOrBrokenFilesGiveClearErrors(@TempDir Path dir) throws Exception {
        var e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().contains("neither tokenizer.json nor tokenizer.model"), e.getMessage());
        assertThrows(TokenizerException.class, () -> Tokenizer.load(dir.resolve("absent")));
        Files.writeString(dir.resolve("tokenizer.json"), "{ not json");
        assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        Files.writeString(dir.resolve("tokenizer.json"), "{}");
        assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
    }

    @Test
    void tokenizerOnlyDirectoryWithConfigCopy(@TempDir Path dir) throws Exception {
        Path src = Shared.require("assets/tokenizers/gpt2");
        Files.copy(src.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertEquals(-1, t.eosId(), "without tokenizer_config.json no EOS is known");
            assertEquals(50256, t.tokenId("<|endoftext|>"));
        }
        Files.copy(src.resolve("tokenizer_config.json"), dir.resolve("tokenizer_config.json"));
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertEquals(50256, t.eosId());
        }
    }
}
