package io.sftnative.testing;

import org.bytedeco.pytorch.Tensor;

import com.fasterxml.jackson.databind.JsonNode;

import io.sftnative.model.DecoderModel;

/** What the golden-parity tests share: token-id rows from the generators' JSON, and clearing gradients between cases. */
public final class GoldenData {
    private GoldenData() {}

    /** A JSON array of token-id rows as {@code long[rows][ids]}. */
    public static long[][] ids(JsonNode rows) {
        long[][] out = new long[rows.size()][];
        for (int r = 0; r < out.length; r++) {
            JsonNode row = rows.get(r);
            out[r] = new long[row.size()];
            for (int i = 0; i < out[r].length; i++) {
                out[r][i] = row.get(i).asLong();
            }
        }
        return out;
    }

    /** Zeroes every defined parameter gradient of {@code model} (one case's backward must not add to the next). */
    public static void zeroGrads(DecoderModel model) {
        for (Tensor t : model.parameters().values()) {
            Tensor g = t.grad();
            if (g.defined()) {
                g.zero_();
            }
        }
    }
}
