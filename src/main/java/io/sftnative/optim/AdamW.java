package io.sftnative.optim;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.bindings.Kernels;
import io.sftnative.bindings.TensorMemory;

/**
 * AdamW over libtorch tensors with the semantics of {@code torch.optim.AdamW} (single-tensor path), step by step:
 *
 * <pre>
 *   step += 1
 *   p      *= 1 - lr * weight_decay                      (decoupled weight decay, before the Adam update)
 *   m       = lerp(m, g, 1 - beta1)                       (= beta1 * m + (1 - beta1) * g)
 *   v       = beta2 * v + (1 - beta2) * g * g
 *   denom   = sqrt(v) / sqrt(1 - beta2^step) + eps        (eps added after the bias-corrected sqrt)
 *   p      -= lr / (1 - beta1^step) * m / denom
 * </pre>
 *
 * <p>Parameters are named; each has its own weight decay (HF Trainer's two groups: see {@link ParamGroups}) and,
 * like torch, its own step count and lazily created state: a parameter without a gradient is skipped and gets no
 * state. State tensors ({@code exp_avg}, {@code exp_avg_sq}) have the parameter's dtype and device, as in torch
 * (a bf16 parameter keeps bf16 moments; trainers that want fp32 moments train fp32 master weights).
 *
 * <p>The optimizer does not own the parameters (it holds its own handles to them, released on {@link #close()}); it
 * owns its state tensors. Use after close fails with {@link IllegalStateException}.
 */
@SuppressWarnings("try") // scopes and no-grad guards are held for their side effect
public final class AdamW implements Optimizer {
    /** Keys of {@link #stateDict()}: {@code <param name>.<suffix>}. */
    public static final String EXP_AVG = "exp_avg";
    public static final String EXP_AVG_SQ = "exp_avg_sq";
    public static final String STEP = "step";

    private final List<Slot> slots = new ArrayList<>();
    private final Map<String, Slot> byName = new LinkedHashMap<>();
    private final double beta1;
    private final double beta2;
    private final double eps;
    private boolean closed;
    private boolean fused; // fp32 CPU parameters through the native single-pass kernel (HF optim adamw_torch_fused)
    private final Map<String, Double> lrScales = new java.util.HashMap<>(); // LoRA+: lr factor per parameter

    private static final class Slot {
        final String name;
        final Tensor param;      // our handle on the caller's parameter (shares its storage)
        final double weightDecay;
        Tensor expAvg;           // same shape/dtype/device as param; null until the first step with a gradient
        Tensor expAvgSq;         // same shape/dtype/device as param
        long step;

        Slot(String name, Tensor param, double weightDecay) {
            this.name = name;
            this.param = param;
            this.weightDecay = weightDecay;
        }

        void dropState() {
            if (expAvg != null) {
                expAvg.close();
                expAvgSq.close();
            }
            expAvg = null;
            expAvgSq = null;
            step = 0;
        }
    }

