package io.sftnative.optim;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * HF's {@code optim: adafactor}: {@code transformers.optimization.Adafactor} as the Trainer builds it
 * ({@code scale_parameter=False, relative_step=False}, so the learning rate is the schedule's; eps = (1e-30, 1e-3),
 * clip_threshold 1, decay_rate -0.8, no first moment). Per parameter with gradient g, step t:
 * <pre>
 *   beta2t = 1 - t^-0.8;   u = g^2 + 1e-30
 *   matrices (ndim >= 2): row = beta2t row + (1 - beta2t) mean(u, -1);  col = beta2t col + (1 - beta2t) mean(u, -2)
 *                         update = rsqrt(row / mean(row, -1)) [.., :, None] * rsqrt(col) [.., None, :] * g
 *   vectors:              v = beta2t v + (1 - beta2t) u;  update = rsqrt(v) * g
 *   update /= max(rms(update) / clip_threshold, 1);   p -= lr * weight_decay * p (when decayed);   p -= lr * update
 * </pre>
 * State: the row and column second-moment factors of each matrix (rows + cols floats instead of rows x cols), the
 * full second moment of each vector, and the step. fp32 arithmetic (bf16 parameters are updated through an fp32
 * copy, as HF does). Checked against HF's rule in {@code AdafactorGoldenTest}.
 */
@SuppressWarnings("try") // scopes and no-grad guards are held for their side effect
public final class Adafactor implements Optimizer {
    static final double EPS1 = 1e-30;
    static final double CLIP_THRESHOLD = 1.0;
    static final double DECAY_RATE = -0.8;

    private static final class Slot {
        final Tensor param;      // our handle on the caller's parameter
        final double weightDecay;
        Tensor row;              // (..., rows) fp32; matrices only
        Tensor col;              // (..., cols) fp32; matrices only
        Tensor sq;               // param shape fp32; vectors only
        long step;

        Slot(Tensor param, double weightDecay) {
            this.param = param;
            this.weightDecay = weightDecay;
        }

        boolean factored() {
            return param.dim() >= 2;
        }

        void drop() {
            for (Tensor t : new Tensor[] {row, col, sq}) {
                if (t != null) {
                    t.close();
                }
            }
            row = null;
            col = null;
            sq = null;
            step = 0;
        }
    }

    private final Map<String, Slot> slots = new LinkedHashMap<>();
    private final Map<String, Double> lrScales = new java.util.HashMap<>(); // LoRA+: lr factor per parameter
    private boolean closed;

    public Adafactor(Map<String, Tensor> params, double weightDecay, Predicate<String> decays) {
        if (!(weightDecay >= 0)) {
            throw new IllegalArgumentException("weight decay must be >= 0, got " + weightDecay + " (key weight_decay)");
        }
        if (params.isEmpty()) {
            throw new IllegalArgumentException("Adafactor got no trainable parameters: check finetuning_type and the"
                    + " freeze/LoRA target settings");
        }
        params.forEach((name, p) -> slots.put(name, new Slot(new Tensor(p), decays.test(name) ? weightDecay : 0.0)));
    }

    @Override
    public void step(double lr) {
        check();
        try (NoGradGuard noGrad = new NoGradGuard()) {
            for (Map.Entry<String, Slot> e : slots.entrySet()) {
                Slot s = e.getValue();
                try (PointerScope scope = new PointerScope()) {
                    Tensor grad = s.param.grad(); // param shape, or undefined
                    if (!grad.defined()) {
                        continue;
                    }
                    update(s, grad.to(ScalarType.Float), lr * lrScales.getOrDefault(e.getKey(), 1.0));
                }
            }
        }
    }

