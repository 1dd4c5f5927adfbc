package io.sftnative.data;

import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;

import io.sftnative.files.AtomicFiles;
import io.sftnative.tokenizer.Tokenizer;

/** What {@code preflight} shows: the preprocessing report, one example with its masked parts, and the dump. */
public final class Preflight {
    private Preflight() {}

    public static void printReport(PrintStream out, String title, PreprocessReport r) {
        out.println("== " + title);
        out.println(r.summary());
        out.printf("trainable tokens: %d of %d (%.1f%%)%n", r.trainableTokens(), r.tokens(),
                100 * r.trainableFraction());
        out.println("token lengths (examples before packing):");
        out.print(r.histogram());
    }

    /**
     * Example {@code e} decoded run by run: text that takes no loss (label -100) inside «...», trained text plain.
     * Special tokens are kept as text.
     */
    public static String showExample(Tokenizer tok, Example e) {
        StringBuilder sb = new StringBuilder();
        int[] ids = e.inputIds();
        int[] labels = e.labels();
        int i = 0;
        while (i < ids.length) {
            boolean masked = labels[i] == SupervisedEncoder.IGNORE_INDEX;
            int j = i;
            while (j < ids.length && (labels[j] == SupervisedEncoder.IGNORE_INDEX) == masked) {
                j++;
            }
            String text = tok == null ? Arrays.toString(Arrays.copyOfRange(ids, i, j))
                    : tok.decode(Arrays.copyOfRange(ids, i, j), false);
            sb.append(masked ? "«" + text + "»" : text);
            i = j;
        }
        return sb.toString();
    }

    /**
     * Writes every example (train, then eval) as one JSON object per line: input_ids, labels and text (the
     * decoded input_ids, special tokens kept); atomically.
     */
    public static void dump(Path file, LoadedData data, Tokenizer tok) throws IOException {
        AtomicFiles.write(file, os -> {
            Writer w = new OutputStreamWriter(os, StandardCharsets.UTF_8);
            JsonFactory f = new JsonFactory();
            writeSet(w, f, "train", data.train(), tok);
            writeSet(w, f, "eval", data.eval(), tok);
            w.flush();
        });
    }

    private static void writeSet(Writer w, JsonFactory f, String split, ExampleSet set, Tokenizer tok)
            throws IOException {
        for (int i = 0; i < set.size(); i++) {
            Example e = set.get(i);
            JsonGenerator g = f.createGenerator(w);
            g.disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);
            g.writeStartObject();
            g.writeStringField("split", split);
            g.writeFieldName("input_ids");
            g.writeArray(e.inputIds(), 0, e.length());
            g.writeFieldName("labels");
            g.writeArray(e.labels(), 0, e.length());
            if (tok != null) {
                g.writeStringField("text", tok.decode(e.inputIds(), false));
            }
            g.writeEndObject();
            g.close();
            w.write('\n');
        }
    }
}
