package io.sftnative.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;

import io.sftnative.data.RecordReader.RawRecord;
import io.sftnative.template.EncodedPair;
import io.sftnative.template.Template;
import io.sftnative.template.TemplateException;
import io.sftnative.tokenizer.Tokenizer;
import io.sftnative.tokenizer.TokenizerException;

/**
 * Turns raw records into stored rows in two steps: {@link #encode} (convert, render, tokenize, mask) runs on small
 * sub-chunks in parallel; {@link #rows} then packs (sft with packing) or cuts blocks (pt) per chunk of 1000 records
 * (LLaMA-Factory's preprocessing batch, within which its knapsack and block grouping work), in order.
 */
final class ChunkProcessor {
    /** LLaMA-Factory's preprocessing_batch_size: packing and pt blocks work within such chunks. */
    static final int CHUNK = 1000;
    /** Records per parallel encoding task (divides CHUNK, so tasks never straddle a chunk). */
    static final int SUB_CHUNK = 100;

    /** A record and the dataset it belongs to. */
    record Item(RawRecord record, DatasetSpec spec) {}

    /** Encoded examples ({ids, labels}) of a sub-chunk, in record order, and its report. */
    record Encoded(List<int[][]> examples, PreprocessReport.Builder report) {}

    /**
     * @param tokenizer null when every dataset is pre-tokenized
     * @param template  null for pt and pre-tokenized data
     */
    record Settings(boolean pretrain, int cutoffLen, boolean packing, SupervisedEncoder.Masking masking,
            Tokenizer tokenizer, Template template, int eosId, int padId, int bosId, boolean addBos) {
        /** LLaMA-Factory packs sft examples into cutoff_len - 1 tokens (rows are then padded to cutoff_len). */
        int encodeCutoff() {
            return packing && !pretrain ? cutoffLen - 1 : cutoffLen;
        }
    }

    private final Settings s;

    ChunkProcessor(Settings s) {
        this.s = s;
    }

    Encoded encode(List<Item> chunk) {
        PreprocessReport.Builder report = new PreprocessReport.Builder(s.cutoffLen());
        report.read = chunk.size();
        List<int[][]> examples = new ArrayList<>(chunk.size());
        for (Item item : chunk) {
            RawRecord r = item.record();
            String loc = r.location();
            try {
                if (r.error() != null) {
                    throw new DroppedException(r.error());
                }
                examples.add(s.pretrain() ? pretrainExample(r.node(), item.spec())
                        : supervisedExample(r, item.spec(), report, loc));
            } catch (DroppedException e) {
                report.drop(e.reason(), loc);
            } catch (TemplateException | TokenizerException e) {
                report.drop(shorten(e.getMessage()), loc);
            }
        }
        return new Encoded(examples, report);
    }

    /** The rows of one chunk's examples (packed, or pt blocks), counted in {@code report}. */
    List<Packing.Row> rows(List<int[][]> examples, PreprocessReport.Builder report) {
        List<Packing.Row> rows = s.pretrain() ? pretrainRows(examples, report) : supervisedRows(examples, report);
        report.rows += rows.size();
        return rows;
    }

    /** {ids, labels} of a supervised example, counted in the report (drops throw). */
    private int[][] supervisedExample(RawRecord r, DatasetSpec spec, PreprocessReport.Builder report, String loc) {
        int cutoff = s.encodeCutoff();
        JsonNode node = r.node();
        if (node.has("input_ids")) {
            int[][] ex = pretokenized(node);
            boolean cut = ex[0].length > cutoff && !s.packing();
            if (ex[0].length > cutoff && s.packing()) {
                throw new DroppedException("pre-tokenized example longer than the packing cutoff (cutoff_len - 1)");
            }
            if (cut) {
                ex = new int[][] {Arrays.copyOf(ex[0], cutoff), Arrays.copyOf(ex[1], cutoff)};
            }
            report.kept(ex[0].length, trainable(ex[1]), cut, loc);
            return ex;
        }
        requireTokenizer(spec, r);
        Conversation c = Converter.convert(node, spec);
        if (c.prompt().size() % 2 != 1 || c.response().size() != 1) {
            throw new DroppedException("no response: an example needs an odd number of prompt messages and exactly"
                    + " one response");
        }
        List<EncodedPair> pairs = s.template().encodeMultiturn(s.tokenizer(), c.messages(), c.system(), c.tools());
        SupervisedEncoder.Encoded e = SupervisedEncoder.encode(pairs, cutoff, s.masking(), s.eosId());
        if (e.ids().length == 0) {
            throw new DroppedException("empty after tokenization");
        }
        report.kept(e.ids().length, trainable(e.labels()), e.truncated(), loc);
        return new int[][] {e.ids(), e.labels()};
    }

    private List<Packing.Row> supervisedRows(List<int[][]> examples, PreprocessReport.Builder report) {
        if (!s.packing()) {
            List<Packing.Row> rows = new ArrayList<>(examples.size());
            for (int[][] ex : examples) {
                rows.add(new Packing.Row(ex[0], ex[1], new int[] {ex[0].length}));
            }
            return rows;
        }
        return Packing.pack(examples, s.encodeCutoff(), s.padId());
    }