    private static void update(Slot s, Tensor g, double lr) {
        boolean factored = s.factored();
        if (s.step == 0) {
            if (factored) {
                s.row = keep(g.mean(new long[] {-1}, false, new org.bytedeco.pytorch.ScalarTypeOptional())
                        .zero_());
                s.col = keep(g.mean(new long[] {-2}, false, new org.bytedeco.pytorch.ScalarTypeOptional())
                        .zero_());
            } else {
                s.sq = keep(torch.zeros_like(g));
            }
        }
        s.step++;
        boolean low = s.param.scalar_type() != ScalarType.Float;
        Tensor p = low ? s.param.to(ScalarType.Float) : s.param; // fp32 view of the weights
        double beta2t = 1.0 - Math.pow(s.step, DECAY_RATE);
        Tensor u = g.mul(g).add(new Scalar(EPS1)); // g^2 + eps1
        Tensor update;
        if (factored) {
            s.row.mul_(new Scalar(beta2t)).add_(mean(u, -1, false), new Scalar(1.0 - beta2t));
            s.col.mul_(new Scalar(beta2t)).add_(mean(u, -2, false), new Scalar(1.0 - beta2t));
            Tensor r = s.row.div(mean(s.row, -1, true)).rsqrt_().unsqueeze(-1); // (..., rows, 1)
            Tensor c = s.col.unsqueeze(-2).rsqrt();                              // (..., 1, cols)
            update = torch.mul(r, c).mul_(g);
        } else {
            s.sq.mul_(new Scalar(beta2t)).add_(u, new Scalar(1.0 - beta2t));
            update = s.sq.rsqrt().mul_(g);
        }
        Tensor rms = torch.linalg_vector_norm(update).div(new Scalar(Math.sqrt((double) update.numel()))); // ()
        update.div_(rms.div(new Scalar(CLIP_THRESHOLD)).clamp_min_(new Scalar(1.0)));
        update.mul_(new Scalar(lr));
        if (s.weightDecay != 0) {
            p.add_(p, new Scalar(-s.weightDecay * lr));
        }
        p.add_(update.neg());
        if (low) {
            s.param.copy_(p);
        }
    }

    private static Tensor mean(Tensor t, long dim, boolean keep) {
        return t.mean(new long[] {dim}, keep, new org.bytedeco.pytorch.ScalarTypeOptional());
    }

    /** A state tensor that outlives the step's scope. */
    private static Tensor keep(Tensor t) {
        Tensor owned = t.clone();
        owned.retainReference();
        return owned;
    }

    @Override
    public void lrScales(Map<String, Double> scales) {
        lrScales.clear();
        lrScales.putAll(scales);
    }

    @Override
    public void zeroGrad() {
        check();
        for (Slot s : slots.values()) {
            try (Tensor g = s.param.mutable_grad()) {
                g.reset();
            }
        }
    }

    /** {@code <name>.exp_avg_sq_row / .exp_avg_sq_col} (matrices) or {@code .exp_avg_sq} (vectors), and {@code .step}. */
    @Override
    public Map<String, Tensor> stateDict() {
        check();
        Map<String, Tensor> out = new LinkedHashMap<>();
        slots.forEach((name, s) -> {
            if (s.step == 0) {
                return;
            }
            if (s.factored()) {
                out.put(name + ".exp_avg_sq_row", new Tensor(s.row));
                out.put(name + ".exp_avg_sq_col", new Tensor(s.col));
            } else {
                out.put(name + ".exp_avg_sq", new Tensor(s.sq));
            }
            out.put(name + ".step", torch.scalar_tensor(new Scalar((double) s.step)));
        });
        return out;
    }

    @Override
    public void loadStateDict(Map<String, Tensor> state) {
        check();
        for (String key : state.keySet()) {
            String name = key.substring(0, Math.max(0, key.lastIndexOf('.')));
            if (!slots.containsKey(name) || !(key.endsWith(".exp_avg_sq_row") || key.endsWith(".exp_avg_sq_col")
                    || key.endsWith(".exp_avg_sq") || key.endsWith(".step"))) {
                throw new IllegalArgumentException("optimizer state key '" + key + "' is not Adafactor state of this"
                        + " run's parameters: the checkpoint was written with another optim or other trainable"
                        + " parameters");
            }
        }
        try (PointerScope scope = new PointerScope()) {
            slots.forEach((name, s) -> {
                s.drop();
                Tensor step = state.get(name + ".step");
                if (step == null) {
                    return;
                }
                if (s.factored()) {
                    s.row = keep(state.get(name + ".exp_avg_sq_row").to(s.param.device(), ScalarType.Float));
                    s.col = keep(state.get(name + ".exp_avg_sq_col").to(s.param.device(), ScalarType.Float));
                } else {
                    s.sq = keep(state.get(name + ".exp_avg_sq").to(s.param.device(), ScalarType.Float));
                }
                s.step = Math.round(step.item_double());
            });
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            for (Slot s : slots.values()) {
                s.drop();
                s.param.close();
            }
        }
    }

    private void check() {
        if (closed) {
            throw new IllegalStateException("the optimizer is closed");
        }
    }
}
