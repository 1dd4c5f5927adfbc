package io.sftnative.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.config.ConfigException;
import io.sftnative.config.ModelArgs;
import io.sftnative.config.NewTokensArgs;
import io.sftnative.config.RawConfig;
import io.sftnative.model.VocabResize;
import io.sftnative.testing.Shared;
import io.sftnative.tokenizer.AddedTokens;
import io.sftnative.tokenizer.Tokenizer;

/**
 * LLaMA-Factory's new-token keys as read (comma lists, new_special_tokens_config taking precedence over
 * add_special_tokens, desc_init falling back to noise_init without descriptions, resize_vocab turned on by added
 * tokens) and the resize plan built from them with the real Qwen3 tokenizer.
 */
class NewTokensPlanTest {
    @TempDir
    Path dir;

    private static NewTokensArgs read(Map<String, ?> keys) {
        return ModelArgs.from(RawConfig.of(keys)).newTokens();
    }

    @Test
    void keysAreReadAsLlamaFactoryReadsThem() throws Exception {
        NewTokensArgs a = read(Map.of("add_tokens", " <a> , <b>", "add_special_tokens", "<s1>"));
        assertEquals(List.of("<a>", "<b>"), a.addTokens());
        assertEquals(List.of("<s1>"), a.addSpecialTokens());
        assertFalse(a.resizeVocab());
        assertTrue(a.resizes(), "adding tokens turns resize_vocab on");
        assertEquals("noise_init", read(Map.of("init_special_tokens", "desc_init")).initSpecialTokens(),
                "desc_init without new_special_tokens_config falls back to noise_init");
        assertFalse(read(Map.of()).resizes());
        assertTrue(read(Map.of("resize_vocab", true)).resizes());

        Path yaml = dir.resolve("tokens.yaml");
        Files.writeString(yaml, "\"<|START_OF_SVG|>\": Marks the beginning of an SVG document\n"
                + "\"<|END_OF_SVG|>\": Marks the end of an SVG document\n");
        NewTokensArgs d = read(Map.of("new_special_tokens_config", yaml.toString(), "add_special_tokens", "<x>",
                "init_special_tokens", "desc_init_w_noise"));
        assertEquals(List.of("<|START_OF_SVG|>", "<|END_OF_SVG|>"), d.addSpecialTokens(), "the config wins");
        assertEquals("desc_init_w_noise", d.initSpecialTokens());
        assertEquals("Marks the end of an SVG document", d.descriptions().get("<|END_OF_SVG|>"));

        Files.writeString(dir.resolve("list.yaml"), "- a\n- b\n");
        ConfigException notMap = assertThrows(ConfigException.class,
                () -> read(Map.of("new_special_tokens_config", dir.resolve("list.yaml").toString())));
        assertTrue(notMap.getMessage().contains("mapping of token to description"), notMap.getMessage());
        ConfigException missing = assertThrows(ConfigException.class,
                () -> read(Map.of("new_special_tokens_config", dir.resolve("none.yaml").toString())));
        assertTrue(missing.getMessage().contains("does not exist"), missing.getMessage());
        ConfigException bad = assertThrows(ConfigException.class,
                () -> read(Map.of("init_special_tokens", "zero_init")));
        assertTrue(bad.getMessage().contains("init_special_tokens"), bad.getMessage());
    }

    @Test
    void planHoldsTheTokenizerLengthNewIdsAndTokenizedDescriptions() throws Exception {
        Path qwen = Shared.require("assets/tokenizers/qwen3");
        Path yaml = dir.resolve("tokens.yaml");
        Files.writeString(yaml, "\"<|svg|>\": an SVG document\n");
        NewTokensArgs args = read(Map.of("add_tokens", "<tool_a>", "new_special_tokens_config", yaml.toString(),
                "init_special_tokens", "desc_init"));
        try (AddedTokens added = NewTokens.stage(args, qwen, s -> { });
                Tokenizer tok = Tokenizer.load(added.directory())) {
            VocabResize.Plan p = NewTokens.plan(args, tok, added);
            assertEquals(151671, p.tokenizerLength(), "len(tokenizer): 151669 + 2");
            assertArrayEquals(new int[] {151669, 151670}, p.newTokenIds());
            assertEquals(1, p.descriptions().size());
            assertEquals(151670, p.descriptions().get(0).tokenId());
            assertArrayEquals(tok.encode("an SVG document"), p.descriptions().get(0).textIds());
            assertEquals("desc_init", p.init());
        }
        assertNull(NewTokens.plan(read(Map.of()), null, null), "no resize_vocab: no plan");
    }
}
