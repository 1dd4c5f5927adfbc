package io.sftnative.loss;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.sftnative.batch.Batch;
import io.sftnative.batch.Unpadding;
import io.sftnative.model.AttentionContext;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.Tensors;
import io.sftnative.torch.Autocast;

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

    /** A/B switch for benchmarks ({@code SFT_UNPAD=0} keeps the padding), as {@code SFT_FUSE_PROJECTIONS}. */
    private static final boolean UNPAD = !"0".equals(System.getenv("SFT_UNPAD"));

    /**
     * Uploads {@code b} for a training or loss step: a right-padded batch goes in padding-free
     * ({@link Unpadding}: its real tokens as packed segments, positions kept) when the model attends by segments
     * ({@link DecoderModel#attendsBySegments}) and no autocast turns q/k/v into a dtype our kernel does not take
     * (the segments would then become a dense mask); otherwise as is. Same loss and gradients, within fp32 rounding.
     * Output rows: enough for the attention backward's tasks (one per row and key/value head) to use every thread.
     */
    public static MicroBatch uploadForTraining(Batch b, DecoderModel model, Autocast autocast) {
        if (!UNPAD || autocast.enabled() || !model.attendsBySegments()) {
            return upload(b, model);
        }
        long kvHeads = Math.max(1, model.config().numKeyValueHeads());
        int rows = (int) Math.max(1, (torch.get_num_threads() + kvHeads - 1) / kvHeads);
        Batch unpadded = Unpadding.unpad(b, rows);
        return upload(unpadded != null ? unpadded : b, model);
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
