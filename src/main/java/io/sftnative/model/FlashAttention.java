package io.sftnative.model;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.Deque;

import org.bytedeco.pytorch.GradMode;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorBase;
import org.bytedeco.pytorch.TensorTensorHook;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.DeviceType;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.bindings.Kernels;
import io.sftnative.bindings.NativeKernelException;
import io.sftnative.bindings.TensorMemory;

/**
 * Our CPU attention kernel (native/src/cpu/attention_cpu.cpp: tiled online-softmax forward storing the log-sum-exp,
 * recomputing backward; fp32, or bf16 in memory with fp32 arithmetic) as a differentiable op. Memory is linear in T: which keys a query sees comes from
 * {@link KeyRanges}, never from a (B, 1, T, S) mask.
 *
 * <p>Autograd wiring: Java cannot subclass {@code torch::autograd::Function}, and JavaCPP allows only a handful of
 * live callback objects per hook class, so the op uses three static hooks and a stack. The forward returns
 * {@code out + 0 * (sum(q) + sum(k) + sum(v))} (the value is {@code out}; the zero term only links q, k, v into the
 * graph) and pushes a {@link Pending} record. In the backward, the hook on the output pops the newest record (layers'
 * attention backward runs in the reverse order of their forward, also with recomputation, which runs each forward
 * right before its backward), runs the backward kernel on dO, and the hooks on q, k and v replace the zero
 * gradients the link gives them by dQ, dK, dV.
 */
public final class FlashAttention {
    private record Pending(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, KeyRanges ranges, float scale,
            float softcap) {}

    private static final Deque<Pending> STACK = new ArrayDeque<>();
    private static Tensor[] grads; // dQ, dK, dV of the record whose output hook ran last

    private static final TensorTensorHook OUT_HOOK = new TensorTensorHook() {
        @Override
        public TensorBase call(TensorBase grad) {
            backward(new Tensor(grad));
            return grad;
        }
    }.retainReference(); // static: must outlive every backward pass that uses it

    private static final TensorTensorHook[] INPUT_HOOKS = {inputHook(0), inputHook(1), inputHook(2)};

    private FlashAttention() {}

    /**
     * Whether the kernel handles these inputs: CPU tensors with a unit stride along head_dim, all fp32 or all bf16, or
     * fp32/bf16 under CPU bf16 autocast (they are computed in bf16 then, as autocast does for SDPA).
     */
    static boolean supports(Tensor q, Tensor k, Tensor v) {
        for (Tensor t : new Tensor[] {q, k, v}) {
            if (t.is_cuda() || t.dim() != 4 || !(TensorMemory.same(t.scalar_type(), ScalarType.Float)
                    || TensorMemory.same(t.scalar_type(), ScalarType.BFloat16))) {
                return false;
            }
        }
        if (computeDtype(q, k, v) == null) {
            return false;
        }
        return k.size(2) == q.size(2) && q.size(1) % k.size(1) == 0;
    }

    /**
     * bf16 under CPU bf16 autocast (SDPA is one of autocast's lower-precision ops), else the inputs' common dtype;
     * null when they differ without autocast.
     */
    private static ScalarType computeDtype(Tensor q, Tensor k, Tensor v) {
        if (torch.is_autocast_enabled(DeviceType.CPU)
                && TensorMemory.same(torch.get_autocast_dtype(DeviceType.CPU), ScalarType.BFloat16)) {
            return ScalarType.BFloat16;
        }
        ScalarType d = q.scalar_type();
        return TensorMemory.same(k.scalar_type(), d) && TensorMemory.same(v.scalar_type(), d) ? d : null;
    }

    private static boolean isBf16(Tensor t) {
        return TensorMemory.same(t.scalar_type(), ScalarType.BFloat16);
    }

    private static Tensor as(Tensor t, ScalarType dtype) {
        return TensorMemory.same(t.scalar_type(), dtype) ? t : t.to(dtype);
    }

    /** Drops records of forward passes that never ran backward (a new batch starts). */
    static synchronized void reset() {
        STACK.clear();
        grads = null;
    }

