package io.sftnative.loss;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.bindings.Kernels;
import io.sftnative.model.AttentionContext;
import io.sftnative.batch.Batch;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.DenseLinear;
import io.sftnative.model.FusedElementwise;
import io.sftnative.model.LinearLayer;
import io.sftnative.model.safetensors.DType;
import io.sftnative.quant.QuantizedLinear;
import io.sftnative.torch.Autocast;

/**
 * Forward, causal-LM loss and backward of one micro-batch with the memory savers QLoRA training relies on:
 * <ul>
 * <li><b>gradient checkpointing</b> ({@link LayerCheckpointing}): only each decoder layer's input is kept; layers are
 * recomputed one at a time in the backward pass;</li>
 * <li><b>fused linear cross-entropy</b> ({@link FusedLinearCrossEntropy}): the LM head and the loss run chunk by chunk
 * with the label shift inside, so the (B, T, V) logits never exist. When the head slot is not a plain dense layer
 * (LoRA on lm_head) the loss is still chunked, through autograd per chunk;</li>
 * <li>quantized base weights ({@link QuantizedLinear}) need nothing here: they re-dequantize in their backward.</li>
 * </ul>
 * With both off this is the plain HF computation. Loss and gradients are the same either way (MemoryEfficientLossTest).
 *
 * <p>Contract (the trainer's loss seam): the gradient of {@code lossSum / normaliser} is added to the trainable
 * parameters' {@code .grad}; the summed loss over the micro-batch's target tokens is returned. Every temporary is
 * freed before returning.
 */
// PointerScope blocks and guards are held for their side effect
@SuppressWarnings("try")
public final class MemoryEfficientLoss implements LossComputation {
    private static final Logger LOG = Logger.getLogger(MemoryEfficientLoss.class.getName());
    private static final Set<String> WARNED = ConcurrentHashMap.newKeySet();

    private final boolean checkpointing;
    private final boolean fused;
    private final int chunkRows;
    private final Autocast autocast;
    private final LayerHooks hooks; // ZeRO-2/3 unit hooks (gradient checkpointing only); NONE otherwise

    /** Without autocast (the model's dtype throughout). */
    public MemoryEfficientLoss(boolean gradientCheckpointing, Boolean fusedCrossEntropy, int chunkRows) {
        this(gradientCheckpointing, fusedCrossEntropy, chunkRows, Autocast.OFF);
    }

    /**
     * @param gradientCheckpointing recompute layers in the backward pass ({@code gradient_checkpointing})
     * @param fusedCrossEntropy     chunked LM head + loss ({@code fused_cross_entropy}); null = the default
     *                              ({@link #fusedByDefault()})
     * @param chunkRows             rows per loss chunk, {@code <= 0} for automatic
     * @param autocast              mixed precision of the forward passes (bf16: true); backward runs outside it
     */
    public MemoryEfficientLoss(boolean gradientCheckpointing, Boolean fusedCrossEntropy, int chunkRows,
            Autocast autocast) {
        this.checkpointing = gradientCheckpointing;
        this.fused = fusedCrossEntropy != null ? fusedCrossEntropy : fusedByDefault();
        this.chunkRows = chunkRows;
        this.autocast = autocast;
        this.hooks = LayerHooks.NONE;
    }

    private MemoryEfficientLoss(MemoryEfficientLoss base, LayerHooks hooks) {
        this.checkpointing = base.checkpointing;
        this.fused = base.fused;
        this.chunkRows = base.chunkRows;
        this.autocast = base.autocast;
        this.hooks = hooks;
    }

    /**
     * This loss with {@code hooks} called around every unit of the training step (ZeRO-2/3: {@link LayerHooks}).
     * Needs gradient checkpointing, whose layer-by-layer backward gives each unit its own moment.
     */
    public MemoryEfficientLoss withHooks(LayerHooks hooks) {
        if (hooks != LayerHooks.NONE && !checkpointing) {
            throw new IllegalArgumentException("layer hooks need gradient checkpointing");
        }
        return new MemoryEfficientLoss(this, hooks);
    }

