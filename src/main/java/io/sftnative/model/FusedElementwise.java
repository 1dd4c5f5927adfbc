package io.sftnative.model;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.FunctionPreHook;
import org.bytedeco.pytorch.GradMode;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Node;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.bindings.Kernels;
import io.sftnative.bindings.TensorMemory;

/**
 * Our fused CPU fp32 kernels for SwiGLU ({@code silu(gate) * up}) and rotary embeddings (native/src/cpu/fused_cpu.cpp)
 * as differentiable ops: one pass over memory each way instead of libtorch's chain of elementwise ops and their
 * temporaries. Callers fall back to the libtorch ops when {@link #swigluSupported} / {@link #ropeSupported} say no.
 *
 * <p>Autograd wiring (Java cannot subclass {@code torch::autograd::Function}): the kernel writes a fresh output; a
 * zero-valued link from the inputs is added in place to one column of it ({@code out[..., :1] += 0 * x[..., :1]}),
 * which gives the output a {@code CopySlices} node and costs O(rows). Two kinds of per-call {@link FunctionPreHook}
 * (one C++ object each, owned by the graph) then do the backward: the one on the output's node receives dL/dout,
 * runs the backward kernel, keeps the input gradients and hands autograd an undefined gradient, so the link
 * computes nothing; the ones on the inputs' {@code view_as} nodes (downstream of the link, so they run later)
 * replace their undefined gradient by the kernel's. A non-finite input makes the link's 0 * x NaN in the first
 * column of the output, where the result is not finite anyway.
 */
public final class FusedElementwise {
    /** A/B switch for benchmarks ({@code SFT_FUSED_ELEMENTWISE=0}: libtorch's ops); on by default. */
    static final boolean ENABLED = !"0".equals(System.getenv("SFT_FUSED_ELEMENTWISE"));

    /** Calls whose backward has not run yet: keeps their Java hook objects reachable (native code holds them). */
    private static final Set<Call> PENDING = ConcurrentHashMap.newKeySet();
    private static final Scalar ZERO = new Scalar(0.0).retainReference(); // never freed, shared (read-only)

    private FusedElementwise() {}

    // ---- SwiGLU --------------------------------------------------------------------------------------------

    /** Whether {@link #swiglu} takes these inputs: fp32 CPU tensors of one shape with rows it can address. */
    public static boolean swigluSupported(Tensor gate, Tensor up) {
        return ENABLED && fp32Cpu(gate) && fp32Cpu(up) && gate.dim() >= 1 && Tensors.sameShape(gate, up)
                && rowStride(gate) > 0 && rowStride(up) > 0;
    }

    /** {@code silu(gate) * up}: gate, up (..., I) -> (..., I) contiguous. See {@link #swigluSupported}. */
    public static Tensor swiglu(Tensor gate, Tensor up) {
        long inter = gate.size(-1);
        long rows = inter == 0 ? 0 : gate.numel() / inter;
        Tensor out = emptyLike(gate); // (..., I)
        Kernels.cpu().swigluForward(data(gate), rowStride(gate), data(up), rowStride(up), data(out), inter, rows,
                inter);
        if (!GradMode.is_enabled() || !(gate.requires_grad() || up.requires_grad()) || rows == 0) {
            return out;
        }
        Call call = new Call(new Tensor[] {gate, up}) {
            @Override
            Tensor[] backward(Tensor dout) { // (..., I) -> dgate, dup
                Tensor g = saved[0];
                Tensor u = saved[1];
                Tensor d = dout.stride(-1) == 1 && rowStride(dout) > 0 ? dout : dout.contiguous();
                Tensor dg = emptyLike(g); // (..., I)
                Tensor du = emptyLike(u); // (..., I)
                Kernels.cpu().swigluBackward(data(g), rowStride(g), data(u), rowStride(u), data(d), rowStride(d),
                        data(dg), inter, data(du), inter, rows, inter);
                return new Tensor[] {dg, du};
            }
        };
        return attach(call, out, new Tensor[] {gate, up});
    }

    // ---- RoPE ----------------------------------------------------------------------------------------------