    /**
     * q (B, nH, T, D), k/v (B, nKV, T, D) fp32 or bf16 CPU (bf16 under CPU bf16 autocast) -> (B, nH, T, D) in that
     * dtype, laid out as (B, T, nH, D) in memory (the layout the output projection reads). softcap 0 = none.
     */
    public static Tensor attention(Tensor q, Tensor k, Tensor v, KeyRanges ranges, double scale, double softcap) {
        ScalarType dtype = computeDtype(q, k, v);
        if (dtype == null) {
            throw new IllegalArgumentException("flash attention: q, k, v dtypes differ (" + q.scalar_type() + ", "
                    + k.scalar_type() + ", " + v.scalar_type() + ") outside bf16 autocast");
        }
        q = as(q, dtype); // autocast: the differentiable cast SDPA would do
        k = as(k, dtype);
        v = as(v, dtype);
        Tensor qq = unitLast(q);
        Tensor kk = unitLast(k);
        Tensor vv = unitLast(v);
        long b = q.size(0);
        long h = q.size(1);
        long t = q.size(2);
        long d = q.size(3);
        Tensor out = torch.empty(new long[] {b, t, h, d}, new TensorOptions(dtype), new MemoryFormatOptional())
                .transpose(1, 2); // (B, nH, T, D) view of (B, T, nH, D)
        Tensor lse = torch.empty(b, h, t); // (B, nH, T) fp32 for both dtypes
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment strides = strides(arena, qq, kk, vv, out);
            if (isBf16(qq)) {
                Kernels.cpu().attentionForwardBf16(data(qq), data(kk), data(vv), data(out), data(lse), b, h,
                        k.size(1), t, d, strides, lo(ranges), hi(ranges), (float) scale, (float) softcap);
            } else {
                Kernels.cpu().attentionForward(data(qq), data(kk), data(vv), data(out), data(lse), b, h, k.size(1),
                        t, d, strides, lo(ranges), hi(ranges), (float) scale, (float) softcap);
            }
        }
        boolean grad = GradMode.is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
        if (!grad) {
            return out;
        }
        // Fresh views: hooks on them die with this graph (hooks on leaf inputs would pile up across calls).
        Tensor[] in = {view(q), view(k), view(v)};
        Tensor link = in[0].sum().add(in[1].sum()).add(in[2].sum()).mul(new Scalar(0.0)); // () zero
        Tensor result = out.add(link); // (B, nH, T, D), same strides as out
        synchronized (FlashAttention.class) {
            STACK.push(new Pending(qq, kk, vv, out, lse, ranges, (float) scale, (float) softcap));
        }
        result.register_hook(OUT_HOOK);
        for (int i = 0; i < 3; i++) {
            if (in[i].requires_grad()) {
                in[i].register_hook(INPUT_HOOKS[i]);
            }
        }
        return result;
    }

    /**
     * Key ranges of a batch layout (header: jbnb_attention_ranges_cpu): segments (B, T) int64 (0 = padding; each id
     * one contiguous run) or null, lengths (B) of right-padded rows or null, window or null. Returns null when a
     * segment id appears in two runs (the caller falls back to a mask).
     */
    public static KeyRanges ranges(long batch, long seq, Tensor segments, long[] lengths, Integer window) {
        Tensor lo = torch.empty(new long[] {batch, seq}, new TensorOptions(ScalarType.Int),
                new MemoryFormatOptional()); // (B, T)
        Tensor hi = torch.empty(new long[] {batch, seq}, new TensorOptions(ScalarType.Int),
                new MemoryFormatOptional()); // (B, T)
        Tensor seg = segments == null ? null : segments.to(ScalarType.Long).contiguous(); // (B, T) host
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment len = lengths == null ? MemorySegment.NULL
                    : arena.allocateFrom(ValueLayout.JAVA_LONG, lengths);
            Kernels.cpu().attentionRanges(batch, seq, seg == null ? MemorySegment.NULL : TensorMemory.segment(seg,
                    "segment ids"), len, window == null ? 0 : window, TensorMemory.segment(lo, "kv_lo"),
                    TensorMemory.segment(hi, "kv_hi"));
        } catch (NativeKernelException e) {
            if (segments != null) {
                return null; // a segment id in two runs: not expressible as key ranges
            }
            throw e;
        }
        return new KeyRanges(lo, hi);
    }

    private static synchronized void backward(Tensor dout) {
        Pending p = STACK.poll();
        if (p == null || !Tensors.sameShape(p.out(), dout)) {
            throw new IllegalStateException("flash attention backward found no matching forward record"
                    + " (attention backward must run in the reverse order of the forward passes)");
        }
        Tensor go = unitLast(as(dout, p.out().scalar_type())); // (B, nH, T, D)
        Tensor dq = torch.empty_like(p.q()); // (B, nH, T, D)
        Tensor dk = torch.empty_like(p.k()); // (B, nKV, T, D)
        Tensor dv = torch.empty_like(p.v()); // (B, nKV, T, D)
        for (Tensor g : new Tensor[] {dq, dk, dv}) {
            if (g.stride(3) != 1) {
                throw new IllegalStateException("empty_like gave a gradient without unit stride along head_dim");
            }
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment strides = strides(arena, p.q(), p.k(), p.v(), p.out(), go, dq, dk, dv);
            if (isBf16(p.q())) {
                Kernels.cpu().attentionBackwardBf16(data(p.q()), data(p.k()), data(p.v()), data(p.out()), data(go),
                        data(p.lse()), data(dq), data(dk), data(dv), p.q().size(0), p.q().size(1), p.k().size(1),
                        p.q().size(2), p.q().size(3), strides, lo(p.ranges()), hi(p.ranges()), p.scale(),
                        p.softcap());
            } else {
                Kernels.cpu().attentionBackward(data(p.q()), data(p.k()), data(p.v()), data(p.out()), data(go),
                        data(p.lse()), data(dq), data(dk), data(dv), p.q().size(0), p.q().size(1), p.k().size(1),
                        p.q().size(2), p.q().size(3), strides, lo(p.ranges()), hi(p.ranges()), p.scale(),
                        p.softcap());
            }
        }
        grads = new Tensor[] {dq, dk, dv};
    }

    private static TensorTensorHook inputHook(int which) {
        return new TensorTensorHook() {
            @Override
            public TensorBase call(TensorBase grad) {
                synchronized (FlashAttention.class) {
                    Tensor g = grads == null ? null : grads[which];
                    if (g == null || !Tensors.sameShape(g, new Tensor(grad))) {
                        throw new IllegalStateException("flash attention: no gradient computed for input " + which);
                    }
                    grads[which] = null;
                    return g;
                }
            }
        }.retainReference();
    }

    private static Tensor view(Tensor t) {
        return t.view(t.size(0), t.size(1), t.size(2), t.size(3));
    }

    private static Tensor unitLast(Tensor t) {
        return t.stride(3) == 1 ? t : t.contiguous();
    }

    private static MemorySegment strides(Arena arena, Tensor... ts) {
        MemorySegment s = arena.allocate(ValueLayout.JAVA_LONG, 3L * ts.length);
        for (int i = 0; i < ts.length; i++) {
            for (int j = 0; j < 3; j++) {
                s.setAtIndex(ValueLayout.JAVA_LONG, 3L * i + j, ts[i].stride(j));
            }
        }
        return s;
    }

    private static MemorySegment data(Tensor t) {
        return TensorMemory.stridedSegment(t, "attention tensor");
    }

    private static MemorySegment lo(KeyRanges r) {
        return r == null || r.lo() == null ? MemorySegment.NULL : TensorMemory.segment(r.lo(), "kv_lo");
    }

    private static MemorySegment hi(KeyRanges r) {
        return r == null || r.hi() == null ? MemorySegment.NULL : TensorMemory.segment(r.hi(), "kv_hi");
    }
}
