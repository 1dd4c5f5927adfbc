package io.sftnative.model;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Builds a model's {@link AttentionContext} for each batch layout: position ids, the rotary tables for them and the
 * attention mask (null where plain causal attention suffices). {@link DecoderModel}'s {@code *Context} methods are
 * the public entry points and document each layout.
 */
final class AttentionContexts {
    private final RotaryEmbedding rope;
    private final ScalarType dtype;
    private final Integer slidingWindow; // null: every key in the causal window

    AttentionContexts(RotaryEmbedding rope, ScalarType dtype, Integer slidingWindow) {
        this.rope = rope;
        this.dtype = dtype;
        this.slidingWindow = slidingWindow;
    }

    /** See {@link DecoderModel#causalContext}. */
    AttentionContext causal(long batch, long seq) {
        Tensor pos = torch.arange(new Scalar(0), new Scalar(seq), new TensorOptions(ScalarType.Long))
                .unsqueeze(0).expand(batch, seq); // (B, T)
        Tensor mask = needsWindow(seq) ? AttentionMasks.build(batch, seq, 0, null, null, slidingWindow) : null;
        return general(pos, mask, null);
    }

    /** See {@link DecoderModel#paddedContext}. */
    AttentionContext padded(Tensor attentionMask, Tensor positionIds) {
        long b = attentionMask.size(0);
        long t = attentionMask.size(1);
        Tensor pos = positionIds != null ? positionIds.to(ScalarType.Long)
                : torch.arange(new Scalar(0), new Scalar(t), new TensorOptions(ScalarType.Long)).unsqueeze(0)
                        .expand(b, t);
        boolean noPadding = attentionMask.ne(new Scalar(0L)).all().item_bool();
        Tensor mask = noPadding && !needsWindow(t) ? null
                : AttentionMasks.build(b, t, 0, attentionMask, null, slidingWindow);
        return general(pos, mask, null);
    }

    /** See {@link DecoderModel#packedContext}. */
    AttentionContext packed(Tensor segmentIds, Tensor positionIds) {
        Tensor seg = segmentIds.to(ScalarType.Long);
        Tensor pos = positionIds != null ? positionIds.to(ScalarType.Long) : AttentionMasks.restartPositions(seg);
        Tensor mask = AttentionMasks.build(seg.size(0), seg.size(1), 0, null, seg, slidingWindow);
        return general(pos, mask, null);
    }

    /** See {@link DecoderModel#context}. */
    AttentionContext general(Tensor positionIds, Tensor mask, KvCache cache) {
        if (cache != null && mask == null) {
            throw new IllegalArgumentException("decoding with a KV cache needs an explicit mask");
        }
        BlasThreads.restore(); // in case an earlier backward stopped between the SDPA hooks
        Tensor[] cs = rope.cosSin(positionIds, dtype);
        return new AttentionContext(cs[0], cs[1], mask, cache, positionIds.size(1));
    }

    /** See {@link DecoderModel#decodeContext}. */
    AttentionContext decode(Tensor positionIds, Tensor keyMask, KvCache cache) {
        long t = positionIds.size(1);
        Tensor mask = AttentionMasks.build(positionIds.size(0), t, cache.length(), keyMask, null, slidingWindow);
        return general(positionIds, mask, cache);
    }

    private boolean needsWindow(long seq) {
        return slidingWindow != null && seq > slidingWindow;
    }
}
