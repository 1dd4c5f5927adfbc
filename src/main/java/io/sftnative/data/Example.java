package io.sftnative.data;

/**
 * One training row, host arrays of equal length L (no tensors here; the trainer makes them).
 *
 * @param inputIds      (L) token ids
 * @param labels        (L) target ids, {@code -100} where no loss is taken; NOT shifted (the loss shifts)
 * @param attentionMask (L) 1 for tokens; for neat packing the segment number 1, 2, 3... of each packed sequence;
 *                      0 for padding inside a packed row
 * @param positionIds   (L) positions, restarting at 0 for each packed sequence; 0 on padding
 */
public record Example(int[] inputIds, int[] labels, int[] attentionMask, int[] positionIds) {
    public Example {
        int n = inputIds.length;
        if (labels.length != n || attentionMask.length != n || positionIds.length != n) {
            throw new IllegalArgumentException("example arrays differ in length: " + n + ", " + labels.length + ", "
                    + attentionMask.length + ", " + positionIds.length);
        }
    }

    public int length() {
        return inputIds.length;
    }

    /** An unpacked example: attention 1 everywhere, positions 0..L-1. */
    public static Example of(int[] inputIds, int[] labels) {
        int[] mask = new int[inputIds.length];
        int[] pos = new int[inputIds.length];
        for (int i = 0; i < pos.length; i++) {
            mask[i] = 1;
            pos[i] = i;
        }
        return new Example(inputIds, labels, mask, pos);
    }

    /** Labels that take a loss (not -100). */
    public int trainableTokens() {
        int n = 0;
        for (int l : labels) {
            if (l != SupervisedEncoder.IGNORE_INDEX) {
                n++;
            }
        }
        return n;
    }
}