    /**
     * @param params      trainable parameters by name, in a stable order (e.g. the model's named parameters)
     * @param weightDecay decoupled weight decay for the parameters {@code decays} accepts; the rest get 0
     * @param decays      which names decay, e.g. {@link ParamGroups#decays}
     */
    public AdamW(Map<String, Tensor> params, double weightDecay, Predicate<String> decays, double beta1,
            double beta2, double eps) {
        check(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1), got " + beta1 + " (key adam_beta1)");
        check(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1), got " + beta2 + " (key adam_beta2)");
        check(eps >= 0, "eps must be >= 0, got " + eps + " (key adam_epsilon)");
        check(weightDecay >= 0, "weight decay must be >= 0, got " + weightDecay + " (key weight_decay)");
        check(!params.isEmpty(), "AdamW got no trainable parameters: check finetuning_type and the freeze/LoRA"
                + " target settings");
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            Tensor p = e.getValue();
            check(p != null && p.defined(), "parameter '" + e.getKey() + "' is not a defined tensor");
            check(p.is_floating_point(), "parameter '" + e.getKey() + "' is not floating point ("
                    + p.scalar_type() + ")");
            Slot s = new Slot(e.getKey(), owned(new Tensor(p)), decays.test(e.getKey()) ? weightDecay : 0.0);
            slots.add(s);
            byName.put(s.name, s);
        }
    }

    /** AdamW with HF Trainer's parameter groups (no decay for biases and norm weights). */
    public static AdamW withHfGroups(Map<String, Tensor> params, double weightDecay, double beta1, double beta2,
            double eps) {
        return new AdamW(params, weightDecay, ParamGroups::decays, beta1, beta2, eps);
    }

    /**
     * Routes fp32 CPU parameters through the native one-pass AdamW kernel (HF's {@code optim: adamw_torch_fused}):
     * the arithmetic of the libtorch ops in the same order, equal to rounding (libtorch's vectorised lerp may fuse a
     * multiply-add; AdamWGoldenTest pins the tolerance), with one read and write of each tensor instead of ~8 passes.
     * Other parameters (bf16, CUDA) keep the libtorch path. Returns this.
     */
    public AdamW fused(boolean on) {
        ensureOpen();
        this.fused = on;
        return this;
    }

    /** One update of every parameter that has a gradient, with learning rate {@code lr} (from the schedule). */
    @Override
    public void step(double lr) {
        ensureOpen();
        try (NoGradGuard noGrad = new NoGradGuard()) {
            for (Slot s : slots) {
                Tensor grad = s.param.grad(); // same shape as param; undefined when backward never reached it
                try {
                    if (!grad.defined()) {
                        continue;
                    }
                    if (s.expAvg == null) { // lazily, like torch
                        s.expAvg = owned(torch.zeros_like(s.param));
                        s.expAvgSq = owned(torch.zeros_like(s.param));
                    }
                    double lrS = lr * lrScales.getOrDefault(s.name, 1.0);
                    try (PointerScope scope = new PointerScope()) {
                        if (fused && fusable(s, grad)) {
                            s.step++;
                            Kernels.cpu().adamw(TensorMemory.segment(s.param, s.name),
                                    TensorMemory.segment(grad, s.name + " grad"),
                                    TensorMemory.segment(s.expAvg, s.name + " exp_avg"),
                                    TensorMemory.segment(s.expAvgSq, s.name + " exp_avg_sq"), s.param.numel(), lrS,
                                    beta1, beta2, eps, s.weightDecay, s.step);
                        } else {
                            update(s, grad, lrS);
                        }
                    }
                } finally {
                    grad.close();
                }
            }
        }
    }

    /** fp32 host tensors, all contiguous: what the native kernel takes. */
    private static boolean fusable(Slot s, Tensor grad) {
        for (Tensor t : new Tensor[] {s.param, grad, s.expAvg, s.expAvgSq}) {
            if (!t.is_cpu() || !t.is_contiguous() || !TensorMemory.same(t.scalar_type(), ScalarType.Float)) {
                return false;
            }
        }
        return true;
    }

    private void update(Slot s, Tensor grad, double lr) {
        s.step++;
        if (s.weightDecay != 0) {
            s.param.mul_(new Scalar(1 - lr * s.weightDecay));
        }
        s.expAvg.lerp_(grad, new Scalar(1 - beta1));
        s.expAvgSq.mul_(new Scalar(beta2)).addcmul_(grad, grad, new Scalar(1 - beta2));
        double step = s.step;
        double biasCorrection1 = 1 - Math.pow(beta1, step);
        double biasCorrection2 = 1 - Math.pow(beta2, step);
        double stepSize = lr / biasCorrection1;
        double biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
        Tensor denom = s.expAvgSq.sqrt().div(new Scalar(biasCorrection2Sqrt)).add_(new Scalar(eps)); // like param
        s.param.addcdiv_(s.expAvg, denom, new Scalar(-stepSize));
    }

    /** Drops every parameter's gradient (torch's {@code zero_grad(set_to_none=True)}). */
    @Override
    public void lrScales(Map<String, Double> scales) {
        lrScales.clear();
        lrScales.putAll(scales);
    }

    @Override
    public void zeroGrad() {
        ensureOpen();
        for (Slot s : slots) {
            try (Tensor g = s.param.mutable_grad()) {
                g.reset();
            }
        }
    }

    /**
     * The optimizer state for exact resume: {@code <name>.exp_avg}, {@code <name>.exp_avg_sq} (parameter shape and
     * dtype) and {@code <name>.step} (a float32 scalar, as torch stores it) for every parameter that has state.
     * The returned handles share storage with the optimizer; the caller closes them (a {@link PointerScope} does).
     */
    @Override
    public Map<String, Tensor> stateDict() {
        ensureOpen();
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Slot s : slots) {
            if (s.expAvg == null) {
                continue;
            }
            out.put(s.name + "." + EXP_AVG, new Tensor(s.expAvg));
            out.put(s.name + "." + EXP_AVG_SQ, new Tensor(s.expAvgSq));
            out.put(s.name + "." + STEP, torch.scalar_tensor(new Scalar((double) s.step))); // float32 scalar
        }
        return out;
    }

    /**
     * Replaces the state with {@code state} (as written by {@link #stateDict()}): values are copied (cast to each
     * parameter's dtype and device); parameters absent from {@code state} start fresh. Fails, changing nothing,
     * on a key that names no parameter, an incomplete entry or a shape mismatch.
     */
    @Override
    public void loadStateDict(Map<String, Tensor> state) {
        ensureOpen();
        Set<String> withState = new TreeSet<>();
        for (Map.Entry<String, Tensor> e : state.entrySet()) {
            String key = e.getKey();
            int dot = key.lastIndexOf('.');
            String suffix = dot < 0 ? "" : key.substring(dot + 1);
            String name = dot < 0 ? key : key.substring(0, dot);
            if (!suffix.equals(EXP_AVG) && !suffix.equals(EXP_AVG_SQ) && !suffix.equals(STEP)) {
                throw new IllegalArgumentException("optimizer state key '" + key + "' does not end in ."
                        + EXP_AVG + ", ." + EXP_AVG_SQ + " or ." + STEP);
            }
            Slot s = byName.get(name);
            if (s == null) {
                throw new IllegalArgumentException("optimizer state key '" + key + "' names no trainable parameter"
                        + " of this run: the checkpoint was written with other trainable parameters (finetuning_type,"
                        + " lora_target, freeze settings must match the run being resumed)");
            }
            if (!suffix.equals(STEP) && !sameShape(e.getValue(), s.param)) {
                throw new IllegalArgumentException("optimizer state '" + key + "' has shape "
                        + shape(e.getValue()) + " but parameter '" + name + "' has shape " + shape(s.param));
            }
            withState.add(name);
        }
        for (String name : withState) {
            for (String suffix : List.of(EXP_AVG, EXP_AVG_SQ, STEP)) {
                if (!state.containsKey(name + "." + suffix)) {
                    throw new IllegalArgumentException("optimizer state for '" + name + "' lacks '" + name + "."
                            + suffix + "'");
                }
            }
        }
        for (Slot s : slots) {
            s.dropState();
            if (!withState.contains(s.name)) {
                continue;
            }
            s.expAvg = castLike(state.get(s.name + "." + EXP_AVG), s.param);
            s.expAvgSq = castLike(state.get(s.name + "." + EXP_AVG_SQ), s.param);
            s.step = Math.round(state.get(s.name + "." + STEP).item_double());
        }
    }

    /** How many updates parameter {@code name} has received (0 before its first gradient). */
    public long stepCount(String name) {
        ensureOpen();
        Slot s = byName.get(name);
        if (s == null) {
            throw new IllegalArgumentException("no trainable parameter named '" + name + "'");
        }
        return s.step;
    }

    /** The weight decay applied to parameter {@code name} (0 for the no-decay group). */
    public double weightDecay(String name) {
        Slot s = byName.get(name);
        if (s == null) {
            throw new IllegalArgumentException("no trainable parameter named '" + name + "'");
        }
        return s.weightDecay;
    }

    public Set<String> parameterNames() {
        return Collections.unmodifiableSet(byName.keySet());
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Slot s : slots) {
            s.dropState();
            s.param.close();
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("AdamW is closed");
        }
    }

    /**
     * Keeps {@code t} alive past any {@link PointerScope} the caller has open (training steps run in one): the extra
     * reference is released by {@link Tensor#close()} in {@link #close()}.
     */
    private static Tensor owned(Tensor t) {
        return t.retainReference();
    }

    private static Tensor castLike(Tensor value, Tensor param) {
        Tensor out = owned(torch.empty_like(param)); // param's shape, dtype, device
        try (PointerScope scope = new PointerScope()) {
            out.copy_(value.detach().reshape(shapeOf(param)));
        }
        return out;
    }

    private static boolean sameShape(Tensor a, Tensor b) {
        return a.defined() && Arrays.equals(shapeOf(a), shapeOf(b));
    }

    private static String shape(Tensor t) {
        return t.defined() ? Arrays.toString(shapeOf(t)) : "(undefined)";
    }

    static long[] shapeOf(Tensor t) {
        long[] shape = new long[(int) t.dim()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = t.size(i);
        }
        return shape;
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }
}
