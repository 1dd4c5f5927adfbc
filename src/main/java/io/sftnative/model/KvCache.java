package io.sftnative.model;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.torch.Devices;

/**
 * Keys and values of all layers for incremental decoding, preallocated for {@code capacity} positions.
 * Layers write their new keys/values at {@link #length()} and attend over {@code [0, length + T)}; the model
 * advances the length once all layers ran. Owns its buffers: close it.
 */
public final class KvCache implements AutoCloseable {
    private final Tensor[] keys; // per layer (B, KV, capacity, D)
    private final Tensor[] values; // per layer (B, KV, capacity, D)
    private final long capacity;
    private long length;
    private boolean closed;

    /** A cache for {@code model}: its layers, heads, dtype and device. */
    public static KvCache of(DecoderModel model, long batch, long capacity) {
        try (PointerScope scope = new PointerScope()) {
            return new KvCache(model.config(), batch, capacity, model.dtype(), model.device());
        }
    }

    /** Buffers of {@code dtype} on {@code device} (the model's: its layers write into them). */
    public KvCache(ModelConfig config, long batch, long capacity, ScalarType dtype, Device device) {
        this.capacity = capacity;
        int n = config.numHiddenLayers();
        keys = new Tensor[n];
        values = new Tensor[n];
        try (PointerScope scope = new PointerScope()) {
            long[] shape = {batch, config.numKeyValueHeads(), capacity, config.headDim()};
            TensorOptions options = Devices.options(dtype, device);
            for (int i = 0; i < n; i++) {
                keys[i] = torch.zeros(shape, options).retainReference();
                values[i] = torch.zeros(shape, options).retainReference();
            }
        }
    }

    /** Positions already cached. */
    public long length() {
        return length;
    }

    public long capacity() {
        return capacity;
    }

    /**
     * Stores layer {@code layer}'s new k, v (B, KV, T, D) at [length, length+T) and returns views of all cached
     * keys and values (B, KV, length+T, D).
     */
    Tensor[] append(int layer, Tensor k, Tensor v) {
        check();
        long t = k.size(2);
        if (length + t > capacity) {
            throw new IllegalStateException("KV cache full: " + length + " + " + t + " > capacity " + capacity);
        }
        keys[layer].narrow(2, length, t).copy_(k);
        values[layer].narrow(2, length, t).copy_(v);
        return new Tensor[] {keys[layer].narrow(2, 0, length + t), values[layer].narrow(2, 0, length + t)};
    }

    /** Marks {@code t} more positions as cached (after every layer appended them). */
    void advance(long t) {
        check();
        length += t;
    }

    private void check() {
        if (closed) {
            throw new IllegalStateException("KV cache is closed");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            for (int i = 0; i < keys.length; i++) {
                keys[i].releaseReference();
                values[i].releaseReference();
            }
        }
    }
}