    /**
     * Whether {@link #rope} takes these inputs: x (B, T, heads, D) fp32 CPU with unit stride along D, cos and
     * sinSigned (B or 1, T, 1, R) fp32 with unit stride along R (the tables of {@link RotaryEmbedding#cosSin}, not
     * interleaved).
     */
    public static boolean ropeSupported(Tensor x, Tensor cos, Tensor sinSigned) {
        return ENABLED && fp32Cpu(x) && fp32Cpu(cos) && fp32Cpu(sinSigned) && x.dim() == 4 && cos.dim() == 4
                && x.stride(3) == 1 && cos.stride(3) == 1 && sinSigned.stride(3) == 1
                && Tensors.sameShape(cos, sinSigned)
                && cos.stride(0) == sinSigned.stride(0) && cos.stride(1) == sinSigned.stride(1)
                && (cos.size(0) == x.size(0) || cos.size(0) == 1) && cos.size(1) == x.size(1) && cos.size(2) == 1
                && cos.size(3) <= x.size(3) && cos.size(3) % 2 == 0 && cos.size(3) >= 2;
    }

    /**
     * {@code x * cos + rotate_half(x) * sin} on the first R dims of each head of x (B, T, heads, D), the rest copied:
     * (B, T, heads, D) contiguous. cos = [c, c], sinSigned = [-s, s] (B or 1, T, 1, R); the kernel reads their halves.
     */
    public static Tensor rope(Tensor x, Tensor cos, Tensor sinSigned) {
        long r = cos.size(3);
        Tensor out = emptyLike(x); // (B, T, heads, D)
        Tables tables = new Tables(cos, sinSigned);
        runRope(x, out, tables, r, false);
        if (!GradMode.is_enabled() || !x.requires_grad() || x.numel() == 0) {
            return out;
        }
        Call call = new Call(new Tensor[] {cos, sinSigned}) {
            @Override
            Tensor[] backward(Tensor dout) { // (B, T, heads, D) -> dx: the transposed rotation
                Tensor d = dout.stride(3) == 1 ? dout : dout.contiguous();
                Tensor dx = emptyLike(d); // (B, T, heads, D)
                runRope(d, dx, new Tables(saved[0], saved[1]), r, true);
                return new Tensor[] {dx};
            }
        };
        return attach(call, out, new Tensor[] {x});
    }

    private record Tables(Tensor cos, Tensor sinSigned) {}

