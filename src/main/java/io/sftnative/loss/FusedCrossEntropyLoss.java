package io.sftnative.loss;

import org.bytedeco.pytorch.Tensor;

/**
 * The fused causal-LM loss as a training-step component: replaces
 * {@code logits = lm_head(hidden); loss = CE(shift(logits), shift(labels)) / numItems; loss.backward()} by a chunked
 * computation that never materialises the (B, T, V) logits, then backpropagates into the model through
 * {@code hidden} and into the LM-head weight (see {@link FusedLinearCrossEntropy}).
 *
 * <pre>{@code
 * FusedCrossEntropyLoss lossFn = new FusedCrossEntropyLoss(0);           // 0 = automatic chunk size
 * try (PointerScope step = new PointerScope()) {
 *     Tensor hidden = model.hiddenStates(inputIds);                       // (B, T, H), requires grad
 *     FusedCrossEntropyLoss.Step s = lossFn.backward(hidden, lmHead, labels, numItemsInBatch);
 *     listener.onStep(step, s.loss());                                    // scalars only cross the scope
 * }
 * }</pre>
 */
public final class FusedCrossEntropyLoss {
    private final int chunkRows;

    /** What the step computed: loss = lossSum / divisor, and the number of target tokens. */
    public record Step(double loss, double lossSum, long targetTokens) {}

    /** chunkRows: rows of logits per chunk, {@code <= 0} for {@link FusedLinearCrossEntropy#defaultChunkRows}. */
    public FusedCrossEntropyLoss(int chunkRows) {
        this.chunkRows = chunkRows;
    }

    /**
     * Loss of hidden (B, T, H) against the unshifted labels (B, T) with the LM head weight (V, H); backpropagates
     * (gradients accumulate into {@code .grad} like {@code loss.backward()}). numItems: target tokens of the whole
     * accumulated batch, or {@code <= 0} for this micro-batch's own count.
     */
    public Step backward(Tensor hidden, Tensor lmHeadWeight, Tensor labels, double numItems) {
        try (FusedLinearCrossEntropy.Result r = FusedLinearCrossEntropy.causalLm(hidden, lmHeadWeight, labels, numItems,
                chunkRows, lmHeadWeight.requires_grad())) {
            FusedLinearCrossEntropy.backward(r, hidden, lmHeadWeight);
            return new Step(r.loss(), r.lossSum(), r.targetTokens());
        }
    }
}
