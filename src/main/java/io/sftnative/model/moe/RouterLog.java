package io.sftnative.model.moe;

import java.util.ArrayList;
import java.util.List;

import org.bytedeco.pytorch.Tensor;

/**
 * The router logits of one forward pass, per sparse layer in layer order (transformers' {@code router_logits} output
 * with {@code output_router_logits}), for the load-balancing loss. Off unless {@link #start()} was called, so
 * generation and evaluation record nothing. The recorded tensors belong to the caller's PointerScope: take them
 * ({@link #stop()}) inside the scope that ran the forward pass.
 */
public final class RouterLog {
    private final List<Tensor> logits = new ArrayList<>(); // (N, E) per sparse layer
    private final List<Integer> layers = new ArrayList<>();
    private boolean recording;

    /** Starts recording (clears what an earlier pass left). */
    public void start() {
        logits.clear();
        layers.clear();
        recording = true;
    }

    public boolean recording() {
        return recording;
    }

    /** Stops recording and hands over the logits (N, E) per sparse layer, in forward order. */
    public List<Tensor> stop() {
        recording = false;
        List<Tensor> out = List.copyOf(logits);
        logits.clear();
        layers.clear();
        return out;
    }

    /** The layer indices of the recorded logits, in order. */
    public List<Integer> layers() {
        return List.copyOf(layers);
    }

    void record(int layer, Tensor routerLogits) {
        if (recording) {
            logits.add(routerLogits);
            layers.add(layer);
        }
    }
}
