package io.sftnative.model;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.torch.Devices;

/**
 * Boolean attention masks (B, 1, T, S), true = the query may see the key. Queries sit at absolute positions
 * {@code past .. past+T-1} of a key sequence of length {@code S = past + T}.
 *
 * <p>Every query also sees its own key, even when it is padding: a row with no visible key would make SDPA emit NaN,
 * which then spreads through the padding's keys and values into real rows' gradients. Real tokens always see
 * themselves anyway, so only padding rows change (their outputs are never used).
 */
final class AttentionMasks {
    private AttentionMasks() {}

    /**
     * @param keyMask    (B, S) 0/1 or bool: which keys are real tokens, or null (all)
     * @param segments   (B, S) int64 segment ids (0 = padding) for block-diagonal packing, or null; query segments
     *                   are the last T of them
     * @param window     mistral's sliding window, or null
     * @param device     where the mask is built (the model's; keyMask and segments must be there)
     */
    static Tensor build(long batch, long queryLength, long past, Tensor keyMask, Tensor segments, Integer window,
            Device device) {
        long s = past + queryLength;
        TensorOptions longs = Devices.options(ScalarType.Long, device);
        Tensor qPos = torch.arange(new Scalar(past), new Scalar(s), longs).unsqueeze(1); // (T, 1)
        Tensor kPos = torch.arange(new Scalar(0), new Scalar(s), longs).unsqueeze(0); // (1, S)
        Tensor visible = kPos.le(qPos); // (T, S) causal
        if (window != null) {
            visible = visible.logical_and(qPos.sub(kPos).lt(new Scalar(window.longValue())));
        }
        Tensor m = visible.unsqueeze(0).expand(batch, queryLength, s); // (B, T, S)
        if (segments != null) {
            Tensor kSeg = segments.unsqueeze(1); // (B, 1, S)
            Tensor qSeg = segments.narrow(1, past, queryLength).unsqueeze(2); // (B, T, 1)
            m = m.logical_and(qSeg.eq(kSeg)).logical_and(kSeg.ne(new Scalar(0L)));
        }
        if (keyMask != null) {
            m = m.logical_and(keyMask.to(ScalarType.Bool).unsqueeze(1)); // (B, 1, S)
        }
        m = m.logical_or(kPos.eq(qPos).unsqueeze(0)); // diagonal: no row is empty
        return m.unsqueeze(1); // (B, 1, T, S)
    }

    /**
     * Positions restarting at 0 in every segment (0 on padding): segments (B, T) int64 -> (B, T) int64 on the
     * segments' device (computed on the host: one download, one upload).
     */
    static Tensor restartPositions(Tensor seg) {
        long b = seg.size(0);
        long t = seg.size(1);
        long[] ids = Tensors.toLongs(seg); // (B*T) host copy
        long[] pos = new long[ids.length];
        for (int r = 0; r < b; r++) {
            long p = 0;
            for (int c = 0; c < t; c++) {
                int k = (int) (r * t + c);
                p = c > 0 && ids[k] == ids[k - 1] ? p + 1 : 0;
                pos[k] = ids[k] == 0 ? 0 : p;
            }
        }
        return Tensors.longs(pos, seg.device(), b, t);
    }
}
