package io.sftnative.lora;

import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.StringViewOptional;
import org.bytedeco.pytorch.T_TensorTensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.DenseLinear;
import io.sftnative.model.LinearLayer;
import io.sftnative.torch.Devices;

/**
 * PiSSA initialisation as PEFT's {@code LoraLayer.pissa_init} does it: with {@code W ≈ U_r S_r V_r^T} the top-r
 * singular triplets of the base weight (fp32), {@code A = sqrt(S_r / s) V_r^T} (r, in), {@code B = U_r sqrt(S_r / s)}
 * (out, r) and the base weight replaced by the residual {@code W - (s·B)·A}, so the model's output is unchanged at
 * initialisation while the adapter starts on the principal components.
 *
 * <p>{@code pissa} takes the exact SVD ({@code torch.linalg.svd}); {@code pissa_niter_N} the randomised one of
 * {@code torch.svd_lowrank(W, q=r, niter=N)} (Halko et al. 2009, Algorithm 4.4 + 5.1: a Gaussian test matrix, N
 * power iterations with QR re-orthonormalisation, the SVD of the small projected matrix; a wide W is handled as its
 * transpose, as torch 2.x does). PEFT draws that test
 * matrix from torch's global generator, so its result depends on whatever ran before; here it comes from a generator
 * seeded with {@link #FAST_SVD_SEED} for every layer, so the same base weight always gives the same adapter and
 * residual (needed to rebuild the residual when a PiSSA adapter is loaded).
 */
final class Pissa {
    /** Seed of the fast SVD's Gaussian test matrix (one fresh generator per layer). */
    static final long FAST_SVD_SEED = 0;

    private Pissa() {}

    /** A (r, in) and B (out, r) in fp32 on the weight's device, retained (the caller owns them). */
    record Factors(Tensor a, Tensor b) {}

    /**
     * Replaces {@code w} (out, in; fp32/bf16/fp16) in place by its PiSSA residual and returns the factors.
     *
     * @param niter -1 for the full SVD, else the fast SVD's subspace iterations
     */
    static Factors init(Tensor w, int rank, double scaling, int niter) {
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            Tensor w32 = w.to(ScalarType.Float); // (out, in); a copy unless w is fp32 (then only read here)
            Tensor u; // (out, r)
            Tensor s; // (r)
            Tensor vh; // (r, in)
            if (niter < 0) {
                T_TensorTensorTensor_T svd = torch.linalg_svd(w32, false, new StringViewOptional());
                u = svd.get0().narrow(1, 0, rank);
                s = svd.get1().narrow(0, 0, rank);
                vh = svd.get2().narrow(0, 0, rank);
            } else {
                Tensor[] usv = svdLowrank(w32, rank, niter);
                u = usv[0];
                s = usv[1];
                vh = usv[2].t();
            }
            Tensor root = s.div(new Scalar(scaling)).sqrt(); // (r): sqrt(S_r / s)
            Tensor a = vh.mul(root.unsqueeze(1)).contiguous(); // (r, in) = diag(root) @ Vh_r
            Tensor b = u.mul(root.unsqueeze(0)).contiguous(); // (out, r) = U_r @ diag(root)
            Tensor residual = w32.sub(torch.mm(b.mul(new Scalar(scaling)), a)); // (out, in), PEFT: W - s * B @ A
            w.copy_(residual);
            return new Factors(a.retainReference(), b.retainReference());
        }
    }

    /**
     * {@code torch.svd_lowrank(m, q, niter)} without a mean, as current torch computes it ({@code _lowrank.py}): a
     * wide matrix is transposed first ("assume that A is tall") and U, V swapped back. Returns U (rows, q), S (q),
     * V (cols, q) with {@code m ≈ U diag(S) V^T}. Test matrix from {@link #FAST_SVD_SEED}, drawn on the host.
     */
    static Tensor[] svdLowrank(Tensor m, int q, int niter) { // m (rows, cols) fp32
        boolean wide = m.size(0) < m.size(1);
        Tensor a = wide ? m.t() : m; // (tall, short)
        Generator gen = torch.make_generator_cpu(FAST_SVD_SEED);
        Tensor r = torch.randn(new long[] {a.size(1), q}, new GeneratorOptional(gen),
                new TensorOptions(ScalarType.Float));
        r = Devices.to(r, a.device()); // (short, q)
        Tensor at = a.t(); // (short, tall)
        Tensor basis = torch.linalg_qr(torch.mm(a, r)).get0(); // (tall, q)
        for (int i = 0; i < niter; i++) {
            basis = torch.linalg_qr(torch.mm(at, basis)).get0(); // (short, q)
            basis = torch.linalg_qr(torch.mm(a, basis)).get0(); // (tall, q)
        }
        Tensor projected = torch.mm(basis.t(), a); // (q, short)
        T_TensorTensorTensor_T svd = torch.linalg_svd(projected, false, new StringViewOptional());
        Tensor u = torch.mm(basis, svd.get0()); // (tall, q)
        Tensor v = svd.get2().t(); // (short, q)
        return wide ? new Tensor[] {v, svd.get1(), u} : new Tensor[] {u, svd.get1(), v};
    }

    /** PiSSA on {@code path}: the base weight becomes the residual; returns A0/B0 (fp32, owned, kept in initial). */
    static Factors onModel(DecoderModel model, String path, LoraSpec spec, List<Tensor> owned,
            Map<String, Factors> initial) {
        Tensor w = ((DenseLinear) model.linear(path)).weight(); // (out, in)
        Factors f = init(w, spec.rank(), spec.scaling(), spec.pissaNiter());
        owned.add(f.a());
        owned.add(f.b());
        initial.put(path, f);
        return f;
    }

    /** Undoes the PiSSA residuals: {@code W_res + (s·B0)·A0} (W up to rounding). */
    static void restore(DecoderModel model, double scaling, Map<String, Factors> initial) {
        if (initial.isEmpty() || model.isClosed()) {
            return;
        }
        try (NoGradGuard noGrad = new NoGradGuard(); PointerScope scope = new PointerScope()) {
            for (Map.Entry<String, Factors> e : initial.entrySet()) {
                LinearLayer l = model.linear(e.getKey());
                Tensor w = ((DenseLinear) (l instanceof LoraLinear s ? s.base() : l)).weight(); // (out, in)
                Factors f = e.getValue();
                w.copy_(w.to(ScalarType.Float).add(torch.mm(f.b().mul(new Scalar(scaling)), f.a())));
            }
        }
    }

    /**
     * PiSSA rewrites the base weights, so it needs them dense: LLaMA-Factory refuses it on a quantized model
     * ("use scripts/pissa_init.py"), PEFT on a non-float weight.
     */
    static void checkBases(DecoderModel model, List<String> paths) {
        for (String path : paths) {
            LinearLayer base = model.linear(path);
            if (!(base instanceof DenseLinear)) {
                throw new IllegalArgumentException("PiSSA (pissa_init / init_lora_weights: pissa) replaces the base"
                        + " weight of " + path + " by its SVD residual, but that layer is "
                        + base.getClass().getSimpleName() + ", not a dense float weight. As LLaMA-Factory, PiSSA is"
                        + " not initialised on a quantized model: train without quantization_bit (or convert the"
                        + " adapter with pissa_convert and use that one on the quantized base)");
            }
        }
    }
}
