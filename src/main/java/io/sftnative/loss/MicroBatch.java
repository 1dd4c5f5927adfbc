package io.sftnative.loss;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;

import io.sftnative.batch.Batch;
import io.sftnative.model.AttentionContext;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.Tensors;

/**
 * One collated micro-batch on the model's device: what a {@link LossComputation} consumes. Its tensors are
 * temporaries of the current step scope.
 *
 * @param host      the host arrays it was made from (row count, target-token count)
 * @param inputIds  (B, T) int64 token ids
 * @param labels    (B, T) int64 labels, -100 where no loss is taken; NOT shifted (the loss shifts)
 * @param context   attention for the batch: causal with a padding mask, or block-diagonal for neat packing
 */
public record MicroBatch(Batch host, Tensor inputIds, Tensor labels, AttentionContext context) {

    /**
     * Uploads {@code b} to {@link DecoderModel#device()} (one copy per array, once per micro-batch) and builds its
     * attention context there.
     */
    public static MicroBatch upload(Batch b, DecoderModel model) {
        Device device = model.device();
        long rows = b.batchSize();
        long len = b.seqLen();
        Tensor ids = Tensors.longs(b.inputIds(), device, rows, len); // (B, T)
        Tensor labels = Tensors.longs(b.labels(), device, rows, len); // (B, T)
        Tensor mask = Tensors.longs(b.attentionMask(), device, rows, len); // (B, T)
        Tensor positions = Tensors.longs(b.positionIds(), device, rows, len); // (B, T)
        AttentionContext ctx = b.segmentIds() ? model.packedContext(mask, positions)
                : model.paddedContext(mask, positions);
        return new MicroBatch(b, ids, labels, ctx);
    }

    /** (B, T) int64 attention mask on {@code model}'s device (non-zero = token), for the MoE load-balancing loss. */
    public Tensor attentionMask(DecoderModel model) {
        return Tensors.longs(host.attentionMask(), model.device(), host.batchSize(), host.seqLen());
    }

    /** Target tokens of this micro-batch (labels != -100 after the shift). */
    public long targetTokens() {
        return host.targetTokens();
    }
}
