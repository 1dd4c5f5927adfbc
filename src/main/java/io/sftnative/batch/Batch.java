package io.sftnative.batch;

/**
 * A collated batch as host arrays, B rows of T tokens, row-major (index {@code b * seqLen + t}). The trainer turns
 * them into int64 tensors of shape (B, T).
 *
 * @param inputIds      (B, T) token ids, right-padded with the pad id
 * @param labels        (B, T) target ids, -100 where no loss is taken (prompt, padding); NOT shifted: the loss
 *                      compares logits[:, :-1] with labels[:, 1:]
 * @param attentionMask (B, T) 1 = token, 0 = padding; with {@code segmentIds} the packed sequence number 1, 2, 3...
 *                      (attention is causal within a segment only, block-diagonal)
 * @param positionIds   (B, T) positions, restarting at 0 for every packed sequence; 0 on padding
 * @param targetTokens  labels that take a loss after the shift: count of labels[b, t] != -100 for t &ge; 1 (the
 *                      normaliser of the mean loss; sum it over accumulated micro-batches)
 * @param segmentIds    whether {@code attentionMask} holds segment ids (neat packing)
 */
public record Batch(int batchSize, int seqLen, long[] inputIds, long[] labels, long[] attentionMask,
        long[] positionIds, long targetTokens, boolean segmentIds) {

    public Batch {
        long n = (long) batchSize * seqLen;
        if (inputIds.length != n || labels.length != n || attentionMask.length != n || positionIds.length != n) {
            throw new IllegalArgumentException("batch arrays must hold " + batchSize + " x " + seqLen + " values");
        }
    }

    /**
     * Whether query position {@code i} may attend to key position {@code j} in row {@code b}: causal, never to
     * padding, and with segment ids only within the same packed sequence. (The reference for the trainer's mask.)
     */
    public boolean attends(int b, int i, int j) {
        long qi = attentionMask[b * seqLen + i];
        long kj = attentionMask[b * seqLen + j];
        if (j > i || kj == 0) {
            return false;
        }
        return !segmentIds || qi == kj;
    }
}
