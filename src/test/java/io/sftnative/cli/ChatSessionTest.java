package io.sftnative.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.Generation;
import io.sftnative.model.GenerationOptions;
import io.sftnative.model.ModelConfig;
import io.sftnative.model.RandomInit;
import io.sftnative.template.Template;
import io.sftnative.template.Templates;
import io.sftnative.tokenizer.Tokenizer;
import io.sftnative.torch.TorchRuntime;

class ChatSessionTest {
    static final Path DEMO = Path.of("src/main/resources/io/sftnative/demo");
    static final String SYSTEM = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful"
            + " assistant.<|im_end|>\n";
    static final int IM_END = 750;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    static long[] ids(Tokenizer tok, String text) {
        return Arrays.stream(tok.encode(text)).asLongStream().toArray();
    }

    static long[] concat(long[]... parts) {
        return Arrays.stream(parts).flatMapToLong(Arrays::stream).toArray();
    }

    @Test
    void promptsFollowTheTemplateAndRepliesStopAtTheEndOfTurn() throws Exception {
        try (Tokenizer tok = Tokenizer.load(DEMO)) {
            assertEquals(IM_END, tok.tokenId("<|im_end|>"));
            Template qwen = Templates.resolve("qwen", tok, null);
            List<long[]> prompts = new ArrayList<>();
            ChatSession chat = new ChatSession(tok, qwen, null, p -> {
                prompts.add(p);
                return concat(ids(tok, "Hi there"), new long[] {IM_END, 5, 6}); // nothing after the stop counts
            });
            assertEquals("Hi there", chat.reply("hello"));
            long[] first = ids(tok, SYSTEM + "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n");
            assertArrayEquals(first, prompts.get(0));

            assertEquals("Hi there", chat.reply("how are you?"));
            assertArrayEquals(ids(tok, SYSTEM + "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
                    + "Hi there<|im_end|>\n<|im_start|>user\nhow are you?<|im_end|>\n<|im_start|>assistant\n"),
                    prompts.get(1));
            assertEquals(4, chat.history().size());

            chat.clear();
            chat.reply("hello");
            assertArrayEquals(first, prompts.get(2));

            // the model's own chat_template (tokenizer_config.json) renders the same ids for this tokenizer
            ChatSession auto = new ChatSession(tok, Templates.resolve(null, tok, null), null, p -> {
                prompts.add(p);
                return new long[] {IM_END};
            });
            assertEquals("", auto.reply("hello"));
            assertArrayEquals(first, prompts.get(3));

            // a custom system prompt replaces the default
            ChatSession sys = new ChatSession(tok, qwen, "Be brief.", p -> {
                prompts.add(p);
                return new long[] {IM_END};
            });
            sys.reply("hello");
            assertArrayEquals(ids(tok, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n"
                    + "<|im_start|>assistant\n"), prompts.get(4));
        }
    }

    @Test
    void replClearsAndExits() throws Exception {
        try (Tokenizer tok = Tokenizer.load(DEMO)) {
            List<long[]> prompts = new ArrayList<>();
            ChatSession chat = new ChatSession(tok, Templates.resolve("qwen", tok, null), null, p -> {
                prompts.add(p);
                return concat(ids(tok, "ok"), new long[] {IM_END});
            });
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
            int turns = chat.run(new BufferedReader(new StringReader("one\n\ntwo\n/clear\nthree\n/exit\nfour\n")), out);
            assertEquals(3, turns);
            assertEquals(3, prompts.size());
            String text = bytes.toString(StandardCharsets.UTF_8);
            assertEquals(3, text.split("Assistant: ok", -1).length - 1, text);
            assertTrue(text.contains("History has been removed."), text);
            assertEquals(2, chat.history().size()); // only "three" after the clear
            assertArrayEquals(ids(tok, SYSTEM + "<|im_start|>user\nthree<|im_end|>\n<|im_start|>assistant\n"),
                    prompts.get(2)); // no history after /clear
        }
    }

    /** A tiny random model over the demo vocabulary rigged so that greedy decoding always emits im_end. */
    static DecoderModel riggedModel() {
        Map<String, Object> k = new LinkedHashMap<>();
        k.put("model_type", "qwen2");
        k.put("vocab_size", 751);
        k.put("hidden_size", 32);
        k.put("intermediate_size", 48);
        k.put("num_hidden_layers", 2);
        k.put("num_attention_heads", 4);
        k.put("num_key_value_heads", 2);
        k.put("tie_word_embeddings", false);
        k.put("eos_token_id", IM_END);
        DecoderModel m = RandomInit.create(ModelConfig.fromMap(k), 3, ScalarType.Float);
        try (NoGradGuard g = new NoGradGuard()) {
            // residual stream dominated by +100 in dimension 0; the final norm keeps only that dimension; the head
            // maps it to im_end alone
            m.parameter("model.embed_tokens.weight").select(1, 0).fill_(new org.bytedeco.pytorch.Scalar(100.0));
            m.parameter("model.norm.weight").zero_().select(0, 0).fill_(new org.bytedeco.pytorch.Scalar(1.0));
            m.parameter("lm_head.weight").zero_().select(0, IM_END).select(0, 0)
                    .fill_(new org.bytedeco.pytorch.Scalar(1.0));
        }
        return m;
    }

    @Test
    void realGenerationReceivesTheTemplateIdsAndStopsAtImEnd() throws Exception {
        try (Tokenizer tok = Tokenizer.load(DEMO); DecoderModel model = riggedModel()) {
            List<long[]> prompts = new ArrayList<>();
            List<long[]> outputs = new ArrayList<>();
            Template qwen = Templates.resolve("qwen", tok, null);
            long[] stops = qwen.stopTokenIds(tok).stream().mapToLong(Integer::longValue).toArray();
            ChatSession chat = new ChatSession(tok, qwen, null, p -> {
                prompts.add(p);
                long[] o = Generation.generate(model, new long[][] {p},
                        GenerationOptions.greedy(8).withStopTokenIds(stops))[0];
                outputs.add(o);
                return o;
            });
            assertEquals("", chat.reply("hello"));
            assertArrayEquals(ids(tok, SYSTEM + "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"),
                    prompts.get(0));
            assertArrayEquals(new long[] {IM_END}, outputs.get(0));
        }
        assertTrue(torch.get_num_threads() >= 1);
    }
}
