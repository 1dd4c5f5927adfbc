package io.sftnative.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

import io.sftnative.template.EncodedPair;

/**
 * Turn pairs into input ids and labels with LLaMA-Factory's cutoff, masking and efficient-EOS rules
 * (../shared/specs/llamafactory-sft.md section 3). Labels are NOT shifted; the loss shifts them.
 */
public final class SupervisedEncoder {
    public static final int IGNORE_INDEX = -100;

    private SupervisedEncoder() {}

    /** The label rules: which parts are trained on. */
    public record Masking(boolean trainOnPrompt, boolean maskHistory, boolean efficientEos) {
        public Masking {
            if (trainOnPrompt && maskHistory) {
                throw new DataException("train_on_prompt and mask_history cannot be combined: mask_history masks"
                        + " earlier turns, train_on_prompt unmasks prompts");
            }
            if (trainOnPrompt && efficientEos) {
                throw new DataException("train_on_prompt cannot be used with this template: it uses efficient_eos"
                        + " (baichuan, chatglm), where prompt positions carry the EOS label");
            }
        }
    }

    /**
     * @param ids       input ids
     * @param labels    same length; {@link #IGNORE_INDEX} where no loss is taken
     * @param truncated whether cutoff_len cut any source or target token (or dropped whole turns)
     */
    public record Encoded(int[] ids, int[] labels, boolean truncated) {}

    /** Lengths kept of a (source, target) pair within {@code cutoff} tokens: {source, target}. */
    public static int[] inferSeqlen(int sourceLen, int targetLen, int cutoff) {
        int maxTarget;
        if (targetLen * 2 < cutoff) { // truncate source
            maxTarget = cutoff;
        } else if (sourceLen * 2 < cutoff) { // truncate target
            maxTarget = cutoff - sourceLen;
        } else { // truncate both, proportionally (Python: int(cutoff * (T / (S + T))))
            maxTarget = (int) (cutoff * ((double) targetLen / (sourceLen + targetLen)));
        }
        int newTarget = Math.min(maxTarget, targetLen);
        int maxSource = Math.max(cutoff - newTarget, 0);
        int newSource = Math.min(maxSource, sourceLen);
        return new int[] {newSource, newTarget};
    }

    /**
     * @param pairs  (source, target) ids per turn, in conversation order
     * @param cutoff the maximum length (cutoff_len, minus 1 when packing)
     * @param eosId  the template's EOS id (for efficient_eos)
     */
    public static Encoded encode(List<EncodedPair> pairs, int cutoff, Masking m, int eosId) {
        List<EncodedPair> order = new ArrayList<>(pairs);
        if (m.maskHistory()) {
            Collections.reverse(order); // the last turn gets the budget first
        }
        int total = m.efficientEos() ? 1 : 0;
        boolean truncated = false;
        List<int[]> idParts = new ArrayList<>();
        List<int[]> labelParts = new ArrayList<>();
        for (int t = 0; t < order.size(); t++) {
            EncodedPair p = order.get(t);
            if (total >= cutoff) {
                truncated = true; // whole turns left out
                break;
            }
            int[] lens = inferSeqlen(p.source().length, p.target().length, cutoff - total);
            int s = lens[0];
            int l = lens[1];
            truncated |= s < p.source().length || l < p.target().length;
            int[] src = Arrays.copyOf(p.source(), s); // keep heads, cut tails
            int[] tgt = Arrays.copyOf(p.target(), l);
            total += s + l;
            int[] srcLabel;
            if (m.trainOnPrompt()) {
                srcLabel = src.clone();
            } else {
                srcLabel = new int[s];
                Arrays.fill(srcLabel, IGNORE_INDEX);
                if (m.efficientEos() && t > 0 && s > 0) {
                    srcLabel[0] = eosId; // the previous answer ends here: learn EOS on its first prompt token
                }
            }
            int[] tgtLabel = tgt.clone();
            if (m.maskHistory() && t > 0) {
                Arrays.fill(tgtLabel, IGNORE_INDEX);
            }
            int[] ids = concat(src, tgt);
            int[] labels = concat(srcLabel, tgtLabel);
            if (m.maskHistory()) {
                idParts.addFirst(ids);
                labelParts.addFirst(labels);
            } else {
                idParts.add(ids);
                labelParts.add(labels);
            }
        }
        if (m.efficientEos()) {
            idParts.add(new int[] {eosId});
            labelParts.add(new int[] {eosId});
        }
        return new Encoded(flatten(idParts), flatten(labelParts), truncated);
    }

    static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    static int[] flatten(List<int[]> parts) {
        int n = 0;
        for (int[] p : parts) {
            n += p.length;
        }
        int[] out = new int[n];
        int at = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }
}
