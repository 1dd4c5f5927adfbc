package io.sftnative.batch;

import java.util.List;

import io.sftnative.data.Example;

/**
 * Pads examples to the longest in the batch (rounded up to a multiple of {@code padToMultipleOf}), labels with
 * -100, attention 0 and position 0 on padding (LLaMA-Factory's SFT collator; HF DataCollatorForSeq2Seq).
 */
public final class Collator {
    public static final int IGNORE_INDEX = -100;

    private final int padId;
    private final int padToMultipleOf;
    private final boolean segmentIds;

    /**
     * @param padId           the tokenizer's pad id (EOS when it has none)
     * @param padToMultipleOf round the padded length up to a multiple of this (1 = no rounding)
     * @param segmentIds      the examples' attention masks hold neat-packing segment ids
     */
    public Collator(int padId, int padToMultipleOf, boolean segmentIds) {
        if (padToMultipleOf < 1) {
            throw new IllegalArgumentException("pad_to_multiple_of must be >= 1, got " + padToMultipleOf);
        }
        this.padId = padId;
        this.padToMultipleOf = padToMultipleOf;
        this.segmentIds = segmentIds;
    }

    public Batch collate(List<Example> examples) {
        if (examples.isEmpty()) {
            throw new IllegalArgumentException("cannot collate an empty batch");
        }
        int longest = 0;
        for (Example e : examples) {
            longest = Math.max(longest, e.length());
        }
        int t = (longest + padToMultipleOf - 1) / padToMultipleOf * padToMultipleOf;
        int b = examples.size();
        long[] ids = new long[b * t];       // (B, T)
        long[] labels = new long[b * t];    // (B, T)
        long[] mask = new long[b * t];      // (B, T)
        long[] pos = new long[b * t];       // (B, T)
        long targets = 0;
        for (int r = 0; r < b; r++) {
            Example e = examples.get(r);
            int base = r * t;
            int n = e.length();
            for (int i = 0; i < n; i++) {
                ids[base + i] = e.inputIds()[i];
                labels[base + i] = e.labels()[i];
                mask[base + i] = e.attentionMask()[i];
                pos[base + i] = e.positionIds()[i];
                if (i > 0 && e.labels()[i] != IGNORE_INDEX) {
                    targets++;
                }
            }
            for (int i = n; i < t; i++) {
                ids[base + i] = padId;
                labels[base + i] = IGNORE_INDEX;
            }
        }
        return new Batch(b, t, ids, labels, mask, pos, targets, segmentIds);
    }
}
