package io.sftnative.quant;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.FunctionPreHook;
import org.bytedeco.pytorch.GradMode;
import org.bytedeco.pytorch.Node;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.LinearLayer;

/**
 * A frozen linear layer whose weight is held quantized: bitsandbytes' {@code Linear4bit} (NF4/FP4, optionally
 * double-quantized) or {@code Linear8bitLt} (row-wise int8) as QLoRA uses them: {@code y = x dequant(W)^T + b},
 * computed in the input's dtype (the compute dtype). The weight never receives a gradient.
 *
 * <p><b>Memory.</b> The dequantized weight (out, in) exists only while this call's forward GEMM runs and, again,
 * while its input gradient is computed in the backward pass (spec §3.1: {@code MatMul4Bit} saves only the packed
 * weight and re-dequantizes). Java cannot subclass {@code autograd::Function}, so: the GEMM runs under no-grad
 * (autograd records nothing, so it saves nothing); when the input requires grad, a zero-valued path from x is added to
 * y ({@code y += 0 * x[..., :1]}, a few elementwise ops) whose two autograd nodes carry per-call pre-hooks
 * ({@link FunctionPreHook} subclasses, one C++ object each): the first captures {@code dL/dy} when the add's backward
 * starts, the second replaces the gradient flowing into x by {@code dL/dy · dequant(W)}. Loss and gradients equal
 * those of a plain {@code linear(x, dequant(W))} with a frozen weight (QuantizedLinearTest).
 *
 * <p>Ownership: owns its quantized weight ({@link #close()}); borrows the bias (a parameter of the model).
 */
public final class QuantizedLinear implements LinearLayer, AutoCloseable {
    /** Calls whose backward has not run yet: keeps their Java hook objects reachable (native code holds them). */
    private static final Set<Call> PENDING = ConcurrentHashMap.newKeySet();
    /** Largest reference count of a dequantized weight seen right after its GEMM (1 = nobody else holds it). */
    private static final AtomicLong MAX_USE_COUNT = new AtomicLong();
    private static final Scalar ZERO = new Scalar(0.0).retainReference(); // never freed, shared (read-only)

    private final String name;
    private final QuantizedWeight nf4; // 4-bit storage, or null
    private final RowwiseInt8Weight int8; // 8-bit storage, or null
    private final Tensor bias; // (out) borrowed, or null
    private final long in;
    private final long out;
    private boolean closed;

    private QuantizedLinear(String name, QuantizedWeight nf4, RowwiseInt8Weight int8, long[] shape, Tensor bias) {
        if (shape.length != 2) {
            throw new IllegalArgumentException(name + ": a linear weight must be (out, in), got " + shape.length
                    + " dims");
        }
        if (bias != null && (bias.dim() != 1 || bias.size(0) != shape[0])) {
            throw new IllegalArgumentException(name + ": bias must have " + shape[0] + " entries");
        }
        this.name = name;
        this.nf4 = nf4;
        this.int8 = int8;
        this.bias = bias;
        this.out = shape[0];
        this.in = shape[1];
    }

    /** A 4-bit layer; takes ownership of {@code weight} (out, in). {@code name}: the module path, for messages. */
    public static QuantizedLinear of(String name, QuantizedWeight weight, Tensor bias) {
        return new QuantizedLinear(name, weight, null, weight.shape(), bias);
    }

    /** An 8-bit layer; takes ownership of {@code weight} (out, in). */
    public static QuantizedLinear of(String name, RowwiseInt8Weight weight, Tensor bias) {
        return new QuantizedLinear(name, null, weight, weight.codes().sizes().vec().get(), bias);
    }