    /**
     * On whenever the native kernels are in this build (always, unless built with {@code -Dnative.skip=true}): the
     * fused loss needs less memory than the (B, T, V) logits at every size and was faster on the CPU in our
     * measurements (benchmarks/RESULTS.md).
     */
    public static boolean fusedByDefault() {
        try {
            Kernels.cpu();
            return true;
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
    }

    public boolean gradientCheckpointing() {
        return checkpointing;
    }

    public boolean fusedCrossEntropy() {
        return fused;
    }

    @Override
    public double forwardBackward(DecoderModel model, MicroBatch batch, double normaliser) {
        RouterAuxLoss.begin(model, batch, normaliser); // MoE models: record router logits for the aux loss
        return forwardBackward(model, batch.inputIds(), batch.labels(), batch.context(), normaliser);
    }

    @Override
    public MicroBatch upload(Batch b, DecoderModel model) {
        return MicroBatch.uploadForTraining(b, model, autocast);
    }

    @Override
    public double lossSum(DecoderModel model, MicroBatch batch) {
        return lossSum(model, batch.inputIds(), batch.labels(), batch.context());
    }

    /** A short description for logs. */
    @Override
    public String name() {
        return (checkpointing ? "gradient-checkpointing" : "plain") + (fused ? "+fused-ce" : "");
    }

    /**
     * Forward + loss + backward. ids, labels (B, T) int64 (labels unshifted, -100 ignored); normaliser: the target
     * tokens of the whole accumulated batch (> 0). Returns the summed loss of this micro-batch.
     */
    public double forwardBackward(DecoderModel model, Tensor inputIds, Tensor labels, AttentionContext ctx,
            double normaliser) {
        if (!(normaliser > 0) || Double.isInfinite(normaliser)) {
            throw new IllegalArgumentException("normaliser must be a finite count > 0, got " + normaliser);
        }
        try (PointerScope scope = new PointerScope()) {
            LayerCheckpointing ck = null;
            try {
                Tensor top; // (B, T, H) the last layer's output
                Tensor hidden; // (B, T, H) after the final norm
                try (Autocast.Scope cast = autocast.enter()) {
                    hooks.gather(LayerHooks.EMBEDDING);
                    Tensor embedded = model.embed(inputIds); // (B, T, H)
                    hooks.release(LayerHooks.EMBEDDING); // its backward needs the indices, not the weight
                    if (checkpointing) {
                        ck = LayerCheckpointing.forward(model, embedded, ctx, autocast, hooks);
                        top = ck.output().detach().requires_grad_(true); // leaf: the loss backward stops here
                    } else {
                        top = embedded;
                        for (int i = 0; i < model.config().numHiddenLayers(); i++) {
                            top = model.layer(i, top, ctx);
                        }
                    }
                    hooks.gather(LayerHooks.HEAD);
                    hidden = model.finalNorm(top);
                }
                // MoE: coef * load-balancing loss; after a checkpointed (no-grad) forward it has no graph and each
                // recomputed layer backpropagates its own share instead (RouterLog.replay)
                Tensor aux = RouterAuxLoss.finish(model);
                double lossSum = lossAndBackward(model, hidden, labels, normaliser,
                        aux != null && aux.requires_grad() ? aux : null);
                hooks.gradientsReady(LayerHooks.HEAD); // the fused kernel wrote lm_head's gradient by now
                hooks.release(LayerHooks.HEAD);
                if (ck != null) {
                    Tensor g = top.grad(); // (B, T, H)
                    ck.backward(g.defined() ? g : torch.zeros_like(top));
                }
                return lossSum;
            } finally {
                if (ck != null) {
                    ck.close();
                }
                if (model.routerLog() != null) {
                    model.routerLog().endReplay();
                }
                QuantizedLinear.discardPendingBackward();
                FusedElementwise.discardPendingBackward();
            }
        }
    }

    /** The summed loss of a micro-batch without gradients (evaluation); never materialises all logits when fused. */
    public double lossSum(DecoderModel model, Tensor inputIds, Tensor labels, AttentionContext ctx) {
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            Tensor hidden; // (B, T, H) after the final norm
            try (Autocast.Scope cast = autocast.enter()) {
                hidden = model.hidden(inputIds, ctx);
                if (!fused) {
                    return CausalLmLoss.sum(model.lmHead(hidden), labels).sum().item_double();
                }
            }
            return chunkedLossSum(model, hidden, labels, null);
        }
    }

