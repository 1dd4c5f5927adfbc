package io.sftnative.loss;

import io.sftnative.batch.Batch;
import io.sftnative.model.DecoderModel;

/**
 * Forward, loss and backward of one micro-batch: the seam where the memory-saving variants plug into the training
 * step without changing it (layer-wise recomputation, a fused LM-head cross-entropy, quantized base weights). The
 * plain implementation is {@link PlainLossComputation}.
 *
 * <p>Contract: the loss is the causal-LM cross-entropy (labels shifted by one, -100 ignored) summed over the
 * micro-batch's target tokens; the gradient accumulated into the parameters' {@code .grad} is that of
 * {@code sum / normaliser}, where the trainer passes the target-token count of the whole accumulated batch, so that
 * every target token weighs the same however tokens fall into micro-batches. Temporaries belong to the caller's
 * step scope; only scalars are returned.
 */
public interface LossComputation {

    /**
     * Runs forward and backward for {@code batch}, adding the gradient of {@code lossSum / normaliser} to the
     * trainable parameters' gradients.
     *
     * @param normaliser the target tokens of the whole accumulated batch (&ge; 1)
     * @return the summed loss over the micro-batch's target tokens (not divided)
     */
    double forwardBackward(DecoderModel model, MicroBatch batch, double normaliser);

    /** The summed loss over the target tokens of {@code batch}, without gradients (evaluation). */
    double lossSum(DecoderModel model, MicroBatch batch);

    /**
     * {@code b} on the model's device as this computation runs it: by default as collated; the built-in
     * computations drop the padding of right-padded batches where that changes nothing but the cost
     * ({@link MicroBatch#uploadForTraining}).
     */
    default MicroBatch upload(Batch b, DecoderModel model) {
        return MicroBatch.upload(b, model);
    }

    /** A short name for logs ("plain", "fused-ce", ...). */
    String name();
}