    @Override
    public Tensor forward(Tensor x) { // (..., in) -> (..., out)
        ensureOpen();
        boolean gradToInput = GradMode.is_enabled() && x.requires_grad();
        boolean gradToBias = bias != null && GradMode.is_enabled() && bias.requires_grad();
        long[] outShape = x.sizes().vec().get();
        outShape[outShape.length - 1] = out;
        Tensor y; // (N, out), a fresh (non-view) tensor so the zero path can be added in place
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            Tensor w = dequantize(x.scalar_type()); // (out, in), freed with this scope
            Tensor x2 = x.reshape(-1, in); // (N, in)
            y = bias == null || gradToBias ? torch.linear(x2, w) : torch.linear(x2, w, new TensorOptional(bias));
            MAX_USE_COUNT.accumulateAndGet(w.use_count(), Math::max);
            y.retainReference(); // survives the scope; handed to the caller's scope below
        }
        y = handOut(y);
        if (gradToInput) {
            attachInputGradient(x, y);
        }
        y = y.view(outShape); // (..., out)
        return gradToBias ? y.add(bias) : y;
    }

    /** The weight in {@code dtype} (out, in): a new tensor owned by the caller's scope. */
    public Tensor dequantize(ScalarType dtype) {
        ensureOpen();
        return nf4 != null ? nf4.dequantize(dtype) : int8.dequantize(dtype);
    }

    /**
     * Makes {@code y} differentiable w.r.t. {@code x} with the gradient {@code dL/dy · dequant(W)}, computed in the
     * backward pass from the quantized weight. In place on y (no second output buffer).
     */
    private void attachInputGradient(Tensor x, Tensor y) { // x (..., in), y (N, out)
        Call call = new Call(this);
        try (PointerScope scope = new PointerScope()) {
            Tensor xv = x.view_as(x); // (..., in): its node is where x's gradient gets replaced
            y.add_(xv.narrow(-1, 0, 1).mul(ZERO).reshape(-1, 1)); // (N, out) += 0: y's new node sees dL/dy
            PENDING.add(call);
            Node add = y.grad_fn();
            Node view = xv.grad_fn();
            // the nodes take ownership of the C++ hook objects (unique_ptr) and delete them with the graph; Java must
            // then never free them, only keep the Java side alive until the hooks have run (PENDING)
            add.add_pre_hook(call.capture);
            call.capture.deallocate(false);
            view.add_pre_hook(call.replace);
            call.replace.deallocate(false);
        } catch (RuntimeException e) {
            PENDING.remove(call);
            throw e;
        }
    }

    /** Per-call state of the backward pass: d(loss)/dy between the two hooks. */
    private static final class Call {
        private final QuantizedLinear layer;
        private final Thread owner = Thread.currentThread(); // the thread that ran the forward pass
        private Tensor gradY; // (..., out), retained between the hooks
        final FunctionPreHook capture;
        final FunctionPreHook replace;

        Call(QuantizedLinear layer) {
            this.layer = layer;
            this.capture = new FunctionPreHook() {
                @Override
                public TensorVector apply(TensorVector grads) {
                    captureGradY(grads);
                    return grads;
                }
            };
            this.replace = new FunctionPreHook() {
                @Override
                public TensorVector apply(TensorVector grads) {
                    replaceGradX(grads);
                    return grads;
                }
            };
        }

        private void captureGradY(TensorVector grads) { // [dL/dy (..., out)]
            release();
            try (PointerScope scope = new PointerScope()) {
                Tensor g = grads.get(0);
                if (g.defined()) {
                    gradY = new Tensor(g).retainReference();
                }
            }
        }

        private void replaceGradX(TensorVector grads) { // [dL/dx' (..., in)] -> [dL/dy · W]
            try (PointerScope scope = new PointerScope()) {
                if (gradY != null) {
                    Tensor w = layer.dequantize(gradY.scalar_type()); // (out, in), freed with this scope
                    grads.put(0, gradY.matmul(w)); // (..., in); the vector holds its own reference
                }
            } finally {
                release();
                PENDING.remove(this);
            }
        }

        private void release() {
            if (gradY != null) {
                gradY.releaseReference();
                gradY = null;
            }
        }
    }

    /**
     * Drops the state of this thread's calls whose backward never ran (a forward with grad enabled that was not
     * backpropagated, or a backward that failed); the step runner calls it after each micro-batch, when that graph
     * will not be backpropagated any more. Other threads' calls (another run in the same JVM) are left alone.
     * Returns how many there were.
     */
    public static int discardPendingBackward() {
        int n = 0;
        for (Call c : PENDING.toArray(new Call[0])) {
            if (c.owner == Thread.currentThread() && PENDING.remove(c)) {
                c.release();
                n++;
            }
        }
        return n;
    }

    /** Number of calls waiting for their backward (diagnostics, tests). */
    public static int pendingBackward() {
        return PENDING.size();
    }

    /**
     * The largest reference count a dequantized weight had right after its forward GEMM since the last reset: 1
     * means nothing but the transient handle referenced it (autograd kept no copy). Diagnostics and tests.
     */
    public static long maxDequantizedUseCount() {
        return MAX_USE_COUNT.get();
    }

    public static void resetDequantizedUseCount() {
        MAX_USE_COUNT.set(0);
    }

    /** Moves a reference made inside a closed scope into the caller's scope (or to the caller if none). */
    static Tensor handOut(Tensor t) {
        PointerScope outer = PointerScope.getInnerScope();
        if (outer != null) {
            outer.attach(t);
            t.releaseReference();
        }
        return t;
    }

    // ---------------------------------------------------------------- description

    /** 4 or 8. */
    public int bits() {
        return nf4 != null ? 4 : 8;
    }

    /** The 4-bit weight, or null for an 8-bit layer. Owned by this layer. */
    public QuantizedWeight fourBit() {
        ensureOpen();
        return nf4;
    }

    /** The 8-bit weight, or null for a 4-bit layer. Owned by this layer. */
    public RowwiseInt8Weight eightBit() {
        ensureOpen();
        return int8;
    }

    /** The dtype the weight was quantized from (and dequantizes to by default). */
    public ScalarType weightDtype() {
        ensureOpen();
        return nf4 != null ? nf4.dtype() : int8.dtype();
    }

    /** (out), borrowed from the model, or null. */
    public Tensor bias() {
        return bias;
    }

    /** Bytes of the quantized weight storage (codes and statistics; not the bias). */
    public long storageBytes() {
        ensureOpen();
        return nf4 != null ? nf4.storageBytes() : int8.codes().nbytes() + int8.scb().nbytes();
    }

    /** Checkpoint tensors of the weight under module prefix {@code prefix} (bitsandbytes / transformers keys). */
    public Map<String, Tensor> stateDict(String prefix) {
        ensureOpen();
        return nf4 != null ? nf4.stateDict(prefix) : int8.stateDict(prefix);
    }

    public String name() {
        return name;
    }

    @Override
    public long inFeatures() {
        return in;
    }

    @Override
    public long outFeatures() {
        return out;
    }

    @Override
    public String toString() {
        return "QuantizedLinear(" + name + ", " + in + " -> " + out + ", "
                + (nf4 != null ? nf4.toString() : "int8 row-wise") + (closed ? ", closed" : "") + ")";
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException(this + " is used after close()");
        }
    }

    /** Frees the quantized weight; later use fails. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (nf4 != null) {
            nf4.close();
        } else {
            int8.close();
        }
    }
}
