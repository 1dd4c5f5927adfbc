package io.sftnative.optim;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * Gradient clipping by the total L2 norm, as {@code torch.nn.utils.clip_grad_norm_(params, max_norm)}:
 * {@code total = ||(||g_1||, ..., ||g_n||)||}, {@code coef = min(1, max_norm / (total + 1e-6))}, every gradient is
 * multiplied by {@code coef} in place, and the pre-clip total is returned (what HF logs as {@code grad_norm}).
 *
 * <p>One deliberate difference: when the total is NaN or infinite, torch multiplies every gradient by NaN (ruining the
 * weights at the next step); here the gradients are left untouched so the trainer can skip the step or stop with a
 * clear message ({@link #isFinite}).
 */
@SuppressWarnings("try") // scopes and no-grad guards are held for their side effect
public final class GradClip {
    private GradClip() {}

    /** The pre-clip total L2 norm of all defined gradients of {@code params}; 0 when none has a gradient. */
    public static double clipGradNorm(Collection<Tensor> params, double maxNorm) {
        if (!(maxNorm > 0)) {
            throw new IllegalArgumentException("max_grad_norm must be > 0 to clip, got " + maxNorm
                    + " (HF skips clipping when max_grad_norm <= 0: call totalNorm instead)");
        }
        try (NoGradGuard noGrad = new NoGradGuard(); PointerScope scope = new PointerScope()) {
            List<Tensor> grads = grads(params);
            if (grads.isEmpty()) {
                return 0.0;
            }
            Tensor total = totalNormTensor(grads); // () in the gradients' dtype
            double totalNorm = total.item_double();
            if (!isFinite(totalNorm)) {
                return totalNorm;
            }
            // computed as a tensor in the gradients' dtype, exactly as torch does (rounding included)
            Tensor coef = torch.clamp_max(torch.reciprocal(total.add(new Scalar(1e-6))).mul(new Scalar(maxNorm)),
                    new Scalar(1.0)); // ()
            for (Tensor g : grads) {
                g.mul_(coef.to(g.device(), coef.scalar_type()));
            }
            return totalNorm;
        }
    }

    /** The total L2 norm of all defined gradients of {@code params}, without clipping (0 when none). */
    public static double totalNorm(Collection<Tensor> params) {
        try (NoGradGuard noGrad = new NoGradGuard(); PointerScope scope = new PointerScope()) {
            List<Tensor> grads = grads(params);
            return grads.isEmpty() ? 0.0 : totalNormTensor(grads).item_double();
        }
    }

    /** False for NaN and ±infinity: the step that produced such a norm must not update the weights. */
    public static boolean isFinite(double norm) {
        return !Double.isNaN(norm) && !Double.isInfinite(norm);
    }

    private static List<Tensor> grads(Collection<Tensor> params) {
        List<Tensor> grads = new ArrayList<>();
        for (Tensor p : params) {
            Tensor g = p.grad(); // same shape as p, or undefined
            if (g.defined()) {
                grads.add(g);
            }
        }
        return grads;
    }

    private static Tensor totalNormTensor(List<Tensor> grads) {
        TensorVector norms = new TensorVector();
        for (Tensor g : grads) {
            norms.push_back(torch.linalg_vector_norm(g)); // () per gradient
        }
        return torch.linalg_vector_norm(torch.stack(norms)); // (n,) -> ()
    }
}