    private static void runRope(Tensor x, Tensor out, Tables t, long r, boolean backward) {
        long b = x.size(0);
        long seq = x.size(1);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment strides = arena.allocate(ValueLayout.JAVA_LONG, 8);
            long[] s = {x.stride(0), x.stride(1), x.stride(2), out.stride(0), out.stride(1), out.stride(2),
                    t.cos().size(0) == 1 ? 0 : t.cos().stride(0), t.cos().size(1) == 1 ? 0 : t.cos().stride(1)};
            for (int i = 0; i < s.length; i++) {
                strides.setAtIndex(ValueLayout.JAVA_LONG, i, s[i]);
            }
            // cos = [c, c] and sinSigned = [-s, s]: the first half of one and the second half of the other are c, s
            MemorySegment sin = data(t.sinSigned()).asSlice(4 * (r / 2));
            Kernels.cpu().rope(data(x), data(out), data(t.cos()), sin, strides, b, seq, x.size(2), x.size(3), r,
                    backward);
        }
    }

    // ---- autograd wiring -----------------------------------------------------------------------------------

    /** Links {@code inputs} to {@code out} with zero cost and the hooks of {@code call}; returns out. */
    private static Tensor attach(Call call, Tensor out, Tensor[] inputs) {
        try (PointerScope scope = new PointerScope()) {
            Tensor[] views = new Tensor[inputs.length];
            Tensor link = null; // (..., 1) zeros that depend on every input needing a gradient
            for (int i = 0; i < inputs.length; i++) {
                if (inputs[i].requires_grad()) {
                    views[i] = inputs[i].view_as(inputs[i]);
                    Tensor z = views[i].narrow(-1, 0, 1).mul(ZERO);
                    link = link == null ? z : link.add(z);
                }
            }
            out.narrow(-1, 0, 1).add_(link); // out's node is now CopySlices: it sees dL/dout
            PENDING.add(call);
            Node node = out.grad_fn();
            // the nodes own the C++ hook objects (unique_ptr) and delete them with the graph; Java keeps only the Java
            // side alive until the hooks have run (PENDING)
            node.add_pre_hook(call.capture);
            call.capture.deallocate(false);
            for (int i = 0; i < inputs.length; i++) {
                if (views[i] != null) {
                    FunctionPreHook h = call.replaceHook(i);
                    views[i].grad_fn().add_pre_hook(h);
                    h.deallocate(false);
                    call.waiting++;
                }
            }
        } catch (RuntimeException e) {
            PENDING.remove(call);
            call.release();
            throw e;
        }
        return out;
    }

    /** Per-call state: the tensors the backward reads, then the input gradients between the hooks. */
    private abstract static class Call {
        final Tensor[] saved; // retained until the backward ran (or was discarded)
        private final Thread owner = Thread.currentThread();
        private Tensor[] grads; // retained, one per input, between the capture and the replace hooks
        private final FunctionPreHook[] replace = new FunctionPreHook[2];
        int waiting; // replace hooks still to run
        final FunctionPreHook capture = new FunctionPreHook() {
            @Override
            public TensorVector apply(TensorVector in) {
                capture(in);
                return in;
            }
        };

        Call(Tensor[] toSave) {
            saved = new Tensor[toSave.length];
            for (int i = 0; i < toSave.length; i++) {
                saved[i] = new Tensor(toSave[i]).retainReference();
            }
        }

        /** dL/dout -> one gradient per input of the forward (in the order given to attach). */
        abstract Tensor[] backward(Tensor dout);

        FunctionPreHook replaceHook(int i) {
            replace[i] = new FunctionPreHook() {
                @Override
                public TensorVector apply(TensorVector in) {
                    replace(i, in);
                    return in;
                }
            };
            return replace[i];
        }

        private void capture(TensorVector in) { // [dL/dout] -> [undefined]: the link computes nothing
            try (PointerScope scope = new PointerScope()) {
                Tensor g = in.get(0);
                if (g.defined()) {
                    Tensor[] r = backward(g);
                    grads = new Tensor[r.length];
                    for (int i = 0; i < r.length; i++) {
                        grads[i] = r[i].retainReference();
                    }
                }
                in.put(0, new Tensor());
            }
            releaseSaved();
        }

        private void replace(int i, TensorVector in) { // [undefined] -> [the kernel's gradient of input i]
            try {
                if (grads != null && grads[i] != null) {
                    in.put(0, grads[i]); // the vector holds its own reference
                    grads[i].releaseReference();
                    grads[i] = null;
                }
            } finally {
                if (--waiting <= 0) {
                    release();
                    PENDING.remove(this);
                }
            }
        }

        private void releaseSaved() {
            for (int i = 0; i < saved.length; i++) {
                if (saved[i] != null) {
                    saved[i].releaseReference();
                    saved[i] = null;
                }
            }
        }

        void release() {
            releaseSaved();
            if (grads != null) {
                for (Tensor g : grads) {
                    if (g != null) {
                        g.releaseReference();
                    }
                }
                grads = null;
            }
        }
    }

    /**
     * Drops the state of this thread's calls whose backward never ran (a forward with grad enabled that was not
     * backpropagated, or a failed backward); the loss runner calls it after each micro-batch. Returns how many.
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

    // ---- helpers -------------------------------------------------------------------------------------------

    private static boolean fp32Cpu(Tensor t) {
        return !t.is_cuda() && TensorMemory.same(t.scalar_type(), ScalarType.Float);
    }

    /**
     * The element distance between consecutive rows when t (..., n) is addressable as (rows, n) with unit stride
     * along n, else -1.
     */
    static long rowStride(Tensor t) {
        int nd = (int) t.dim();
        if (t.stride(nd - 1) != 1 && t.size(nd - 1) > 1) {
            return -1;
        }
        if (nd == 1) {
            return Math.max(1, t.size(0));
        }
        long ld = t.stride(nd - 2);
        for (int d = nd - 3; d >= 0; d--) {
            if (t.size(d) > 1 && t.stride(d) != t.stride(d + 1) * t.size(d + 1)) {
                return -1;
            }
        }
        return ld >= t.size(nd - 1) ? ld : (t.size(nd - 2) == 1 ? t.size(nd - 1) : -1);
    }

    /** A new contiguous fp32 CPU tensor of t's shape. */
    private static Tensor emptyLike(Tensor t) {
        return torch.empty(t.sizes().vec().get(), new TensorOptions(ScalarType.Float), new MemoryFormatOptional());
    }

    private static MemorySegment data(Tensor t) {
        return TensorMemory.stridedSegment(t, "fused elementwise tensor");
    }
}