    /** {ids (text + EOS), labels = ids} of a pretraining text, or a pre-tokenized record as given. */
    private int[][] pretrainExample(JsonNode node, DatasetSpec spec) {
        if (node.has("input_ids")) {
            return pretokenized(node);
        }
        if (s.tokenizer() == null) {
            throw new DataException("dataset '" + spec.name() + "' holds text, which needs a tokenizer: set"
                    + " model_name_or_path", null, -1, spec.name());
        }
        int[] text = s.tokenizer().encode(Converter.text(node, spec));
        int[] ids = Arrays.copyOf(text, text.length + 1);
        ids[text.length] = s.eosId();
        return new int[][] {ids, ids};
    }

    /**
     * pt rows. Packing: the chunk's texts concatenated and cut into cutoff_len blocks, the remainder discarded, BOS
     * over each block's first token when the tokenizer adds BOS. No packing: each text (BOS + text + EOS) truncated.
     */
    private List<Packing.Row> pretrainRows(List<int[][]> examples, PreprocessReport.Builder report) {
        List<Packing.Row> rows = new ArrayList<>();
        int block = s.cutoffLen();
        if (!s.packing()) {
            for (int[][] ex : examples) {
                int[] ids = ex[0];
                int[] labels = ex[1];
                if (s.addBos() && s.bosId() >= 0) {
                    ids = SupervisedEncoder.concat(new int[] {s.bosId()}, ids);
                    labels = SupervisedEncoder.concat(new int[] {s.bosId()}, labels);
                }
                boolean cut = ids.length > block;
                ids = Arrays.copyOf(ids, Math.min(ids.length, block));
                labels = Arrays.copyOf(labels, ids.length);
                report.kept(ids.length, trainable(labels), cut, "");
                rows.add(new Packing.Row(ids, labels, new int[] {ids.length}));
            }
            return rows;
        }
        long total = 0;
        for (int[][] ex : examples) {
            total += ex[0].length;
            report.kept(ex[0].length, trainable(ex[1]), false, "");
        }
        int[] all = new int[(int) total];
        int[] allLabels = new int[(int) total];
        int at = 0;
        for (int[][] ex : examples) {
            System.arraycopy(ex[0], 0, all, at, ex[0].length);
            System.arraycopy(ex[1], 0, allLabels, at, ex[1].length);
            at += ex[0].length;
        }
        int usable = (int) (total / block * block);
        report.remainder += total - usable;
        for (int b = 0; b < usable; b += block) {
            int[] ids = Arrays.copyOfRange(all, b, b + block);
            int[] labels = Arrays.copyOfRange(allLabels, b, b + block);
            if (s.addBos() && s.bosId() >= 0) {
                ids[0] = s.bosId();
                labels[0] = s.bosId();
            }
            rows.add(new Packing.Row(ids, labels, new int[] {block}));
        }
        return rows;
    }

    /** The pre-tokenized format: {"input_ids": [...], "labels": [...] (optional, -100 = ignored)}. */
    private int[][] pretokenized(JsonNode node) {
        int[] ids = intArray(node.get("input_ids"), "input_ids", false);
        if (ids.length == 0) {
            throw new DroppedException("pre-tokenized example with empty input_ids");
        }
        int[] labels = node.has("labels") && !node.get("labels").isNull()
                ? intArray(node.get("labels"), "labels", true) : ids.clone();
        if (labels.length != ids.length) {
            throw new DroppedException("pre-tokenized example: labels and input_ids differ in length");
        }
        return new int[][] {ids, labels};
    }

    private int[] intArray(JsonNode a, String key, boolean allowIgnore) {
        if (!a.isArray()) {
            throw new DroppedException("pre-tokenized example: '" + key + "' is not a list of integers");
        }
        int vocab = s.tokenizer() == null ? Integer.MAX_VALUE : s.tokenizer().vocabSize();
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = a.get(i);
            if (!v.canConvertToInt() || !v.isIntegralNumber()) {
                throw new DroppedException("pre-tokenized example: '" + key + "' is not a list of integers");
            }
            int x = v.asInt();
            boolean ok = (x >= 0 && x < vocab) || (allowIgnore && x == SupervisedEncoder.IGNORE_INDEX);
            if (!ok) {
                throw new DroppedException("pre-tokenized example: '" + key + "' holds ids outside the vocabulary"
                        + (s.tokenizer() == null ? "" : " (size " + vocab + ")"));
            }
            out[i] = x;
        }
        return out;
    }

    private void requireTokenizer(DatasetSpec spec, RawRecord r) {
        if (s.tokenizer() == null || s.template() == null) {
            throw new DataException(r.location() + ": dataset '" + spec.name() + "' holds text, which needs a"
                    + " tokenizer and a template: set model_name_or_path and template (only pre-tokenized data with"
                    + " input_ids can go without)", r.file(), r.line(), spec.name());
        }
    }

    private static int trainable(int[] labels) {
        int n = 0;
        for (int l : labels) {
            if (l != SupervisedEncoder.IGNORE_INDEX) {
                n++;
            }
        }
        return n;
    }

    private static String shorten(String m) {
        return m == null ? "error" : m.length() > 200 ? m.substring(0, 200) + "..." : m;
    }
}
