package io.sftnative.model;

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
 */
final class AttentionContexts {
    private final RotaryEmbedding rope;
    private final ScalarType dtype;
    private final Integer slidingWindow; // null: every key in the causal window
    private final String device; // the model's
    private volatile AttentionKernel kernel = AttentionKernel.defaultKernel();

    AttentionContexts(RotaryEmbedding rope, ScalarType dtype, Integer slidingWindow, String device) {
        this.rope = rope;
        this.dtype = dtype;
        this.slidingWindow = slidingWindow;
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
        return kernel == AttentionKernel.NATIVE && device.startsWith("cpu") && TensorMemory.same(dtype,
                ScalarType.Float);
    }

    /** See {@link DecoderModel#causalContext}. */
    AttentionContext causal(long batch, long seq) {
        Device dev = new Device(device);
        Tensor pos = torch.arange(new Scalar(0), new Scalar(seq), Devices.options(ScalarType.Long, dev))
                .unsqueeze(0).expand(batch, seq); // (B, T)
        if (nativeKernel()) {
            return build(pos, null, null, needsWindow(seq) ? FlashAttention.ranges(batch, seq, null, null,
                    slidingWindow) : KeyRanges.CAUSAL);
        }
        Tensor mask = needsWindow(seq) ? AttentionMasks.build(batch, seq, 0, null, null, slidingWindow, dev) : null;
        return general(pos, mask, null);
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
        long[] lengths = nativeKernel() ? rightPaddedLengths(keys) : null;
        if (lengths != null) {
            return build(pos, null, null, noPadding && !needsWindow(t) ? KeyRanges.CAUSAL
                    : FlashAttention.ranges(b, t, null, lengths, slidingWindow));
        }
        Tensor mask = noPadding && !needsWindow(t) ? null
                : AttentionMasks.build(b, t, 0, keys, null, slidingWindow, dev);
        return general(pos, mask, null);
    }

    /** See {@link DecoderModel#packedContext}. */
    AttentionContext packed(Tensor segmentIds, Tensor positionIds) {
        Device dev = new Device(device);
        Tensor seg = segmentIds.to(dev, ScalarType.Long);
        Tensor pos = positionIds != null ? positionIds.to(dev, ScalarType.Long) : AttentionMasks.restartPositions(seg);
        KeyRanges ranges = nativeKernel() ? FlashAttention.ranges(seg.size(0), seg.size(1), seg, null, slidingWindow)
                : null;
        if (ranges != null) {
            return build(pos, null, null, ranges);
        }
        Tensor mask = AttentionMasks.build(seg.size(0), seg.size(1), 0, null, seg, slidingWindow, dev);
        return general(pos, mask, null);
    }

    /** See {@link DecoderModel#context}. */
    AttentionContext general(Tensor positionIds, Tensor mask, KvCache cache) {
        if (cache != null && mask == null) {
            throw new IllegalArgumentException("decoding with a KV cache needs an explicit mask");
        }
        return build(positionIds, mask, cache, null);
    }

    private AttentionContext build(Tensor positionIds, Tensor mask, KvCache cache, KeyRanges ranges) {
        Device dev = new Device(device);
        Tensor pos = positionIds.to(dev, ScalarType.Long); // (B, T) no copy when already there
        Tensor m = mask == null ? null : Devices.to(mask, dev); // (B, 1, T, S)
        BlasThreads.restore(); // in case an earlier backward stopped between the SDPA hooks
        FlashAttention.reset(); // records of forward passes whose backward never ran
        Tensor[] cs = rope.cosSin(pos, dtype);
        return new AttentionContext(cs[0], cs[1], m, cache, pos.size(1), ranges);
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

    /** See {@link DecoderModel#decodeContext}. */
    AttentionContext decode(Tensor positionIds, Tensor keyMask, KvCache cache) {
        Device dev = new Device(device);
        long t = positionIds.size(1);
        Tensor mask = AttentionMasks.build(positionIds.size(0), t, cache.length(), Devices.to(keyMask, dev), null,
                slidingWindow, dev);
        return general(positionIds, mask, cache);
    }

    private boolean needsWindow(long seq) {
        return slidingWindow != null && seq > slidingWindow;
    }
}
