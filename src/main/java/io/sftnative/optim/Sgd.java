package io.sftnative.optim;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

/**
 * HF's {@code optim: sgd}: {@code torch.optim.SGD} with the Trainer's defaults (no momentum, so no state), weight
 * decay as torch's L2 term added to the gradient: {@code p -= lr * (g + weight_decay * p)}, with HF's two parameter
 * groups (no decay for biases and norm weights).
 */
@SuppressWarnings("try") // scopes and no-grad guards are held for their side effect
public final class Sgd implements Optimizer {
    private final Map<String, Tensor> params = new LinkedHashMap<>(); // our handles (share the caller's storage)
    private final Map<String, Double> decay = new LinkedHashMap<>();
    private final Map<String, Double> lrScales = new java.util.HashMap<>(); // LoRA+: lr factor per parameter
    private boolean closed;

    public Sgd(Map<String, Tensor> params, double weightDecay, Predicate<String> decays) {
        if (!(weightDecay >= 0)) {
            throw new IllegalArgumentException("weight decay must be >= 0, got " + weightDecay + " (key weight_decay)");
        }
        if (params.isEmpty()) {
            throw new IllegalArgumentException("SGD got no trainable parameters: check finetuning_type and the"
                    + " freeze/LoRA target settings");
        }
        params.forEach((name, p) -> {
            this.params.put(name, new Tensor(p));
            this.decay.put(name, decays.test(name) ? weightDecay : 0.0);
        });
    }

    @Override
    public void step(double lr) {
        check();
        try (NoGradGuard noGrad = new NoGradGuard(); PointerScope scope = new PointerScope()) {
            for (Map.Entry<String, Tensor> e : params.entrySet()) {
                Tensor p = e.getValue();
                Tensor g = p.grad(); // same shape as p, or undefined
                if (!g.defined()) {
                    continue;
                }
                double wd = decay.get(e.getKey());
                Tensor d = wd != 0 ? g.add(p, new Scalar(wd)) : g; // torch: grad.add(param, alpha=weight_decay)
                p.add_(d, new Scalar(-lr * lrScales.getOrDefault(e.getKey(), 1.0)));
            }
        }
    }

    @Override
    public void lrScales(Map<String, Double> scales) {
        lrScales.clear();
        lrScales.putAll(scales);
    }

    @Override
    public void zeroGrad() {
        check();
        for (Tensor p : params.values()) {
            try (Tensor g = p.mutable_grad()) {
                g.reset();
            }
        }
    }

    /** Plain SGD has no state. */
    @Override
    public Map<String, Tensor> stateDict() {
        check();
        return Map.of();
    }

    @Override
    public void loadStateDict(Map<String, Tensor> state) {
        check();
        if (!state.isEmpty()) {
            throw new IllegalArgumentException("the checkpoint holds optimizer state ('" + state.keySet().iterator()
                    .next() + "', ...) but optim sgd has none: it was written with another optim; resume with that"
                    + " optimizer");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            params.values().forEach(Tensor::close);
        }
    }

    private void check() {
        if (closed) {
            throw new IllegalStateException("the optimizer is closed");
        }
    }
}