    /**
     * The loss of hidden (B, T, H) and its backward into the model; returns the loss sum. {@code aux}: a scalar
     * with a graph into the model (the MoE load-balancing term) backpropagated in the same pass, or null.
     */
    private double lossAndBackward(DecoderModel model, Tensor hidden, Tensor labels, double normaliser,
            Tensor aux) {
        if (!fused) {
            CausalLmLoss.SumAndCount sc;
            try (Autocast.Scope cast = autocast.enter()) {
                sc = CausalLmLoss.sum(model.lmHead(hidden), labels);
            }
            if (sc.sum().requires_grad()) {
                Tensor total = sc.sum().div(new Scalar(normaliser)); // ()
                (aux == null ? total : total.add(aux)).backward();
            }
            return sc.sum().item_double();
        }
        LinearLayer head = model.linear("lm_head");
        // the kernel computes plain x W^T logits: soft-capped or scaled logits (gemma2, granite) go the chunked
        // autograd way below, through model.lmHead
        if (head instanceof DenseLinear dense && dense.bias() == null && model.config().arch().plainLogits()
                && fusedKernelRunsOn(dense.weight())) {
            Tensor w = dense.weight(); // (V, H)
            // bf16 autocast with an fp32 head (full fine-tuning): the logits in bf16 as autocast computes lm_head
            // (transformers' bf16 logits, then the loss in fp32), on a bf16 copy of the weight; its gradient still
            // accumulates in fp32. On the CPU only: CUDA keeps the fp32 head (not validated on a GPU here).
            boolean bf16Head = autocast == Autocast.BF16 && !w.is_cuda() && DType.same(w.scalar_type(),
                    ScalarType.Float);
            Tensor wc = bf16Head ? w.detach().to(ScalarType.BFloat16) : w; // (V, H) what the GEMMs read
            Tensor h = DType.same(hidden.scalar_type(), wc.scalar_type()) ? hidden : hidden.to(wc.scalar_type());
            try (FusedLinearCrossEntropy.Result r = FusedLinearCrossEntropy.causalLm(h, wc, labels, normaliser,
                    chunkRows, w.requires_grad())) {
                FusedLinearCrossEntropy.backward(r, h, w, aux);
                return r.lossSum();
            }
        }
        // An adapted head (LoRA on lm_head) or capped/scaled logits: chunks through autograd, then one backward.
        Tensor leaf = hidden.detach().requires_grad_(hidden.requires_grad()); // (B, T, H)
        double sum = chunkedLossSum(model, leaf, labels, normaliser);
        if (hidden.requires_grad() && leaf.grad().defined()) {
            TensorVector roots = new TensorVector(hidden);
            TensorVector grads = new TensorVector(leaf.grad());
            if (aux != null) {
                roots.push_back(aux);
                grads.push_back(torch.ones_like(aux));
            }
            torch.backward(roots, grads, new BoolOptional(), false, new TensorVector());
        }
        return sum;
    }

    /**
     * Whether our fused kernel can take the head {@code w} (V, H) where it lives: always on the CPU; on a GPU only
     * when the jar carries libsftnative_cuda (built where nvcc was found) and the dtype is fp32 or bf16. Otherwise
     * the loss stays chunked through libtorch ops (the adapted-head path), which run on any device: a device pointer
     * never reaches a CPU kernel, and a missing CUDA library costs speed, not the run.
     */
    private static boolean fusedKernelRunsOn(Tensor w) {
        if (!w.is_cuda()) {
            return true;
        }
        if (DType.same(w.scalar_type(), ScalarType.Half)) {
            warnOnce("fused_cross_entropy: the CUDA kernel takes fp32 or bf16, the LM head is fp16; using libtorch's"
                    + " chunked cross-entropy");
            return false;
        }
        Boolean ok = cudaKernels;
        if (ok == null) {
            try {
                Kernels.cuda();
                ok = true;
            } catch (RuntimeException | LinkageError e) {
                ok = false;
                warnOnce("fused_cross_entropy: the CUDA kernels cannot be used (" + e.getMessage() + "); using"
                        + " libtorch's chunked cross-entropy on the GPU");
            }
            cudaKernels = ok;
        }
        return ok;
    }

    private static volatile Boolean cudaKernels; // null until the first GPU step asks

    private static void warnOnce(String message) {
        if (WARNED.add(message)) {
            LOG.warning(message);
        }
    }

    /**
     * Sum of the causal-LM loss of hidden (B, T, H) through the lm_head slot, chunk by chunk of rows; with a
     * {@code normaliser}, backpropagates each chunk's {@code sum / normaliser} (grad mode must be on).
     */
    private double chunkedLossSum(DecoderModel model, Tensor hidden, Tensor labels, Double normaliser) {
        long h = hidden.size(2);
        long n = hidden.size(0) * hidden.size(1);
        long v = model.config().vocabSize();
        Tensor x = hidden.reshape(n, h); // (N, H)
        Tensor targets = CausalLmLoss.shiftLabels(labels).reshape(n); // (N)
        long chunk = chunkRows > 0 ? Math.min(chunkRows, n) : FusedLinearCrossEntropy.defaultChunkRows(n, v, h);
        double sum = 0;
        for (long r0 = 0; r0 < n; r0 += chunk) {
            try (PointerScope scope = new PointerScope()) {
                long rows = Math.min(chunk, n - r0);
                Tensor logits; // (rows, V) fp32
                try (Autocast.Scope cast = autocast.enter()) {
                    logits = model.lmHead(x.narrow(0, r0, rows)).to(ScalarType.Float);
                }
                Tensor s = torch.cross_entropy_loss(logits, targets.narrow(0, r0, rows), new TensorOptional(), 2,
                        CausalLmLoss.IGNORE_INDEX, 0.0); // reduction sum
                sum += s.item_double();
                if (normaliser != null && s.requires_grad()) {
                    s.div(new Scalar(normaliser)).backward();
                }
            }
        }
        return sum;
    }
}
