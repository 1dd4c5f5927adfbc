package io.sftnative.model;

import java.util.function.Function;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.bindings.TensorMemory;
import io.sftnative.torch.Devices;

/**
 * Builds a model's {@link AttentionContext} for each batch layout: position ids, the rotary tables for them and the
 * attention mask (null where plain causal attention suffices). {@link DecoderModel}'s {@code *Context} methods are
 * the public entry points and document each layout. Everything is created on the model's device; masks and position
 * ids given elsewhere are moved there.
 *
 * <p>Sliding windows: when every layer slides (mistral) the window is in the context's own mask; when only some do
 * (gemma2/3, qwen2/3 with {@code use_sliding_window}) those layers get {@link AttentionContext#sliding}, with the
 * window in its mask and, for gemma3, the local rotary tables.
 *
 * <p>Training layouts (causal, right-padded, packed) of fp32 models on the CPU carry key ranges for our attention
 * kernel ({@link FlashAttention}) instead of a mask when it is selected; layouts it cannot express (left padding,
 * split segments, decoding with a cache) keep the mask.
 */
final class AttentionContexts {
    private final RotaryEmbedding rope;
    private final RotaryEmbedding localRope; // the sliding layers' own tables (gemma3), or null
    private final ScalarType dtype;
    private final Integer slidingWindow; // null: no layer slides
    private final boolean allSliding; // every layer slides: the window goes into the main context
    private final String device; // the model's
    private volatile AttentionKernel kernel = AttentionKernel.defaultKernel();

    AttentionContexts(RotaryEmbedding rope, RotaryEmbedding localRope, ScalarType dtype, Integer slidingWindow,
            boolean allSliding, String device) {
        this.rope = rope;
        this.localRope = localRope;
        this.dtype = dtype;
        this.slidingWindow = slidingWindow;
        this.allSliding = allSliding;
        this.device = device;
    }

    /** Which kernel the training contexts (causal, padded, packed) select from now on. */
    void kernel(AttentionKernel k) {
        this.kernel = k;
    }

    AttentionKernel kernel() {
        return kernel;
    }

    /** Our kernel runs for fp32 models on the CPU when selected ({@link FlashAttention}). */
    private boolean nativeKernel() {
        return kernel == AttentionKernel.NATIVE && device.startsWith("cpu") && (TensorMemory.same(dtype,
                ScalarType.Float) || TensorMemory.same(dtype, ScalarType.BFloat16));
    }

    /** See {@link DecoderModel#causalContext}. */
    AttentionContext causal(long batch, long seq) {
        Device dev = new Device(device);
        Tensor pos = torch.arange(new Scalar(0), new Scalar(seq), Devices.options(ScalarType.Long, dev))
                .unsqueeze(0).expand(batch, seq); // (B, T)
        return assemble(pos, w -> w != null && seq > w ? AttentionMasks.build(batch, seq, 0, null, null, w, dev)
                : null, !nativeKernel() ? null : w -> w != null && seq > w
                        ? FlashAttention.ranges(batch, seq, null, null, w) : KeyRanges.CAUSAL, null);
    }

    /** See {@link DecoderModel#paddedContext}. */
    AttentionContext padded(Tensor attentionMask, Tensor positionIds) {
        Device dev = new Device(device);
        Tensor keys = Devices.to(attentionMask, dev); // (B, T)
        long b = keys.size(0);
        long t = keys.size(1);
        Tensor pos = positionIds != null ? positionIds.to(dev, ScalarType.Long)
                : torch.arange(new Scalar(0), new Scalar(t), Devices.options(ScalarType.Long, dev)).unsqueeze(0)
                        .expand(b, t);
        boolean noPadding = keys.ne(new Scalar(0L)).all().item_bool();
        long[] lengths = nativeKernel() ? rightPaddedLengths(keys) : null; // null: not right padding
        return assemble(pos, w -> noPadding && (w == null || t <= w) ? null
                : AttentionMasks.build(b, t, 0, keys, null, w, dev), lengths == null ? null
                        : w -> noPadding && (w == null || t <= w) ? KeyRanges.CAUSAL
                                : FlashAttention.ranges(b, t, null, lengths, w), null);
    }

