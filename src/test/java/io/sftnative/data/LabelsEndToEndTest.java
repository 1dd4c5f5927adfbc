package io.sftnative.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.template.EncodedPair;
import io.sftnative.template.Message;
import io.sftnative.template.Template;
import io.sftnative.template.Templates;
import io.sftnative.testing.Shared;
import io.sftnative.tokenizer.Tokenizer;

/**
 * Label masks through the whole pipeline (file → template → labels → cache) with the real Qwen2.5 tokenizer, checked
 * against ids built independently from the template's (source, target) pairs.
 */
class LabelsEndToEndTest {
    static final int X = SupervisedEncoder.IGNORE_INDEX;
    static Tokenizer tok;

    @TempDir
    Path dir;

    @BeforeAll
    static void load() {
        tok = Tokenizer.load(Shared.require("assets/tokenizers/qwen2_5"));
    }

    @AfterAll
    static void close() {
        if (tok != null) {
            tok.close();
        }
    }

    static final List<Message> CONVERSATION = List.of(Message.user("Hi"), Message.assistant("Hello!"),
            Message.user("Add 2 and 2."), Message.assistant("4"));

    private Path file() throws Exception {
        Path f = dir.resolve("chat.json");
        Files.writeString(f, """
                [{"messages": [
                  {"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                  {"role": "user", "content": "Add 2 and 2."}, {"role": "assistant", "content": "4"}]}]
                """);
        Files.writeString(dir.resolve("dataset_info.json"), """
                {"chat": {"file_name": "chat.json", "formatting": "sharegpt", "columns": {"messages": "messages"},
                  "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                           "assistant_tag": "assistant", "system_tag": "system"}}}
                """);
        return f;
    }

    private Example load(Template t, int cutoff, boolean trainOnPrompt, boolean maskHistory, boolean packing,
            boolean neat) throws Exception {
        file();
        var o = new DatasetLoader.Options(List.of("chat"), List.of(), dir, "sft", cutoff, 0, 0, packing, neat,
                trainOnPrompt, maskHistory, 1, false, dir.resolve("cache"), 1, false);
        try (LoadedData d = DatasetLoader.load(o, tok, t, m -> {})) {
            assertEquals(1, d.train().size());
            return d.train().get(0);
        }
    }

    private static int[] masked(int[] a) {
        int[] m = new int[a.length];
        Arrays.fill(m, X);
        return m;
    }

    private static int[] cat(int[]... parts) {
        List<int[]> l = new ArrayList<>(List.of(parts));
        return SupervisedEncoder.flatten(l);
    }

    @Test
    void qwenDefaultTrainOnPromptAndMaskHistory() throws Exception {
        Template qwen = Templates.named("qwen");
        List<EncodedPair> p = qwen.encodeMultiturn(tok, CONVERSATION, "Be brief.", null);
        int[] s0 = p.get(0).source();
        int[] t0 = p.get(0).target();
        int[] s1 = p.get(1).source();
        int[] t1 = p.get(1).target();
        assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                + "<|im_start|>assistant\n", tok.decode(s0, false));
        assertEquals("Hello!<|im_end|>\n", tok.decode(t0, false));

        Example e = load(qwen, 1024, false, false, false, false);
        assertArrayEquals(cat(s0, t0, s1, t1), e.inputIds());
        assertArrayEquals(cat(masked(s0), t0, masked(s1), t1), e.labels());

        Example prompt = load(qwen, 1024, true, false, false, false);
        assertArrayEquals(prompt.inputIds(), prompt.labels());

        Example history = load(qwen, 1024, false, true, false, false);
        assertArrayEquals(cat(s0, t0, s1, t1), history.inputIds());
        assertArrayEquals(cat(masked(s0), masked(t0), masked(s1), t1), history.labels());
    }

    @Test
    void cutoffTruncatesTheLaterTurn() throws Exception {
        Template qwen = Templates.named("qwen");
        List<EncodedPair> p = qwen.encodeMultiturn(tok, CONVERSATION, "Be brief.", null);
        int first = p.get(0).source().length + p.get(0).target().length;
        int cutoff = first + 3; // the second turn gets 3 tokens: infer_seqlen(S1, T1, 3)
        int[] lens = SupervisedEncoder.inferSeqlen(p.get(1).source().length, p.get(1).target().length, 3);
        Example e = load(qwen, cutoff, false, false, false, false);
        assertEquals(first + lens[0] + lens[1], e.length());
        assertEquals(cutoff, e.length());
    }

    @Test
    void efficientEosTemplateLabelsEosOnTheNextPrompt() throws Exception {
        Template b = Templates.named("baichuan2"); // text slots, so it runs on any tokenizer
        List<EncodedPair> p = b.encodeMultiturn(tok, CONVERSATION, "Be brief.", null);
        int eos = b.eosId(tok);
        Example e = load(b, 1024, false, false, false, false);
        int[] s1Label = masked(p.get(1).source());
        s1Label[0] = eos;
        assertArrayEquals(cat(p.get(0).source(), p.get(0).target(), p.get(1).source(), p.get(1).target(),
                new int[] {eos}), e.inputIds());
        assertArrayEquals(cat(masked(p.get(0).source()), p.get(0).target(), s1Label, p.get(1).target(),
                new int[] {eos}), e.labels());
    }

    @Test
    void neatPackedRowHasSegmentsAndFullLength() throws Exception {
        Example e = load(Templates.named("qwen"), 256, false, false, true, true);
        assertEquals(256, e.length(), "packed rows are cutoff_len long");
        int real = 0;
        while (real < e.length() && e.attentionMask()[real] == 1) {
            real++;
        }
        for (int i = real; i < e.length(); i++) {
            assertEquals(0, e.attentionMask()[i]);
            assertEquals(X, e.labels()[i]);
            assertEquals(tok.padId(), e.inputIds()[i]);
        }
        assertTrue(real > 10 && real < 256);
    }
}
