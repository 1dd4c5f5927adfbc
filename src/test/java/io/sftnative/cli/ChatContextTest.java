package io.sftnative.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

import io.sftnative.template.Template;
import io.sftnative.template.Templates;
import io.sftnative.tokenizer.Tokenizer;

/** Issue 13: chat prompts stay within the model's context; nothing grows without bound. */
class ChatContextTest {
    static final int CONTEXT = 120;
    static final int MAX_NEW = 16;

    @Test
    void aMessageLongerThanTheContextIsRefusedAndTheSessionGoesOn() throws Exception {
        try (Tokenizer tok = Tokenizer.load(ChatSessionTest.DEMO)) {
            Template qwen = Templates.resolve("qwen", tok, null);
            List<long[]> prompts = new ArrayList<>();
            List<Integer> rooms = new ArrayList<>();
            ChatSession chat = new ChatSession(tok, qwen, null, CONTEXT, MAX_NEW, new ChatSession.Responder() {
                @Override
                public long[] respond(long[] p) {
                    throw new AssertionError("the bounded overload is used");
                }

                @Override
                public long[] respond(long[] p, int maxNew) {
                    prompts.add(p);
                    rooms.add(maxNew);
                    return ChatSessionTest.concat(ChatSessionTest.ids(tok, "ok"),
                            new long[] {ChatSessionTest.IM_END});
                }
            });
            String huge = "word ".repeat(20_000); // far beyond 120 tokens
            var e = assertThrows(ChatSession.TooLongException.class, () -> chat.reply(huge));
            assertTrue(e.getMessage().contains("the model's context is 120 tokens"), e.getMessage());
            assertTrue(prompts.isEmpty(), "nothing generated");

            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
            int turns = chat.run(new BufferedReader(new StringReader(huge + "\nhello\n")), out);
            String text = bytes.toString(StandardCharsets.UTF_8);
            assertEquals(1, turns, text);
            assertTrue(text.contains("error: this message is"), text);
            assertTrue(text.contains("Assistant: ok"), text);
        }
    }

    @Test
    void aConversationThatOutgrowsTheContextForgetsTheOldestTurnsAndSaysSo() throws Exception {
        try (Tokenizer tok = Tokenizer.load(ChatSessionTest.DEMO)) {
            Template qwen = Templates.resolve("qwen", tok, null);
            List<long[]> prompts = new ArrayList<>();
            ChatSession chat = new ChatSession(tok, qwen, null, CONTEXT, MAX_NEW, new ChatSession.Responder() {
                @Override
                public long[] respond(long[] p) {
                    return respond(p, MAX_NEW);
                }

                @Override
                public long[] respond(long[] p, int maxNew) {
                    prompts.add(p);
                    assertTrue(p.length + maxNew <= CONTEXT, "prompt " + p.length + " + answer " + maxNew);
                    return ChatSessionTest.concat(ChatSessionTest.ids(tok, "fine, thanks"),
                            new long[] {ChatSessionTest.IM_END});
                }
            });
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
            String lines = "tell me about the weather today\n".repeat(8);
            int turns = chat.run(new BufferedReader(new StringReader(lines)), out);
            String text = bytes.toString(StandardCharsets.UTF_8);
            assertEquals(8, turns, text);
            assertTrue(text.contains("(the conversation outgrew the model's context of 120 tokens: the"), text);
            for (long[] p : prompts) {
                assertTrue(p.length <= CONTEXT - MAX_NEW, "prompt of " + p.length + " tokens");
            }
            assertTrue(chat.history().size() < 16, "history was cut");
        }
    }

    @Test
    void generateRefusesAPromptLongerThanTheContextBeforeAnyWork() {
        io.sftnative.torch.TorchRuntime.boot(2);
        java.util.Map<String, Object> k = new java.util.LinkedHashMap<>();
        k.put("model_type", "qwen2");
        k.put("vocab_size", 64);
        k.put("hidden_size", 16);
        k.put("intermediate_size", 16);
        k.put("num_hidden_layers", 1);
        k.put("num_attention_heads", 2);
        k.put("num_key_value_heads", 1);
        k.put("max_position_embeddings", 32);
        try (io.sftnative.model.DecoderModel m = io.sftnative.model.RandomInit.create(
                io.sftnative.model.ModelConfig.fromMap(k), 3, org.bytedeco.pytorch.global.torch.ScalarType.Float)) {
            long[] prompt = new long[33];
            var e = assertThrows(IllegalArgumentException.class, () -> io.sftnative.model.Generation.generate(m,
                    new long[][] {prompt}, io.sftnative.model.GenerationOptions.greedy(4)));
            assertTrue(e.getMessage().contains("the prompt is 33 tokens but the model's context is 32"),
                    e.getMessage());
            assertEquals(4, io.sftnative.model.Generation.generate(m, new long[][] {new long[32]},
                    io.sftnative.model.GenerationOptions.greedy(4))[0].length);
        }
    }
}