    /** See {@link DecoderModel#packedContext}. */
    AttentionContext packed(Tensor segmentIds, Tensor positionIds) {
        Device dev = new Device(device);
        Tensor seg = segmentIds.to(dev, ScalarType.Long);
        Tensor pos = positionIds != null ? positionIds.to(dev, ScalarType.Long) : AttentionMasks.restartPositions(seg);
        return assemble(pos, w -> AttentionMasks.build(seg.size(0), seg.size(1), 0, null, seg, w, dev),
                !nativeKernel() ? null : w -> FlashAttention.ranges(seg.size(0), seg.size(1), seg, null, w), null);
    }

    /**
     * See {@link DecoderModel#context}: the given mask is used as is; sliding layers additionally keep only keys
     * inside their window.
     */
    AttentionContext general(Tensor positionIds, Tensor mask, KvCache cache) {
        if (cache != null && mask == null) {
            throw new IllegalArgumentException("decoding with a KV cache needs an explicit mask");
        }
        Device dev = new Device(device);
        Tensor pos = positionIds.to(dev, ScalarType.Long); // (B, T) no copy when already there
        Tensor m = mask == null ? null : Devices.to(mask, dev); // (B, 1, T, S)
        long t = pos.size(1);
        return assemble(pos, w -> {
            if (w == null) {
                return m;
            }
            long s = m == null ? t : m.size(-1);
            Tensor band = AttentionMasks.build(1, t, s - t, null, null, w, dev); // (1, 1, T, S)
            return m == null ? (t > w ? band : null) : m.logical_and(band);
        }, null, cache);
    }

    /** See {@link DecoderModel#decodeContext}. */
    AttentionContext decode(Tensor positionIds, Tensor keyMask, KvCache cache) {
        Device dev = new Device(device);
        long t = positionIds.size(1);
        Tensor keys = Devices.to(keyMask, dev); // (B, S)
        Tensor pos = positionIds.to(dev, ScalarType.Long);
        return assemble(pos, w -> AttentionMasks.build(pos.size(0), t, cache.length(), keys, null, w, dev), null,
                cache);
    }

    /**
     * The context for positions {@code pos} (B, T) with {@code maskFor(window)} (null window: no window), or
     * {@code rangesFor(window)} when our kernel runs ({@code rangesFor} null, or returning null: the mask), and the
     * sliding layers' context when they differ.
     */
    private AttentionContext assemble(Tensor pos, Function<Integer, Tensor> maskFor,
            Function<Integer, KeyRanges> rangesFor, KvCache cache) {
        BlasThreads.restore(); // in case an earlier backward stopped between the SDPA hooks
        FlashAttention.reset(); // records of forward passes whose backward never ran
        long t = pos.size(1);
        if (slidingWindow == null || allSliding) {
            RotaryEmbedding r = allSliding && localRope != null ? localRope : rope;
            return context(r.cosSin(pos, dtype), slidingWindow, maskFor, rangesFor, cache, t, null);
        }
        Tensor[] cs = rope.cosSin(pos, dtype);
        Tensor[] local = localRope != null ? localRope.cosSin(pos, dtype) : cs;
        AttentionContext sliding = context(local, slidingWindow, maskFor, rangesFor, cache, t, null);
        return context(cs, null, maskFor, rangesFor, cache, t, sliding);
    }

    private static AttentionContext context(Tensor[] cosSin, Integer window, Function<Integer, Tensor> maskFor,
            Function<Integer, KeyRanges> rangesFor, KvCache cache, long t, AttentionContext sliding) {
        KeyRanges ranges = rangesFor == null ? null : rangesFor.apply(window);
        return new AttentionContext(cosSin[0], cosSin[1], ranges != null ? null : maskFor.apply(window), cache, t,
                ranges, sliding);
    }

    /** (B) lengths when every row of keys (B, T) is ones then zeros (right padding), else null. */
    private static long[] rightPaddedLengths(Tensor keys) {
        long b = keys.size(0);
        long t = keys.size(1);
        long[] k = Tensors.toLongs(keys.ne(new Scalar(0L)).to(ScalarType.Long)); // (B*T) host copy
        long[] lengths = new long[(int) b];
        for (int r = 0; r < b; r++) {
            int len = 0;
            while (len < t && k[(int) (r * t + len)] != 0) {
                len++;
            }
            for (int c = len; c < t; c++) {
                if (k[(int) (r * t + c)] != 0) {
                    return null; // a hole or left padding: not expressible by a length
                }
            }
            lengths[r] = len;
        }
        return lengths;
    }
}
