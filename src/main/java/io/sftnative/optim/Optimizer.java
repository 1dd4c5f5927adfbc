package io.sftnative.optim;

import java.util.Map;

import org.bytedeco.pytorch.Tensor;

/**
 * What the training loop needs from an optimizer (HF's {@code optim} picks the implementation: {@link AdamW},
 * {@link Sgd}, {@link Adafactor}). Each owns its state tensors and holds its own handles on the parameters it
 * updates; {@link #close()} frees them.
 */
public interface Optimizer extends AutoCloseable {
    /** One update of every parameter that has a gradient, with learning rate {@code lr} (from the schedule). */
    void step(double lr);

    /**
     * Per-parameter learning-rate factors (LoRA+'s parameter groups): parameter {@code name} is updated with
     * {@code lr * scales.get(name)} (1 when absent). Every group follows the same schedule, as with torch's
     * LambdaLR over several groups.
     */
    void lrScales(Map<String, Double> scales);

    /** Drops every parameter's gradient (torch's {@code zero_grad(set_to_none=True)}). */
    void zeroGrad();

    /** The state for exact resume as named tensors (the caller closes the handles; a PointerScope does). */
    Map<String, Tensor> stateDict();

    /** Replaces the state with one {@link #stateDict()} wrote; fails naming the key on a mismatch. */
    void loadStateDict(Map<String, Tensor> state);

    /** Bytes of optimizer state held now (the sum over {@link #stateDict()}). */
    default long stateBytes() {
        long n = 0;
        try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
            for (Tensor t : stateDict().values()) {
                n += t.numel() * t.element_size();
            }
        }
        return n;
    }

    @Override
    void close();
}
