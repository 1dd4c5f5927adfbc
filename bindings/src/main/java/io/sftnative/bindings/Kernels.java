package io.sftnative.bindings;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;

import io.sftnative.torch.NativeRuntimeException;

/**
 * Typed Java entry points to the blockwise quantization and fused cross-entropy kernels, for one device.
 *
 * <p>Each call takes the real libbitsandbytes symbol when the user configured such a library and it exports the
 * symbol (and its known limits allow the call), otherwise ours; the choice is logged once per kernel. Before calling
 * a bitsandbytes symbol every argument is validated here, because bitsandbytes reports errors with {@code exit(1)}
 * (spec §1.2). Our {@code jbnb_*} functions return a status that becomes a {@link NativeKernelException}.
 *
 * <p>Pointers: host memory for {@link #cpu()}, CUDA device memory for {@link #cuda()}; the caller keeps the memory
 * alive for the call. CUDA calls run on the legacy default stream (libtorch's default), asynchronously.
 */
// FFM restricted methods are the point of this class (the JVM runs with --enable-native-access)
@SuppressWarnings("restricted")
public final class Kernels {
    private static final Logger LOG = Logger.getLogger(Kernels.class.getName());

    /** Element type of a float buffer: bitsandbytes' suffixes fp32 / bf16 / fp16. */
    public enum Dtype {
        FP32("fp32", 4),
        BF16("bf16", 2),
        FP16("fp16", 2);

        public final String suffix;
        public final int bytes;

        Dtype(String suffix, int bytes) {
            this.suffix = suffix;
            this.bytes = bytes;
        }
    }

    public enum Device {
        CPU,
        CUDA
    }

    /** Sum of the row losses of a chunk (fp64) and the number of non-ignored rows. */
    public record CeChunkResult(double lossSum, long validCount) {}

    private static volatile Kernels cpu;
    private static volatile Kernels cuda;

    private final NativeLibrary lib;
    private final Device device;
    private final Set<String> logged = ConcurrentHashMap.newKeySet();

    private Kernels(NativeLibrary lib, Device device) {
        this.lib = lib;
        this.device = device;
    }

    public static Kernels cpu() {
        Kernels k = cpu;
        if (k == null) {
            synchronized (Kernels.class) {
                if (cpu == null) {
                    cpu = new Kernels(NativeLibrary.cpu(), Device.CPU);
                }
                k = cpu;
            }
        }
        return k;
    }

    public static Kernels cuda() {
        Kernels k = cuda;
        if (k == null) {
            synchronized (Kernels.class) {
                if (cuda == null) {
                    cuda = new Kernels(NativeLibrary.cuda(), Device.CUDA);
                }
                k = cuda;
            }
        }
        return k;
    }

    public static Kernels of(Device d) {
        return d == Device.CPU ? cpu() : cuda();
    }

    public Device device() {
        return device;
    }

    public NativeLibrary library() {
        return lib;
    }

    // ---- 4-bit ----------------------------------------------------------------------------------------------

    /**
     * Blockwise NF4/FP4 quantization of {@code n} values. a: n values of {@code t}; absmax: ceil(n/blocksize) fp32;
     * out: ceil(n/2) bytes.
     */
    public void quantize4bit(Dtype t, MemorySegment a, MemorySegment absmax, MemorySegment out, long blocksize, long n,
            int quantType) {
        String q = quantName(quantType);
        if (device == Device.CUDA) {
            String bnbName = "cquantize_blockwise_" + t.suffix + "_" + q;
            Optional<MethodHandle> b = NativeLibrary.bitsandbytesHandle(bnbName);
            if (b.isPresent()) {
                requireGpuArgs(blocksize, n, bnbName);
                if (n == 0) {
                    return;
                }
                announce(bnbName, true, null);
                invokeVoid(bnbName, () -> {
                    b.get().invokeExact(MemorySegment.NULL, a, absmax, out, (int) blocksize, (int) n);
                });
                return;
            }
        }
        String ours = "jbnb_quantize_4bit_" + dev() + "_" + t.suffix;
        announce(ours, false, device == Device.CPU ? "bitsandbytes has no CPU 4-bit quantize" : null);
        MethodHandle h = lib.handle(ours);
        int st = invokeInt(ours, () -> device == Device.CPU
                ? (int) h.invokeExact(a, absmax, out, blocksize, n, quantType)
                : (int) h.invokeExact(a, absmax, out, blocksize, n, quantType, MemorySegment.NULL));
        lib.check(ours, st, "quantize " + n + " " + t.suffix + " values to " + q + ", blocksize " + blocksize);
    }

    /** Inverse of {@link #quantize4bit}: out gets n values of {@code t}. */
    public void dequantize4bit(Dtype t, MemorySegment packed, MemorySegment absmax, MemorySegment out, long blocksize,
            long n, int quantType) {
        String q = quantName(quantType);
        String bnbName = device == Device.CPU ? "cdequantize_blockwise_cpu_" + q + "_" + t.suffix
                : "cdequantize_blockwise_" + t.suffix + "_" + q;
        Optional<MethodHandle> b = NativeLibrary.bitsandbytesHandle(bnbName);
        // bitsandbytes' own Python falls back from its CPU kernel for blocksize >= 2048 and odd n (spec §1.4)
        boolean cpuLimits = device == Device.CPU && (blocksize >= 2048 || n % 2 != 0);
        if (b.isPresent() && !cpuLimits && n > 0) {
            if (device == Device.CPU) {
                requireCpuArgs(blocksize, n, bnbName);
                announce(bnbName, true, null);
                invokeVoid(bnbName, () -> {
                    b.get().invokeExact(packed, absmax, out, blocksize, 1L, n);
                });
            } else {
                requireGpuArgs(blocksize, n, bnbName);
                announce(bnbName, true, null);
                invokeVoid(bnbName, () -> {
                    b.get().invokeExact(MemorySegment.NULL, packed, absmax, out, (int) blocksize,
                        (int) n, MemorySegment.NULL);
                });
            }
            return;
        }
        String ours = "jbnb_dequantize_4bit_" + dev() + "_" + t.suffix;
        announce(ours, false, b.isPresent() && cpuLimits ? "bitsandbytes' CPU kernel is not used for blocksize >= 2048"
                + " or odd n" : null);
        MethodHandle h = lib.handle(ours);
        int st = invokeInt(ours, () -> device == Device.CPU
                ? (int) h.invokeExact(packed, absmax, out, blocksize, n, quantType)
                : (int) h.invokeExact(packed, absmax, out, blocksize, n, quantType, MemorySegment.NULL));
        lib.check(ours, st, "dequantize " + n + " " + q + " values to " + t.suffix + ", blocksize " + blocksize);
    }

    // ---- 8-bit blockwise (dynamic map) -------------------------------------------------------------------------

    /** 8-bit blockwise quantization with a sorted 256-entry fp32 code; out: n bytes. On CUDA only fp32 input. */
    public void quantize8bit(Dtype t, MemorySegment code, MemorySegment a, MemorySegment absmax, MemorySegment out,
            long blocksize, long n) {
        String bnbName = device == Device.CPU ? "cquantize_blockwise_cpu_" + t.suffix : "cquantize_blockwise_" + t.suffix;
        Optional<MethodHandle> b = NativeLibrary.bitsandbytesHandle(bnbName);
        if (b.isPresent() && n > 0 && (device == Device.CPU || blocksize >= 64)) {
            if (device == Device.CPU) {
                requireCpuArgs(blocksize, n, bnbName);
                announce(bnbName, true, null);
                // bitsandbytes <= 0.49 overwrote code[0] with -1.0 (spec §1.4): give it a scratch copy
                try (Arena scratch = Arena.ofConfined()) {
                    MemorySegment copy = scratch.allocate(256 * 4L, 16).copyFrom(code.reinterpret(256 * 4L));
                    invokeVoid(bnbName, () -> {
                    b.get().invokeExact(copy, a, absmax, out, blocksize, n);
                });
                }
            } else {
                requireGpuArgs(blocksize, n, bnbName);
                announce(bnbName, true, null);
                invokeVoid(bnbName, () -> {
                    b.get().invokeExact(code, a, absmax, out, (int) blocksize, (int) n);
                });
            }
            return;
        }
        if (device == Device.CUDA && t != Dtype.FP32) {
            throw new IllegalArgumentException("8-bit quantize on CUDA takes fp32 input here, got " + t.suffix);
        }
        String ours = "jbnb_quantize_8bit_" + dev() + "_" + t.suffix;
        announce(ours, false, null);
        MethodHandle h = lib.handle(ours);
        int st = invokeInt(ours, () -> device == Device.CPU
                ? (int) h.invokeExact(code, a, absmax, out, blocksize, n)
                : (int) h.invokeExact(code, a, absmax, out, blocksize, n, MemorySegment.NULL));
        lib.check(ours, st, "8-bit quantize of " + n + " values, blocksize " + blocksize);
    }

    /** Inverse of {@link #quantize8bit}. On CUDA only fp32 output. */
    public void dequantize8bit(Dtype t, MemorySegment code, MemorySegment a, MemorySegment absmax, MemorySegment out,
            long blocksize, long n) {
        String bnbName = device == Device.CPU ? "cdequantize_blockwise_cpu_" + t.suffix
                : "cdequantize_blockwise_" + t.suffix;
        Optional<MethodHandle> b = NativeLibrary.bitsandbytesHandle(bnbName);
        if (b.isPresent() && n > 0) {
            if (device == Device.CPU) {
                requireCpuArgs(blocksize, n, bnbName);
                announce(bnbName, true, null);
                invokeVoid(bnbName, () -> {
                    b.get().invokeExact(code, a, absmax, out, blocksize, n);
                });
            } else {
                requireGpuArgs(blocksize, n, bnbName);
                announce(bnbName, true, null);
                invokeVoid(bnbName, () -> {
                    b.get().invokeExact(code, a, absmax, out, (int) blocksize, (int) n,
                        MemorySegment.NULL);
                });
            }
            return;
        }
        if (device == Device.CUDA && t != Dtype.FP32) {
            throw new IllegalArgumentException("8-bit dequantize on CUDA gives fp32 output here, got " + t.suffix);
        }
        String ours = "jbnb_dequantize_8bit_" + dev() + "_" + t.suffix;
        announce(ours, false, null);
        MethodHandle h = lib.handle(ours);
        int st = invokeInt(ours, () -> device == Device.CPU
                ? (int) h.invokeExact(code, a, absmax, out, blocksize, n)
                : (int) h.invokeExact(code, a, absmax, out, blocksize, n, MemorySegment.NULL));
        lib.check(ours, st, "8-bit dequantize of " + n + " values, blocksize " + blocksize);
    }

    // ---- double quantization (host memory; ours) -----------------------------------------------------------------

    /** Double quantization of absmax (spec §2.6) on host memory; returns the offset (fp32 mean of absmax). */
    public static float doubleQuantCpu(MemorySegment absmax, long nblocks, MemorySegment code, long nestedBlocksize,
            MemorySegment qabsmax, MemorySegment absmax2) {
        NativeLibrary l = NativeLibrary.cpu();
        MethodHandle h = l.handle("jbnb_double_quant_cpu");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment offset = arena.allocate(ValueLayout.JAVA_FLOAT);
            int st = invokeInt("jbnb_double_quant_cpu",
                    () -> (int) h.invokeExact(absmax, nblocks, code, nestedBlocksize, qabsmax, absmax2, offset));
            l.check("jbnb_double_quant_cpu", st, "double quantization of " + nblocks + " absmax values");
            return offset.get(ValueLayout.JAVA_FLOAT, 0);
        }
    }

    /** absmax[i] = code[qabsmax[i]] * absmax2[i / nestedBlocksize] + offset (two fp32 roundings), host memory. */
    public static void dequantAbsmaxCpu(MemorySegment qabsmax, MemorySegment absmax2, MemorySegment code, float offset,
            long nestedBlocksize, long nblocks, MemorySegment absmax) {
        NativeLibrary l = NativeLibrary.cpu();
        MethodHandle h = l.handle("jbnb_dequant_absmax_cpu");
        int st = invokeInt("jbnb_dequant_absmax_cpu",
                () -> (int) h.invokeExact(qabsmax, absmax2, code, offset, nestedBlocksize, nblocks, absmax));
        l.check("jbnb_dequant_absmax_cpu", st, "rebuilding " + nblocks + " nested absmax values");
    }

    /**
     * A codebook from the library: {@link BnbAbi#NF4}, {@link BnbAbi#FP4} (16 values) or the signed / unsigned dynamic
     * map ({@link BnbAbi#DYNAMIC_MAP}, {@link BnbAbi#UNSIGNED_DYNAMIC_MAP}: 256).
     */
    public static float[] codebook(int which) {
        NativeLibrary l = NativeLibrary.cpu();
        MethodHandle h = l.handle("jbnb_codebook");
        int count = which == BnbAbi.DYNAMIC_MAP || which == BnbAbi.UNSIGNED_DYNAMIC_MAP ? 256 : 16;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, count);
            int st = invokeInt("jbnb_codebook", () -> (int) h.invokeExact(which, out));
            l.check("jbnb_codebook", st, "codebook " + which);
            return out.toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    // ---- fused cross-entropy ---------------------------------------------------------------------------------

    /**
     * One chunk of the fused cross-entropy on host memory (header: jbnb_ce_chunk_cpu_*): logits (rows, vocab) are
     * replaced by d(loss)/d(logits) scaled by gradScale. labels: totalRows int64 values (unshifted (B, seqLen) when
     * shift). rowLoss / rowLse: rows fp32 each or {@link MemorySegment#NULL}.
     */
    public CeChunkResult ceChunk(Dtype t, MemorySegment logits, long rows, long vocab, MemorySegment labels,
            long totalRows, long row0, long seqLen, boolean shift, long ignoreIndex, float gradScale,
            MemorySegment rowLoss, MemorySegment rowLse) {
        if (device != Device.CPU) {
            throw new IllegalStateException("ceChunk works on host memory; use ceChunkDevice for CUDA tensors");
        }
        String name = "jbnb_ce_chunk_cpu_" + t.suffix;
        MethodHandle h = lib.handle(name);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sum = arena.allocate(ValueLayout.JAVA_DOUBLE);
            MemorySegment valid = arena.allocate(ValueLayout.JAVA_LONG);
            int sh = shift ? 1 : 0;
            int st = invokeInt(name, () -> (int) h.invokeExact(logits, rows, vocab, labels, totalRows, row0, seqLen, sh,
                    ignoreIndex, gradScale, rowLoss, rowLse, sum, valid));
            lib.check(name, st, "cross-entropy rows [" + row0 + ", " + (row0 + rows) + ") of " + totalRows
                    + ", vocab " + vocab);
            return new CeChunkResult(sum.get(ValueLayout.JAVA_DOUBLE, 0), valid.get(ValueLayout.JAVA_LONG, 0));
        }
    }

    /** The CUDA variant (fp32 or bf16 logits): device pointers; rowLoss (rows fp32) receives the losses. */
    public void ceChunkDevice(Dtype t, MemorySegment logits, long rows, long vocab, MemorySegment labels,
            long totalRows, long row0, long seqLen, boolean shift, long ignoreIndex, float gradScale,
            MemorySegment rowLoss, MemorySegment rowLse) {
        if (device != Device.CUDA) {
            throw new IllegalStateException("ceChunkDevice is for CUDA memory; use ceChunk on the CPU");
        }
        if (t == Dtype.FP16) {
            throw new IllegalArgumentException("the CUDA cross-entropy takes fp32 or bf16 logits, got fp16");
        }
        String name = "jbnb_ce_chunk_cuda_" + t.suffix;
        MethodHandle h = lib.handle(name);
        int sh = shift ? 1 : 0;
        int st = invokeInt(name, () -> (int) h.invokeExact(logits, rows, vocab, labels, totalRows, row0, seqLen, sh,
                ignoreIndex, gradScale, rowLoss, rowLse, MemorySegment.NULL));
        lib.check(name, st, "cross-entropy rows [" + row0 + ", " + (row0 + rows) + ") of " + totalRows);
    }

    // ---- attention -------------------------------------------------------------------------------------------

    /**
     * Flash-attention forward on host memory (header: jbnb_attention_fwd_cpu_fp32): q (B, H, T, D), k/v (B, KVH, T,
     * D), out like q, lse (B, H, T) contiguous fp32. strides: 12 element strides (batch, head, position of q, k, v,
     * out; dim stride 1). kvLo/kvHi: (B, T) int32 key ranges or both {@link MemorySegment#NULL} for plain causal.
     */
    public void attentionForward(MemorySegment q, MemorySegment k, MemorySegment v, MemorySegment out,
            MemorySegment lse, long batch, long heads, long kvHeads, long seq, long headDim, MemorySegment strides,
            MemorySegment kvLo, MemorySegment kvHi, float scale, float softcap) {
        requireCpu("attention");
        String name = "jbnb_attention_fwd_cpu_fp32";
        MethodHandle h = lib.handle(name);
        int st = invokeInt(name, () -> (int) h.invokeExact(q, k, v, out, lse, batch, heads, kvHeads, seq, headDim,
                strides, kvLo, kvHi, scale, softcap));
        lib.check(name, st, "attention forward B=" + batch + " H=" + heads + " KVH=" + kvHeads + " T=" + seq + " D="
                + headDim);
    }

    /**
     * Flash-attention backward (header: jbnb_attention_bwd_cpu_fp32): overwrites dq, dk, dv. strides: 24 (q, k, v,
     * out, dout, dq, dk, dv).
     */
    public void attentionBackward(MemorySegment q, MemorySegment k, MemorySegment v, MemorySegment out,
            MemorySegment dout, MemorySegment lse, MemorySegment dq, MemorySegment dk, MemorySegment dv, long batch,
            long heads, long kvHeads, long seq, long headDim, MemorySegment strides, MemorySegment kvLo,
            MemorySegment kvHi, float scale, float softcap) {
        requireCpu("attention");
        String name = "jbnb_attention_bwd_cpu_fp32";
        MethodHandle h = lib.handle(name);
        int st = invokeInt(name, () -> (int) h.invokeExact(q, k, v, out, dout, lse, dq, dk, dv, batch, heads, kvHeads,
                seq, headDim, strides, kvLo, kvHi, scale, softcap));
        lib.check(name, st, "attention backward B=" + batch + " H=" + heads + " KVH=" + kvHeads + " T=" + seq + " D="
                + headDim);
    }

    /**
     * As {@link #attentionForward} with bf16 q, k, v and out (header: jbnb_attention_fwd_cpu_bf16); lse stays fp32.
     * The kernel computes in fp32 and rounds out to nearest-even bf16.
     */
    public void attentionForwardBf16(MemorySegment q, MemorySegment k, MemorySegment v, MemorySegment out,
            MemorySegment lse, long batch, long heads, long kvHeads, long seq, long headDim, MemorySegment strides,
            MemorySegment kvLo, MemorySegment kvHi, float scale, float softcap) {
        requireCpu("attention");
        String name = "jbnb_attention_fwd_cpu_bf16";
        MethodHandle h = lib.handle(name);
        int st = invokeInt(name, () -> (int) h.invokeExact(q, k, v, out, lse, batch, heads, kvHeads, seq, headDim,
                strides, kvLo, kvHi, scale, softcap));
        lib.check(name, st, "bf16 attention forward B=" + batch + " H=" + heads + " KVH=" + kvHeads + " T=" + seq
                + " D=" + headDim);
    }

    /** As {@link #attentionBackward} with bf16 tensors (header: jbnb_attention_bwd_cpu_bf16); lse fp32. */
    public void attentionBackwardBf16(MemorySegment q, MemorySegment k, MemorySegment v, MemorySegment out,
            MemorySegment dout, MemorySegment lse, MemorySegment dq, MemorySegment dk, MemorySegment dv, long batch,
            long heads, long kvHeads, long seq, long headDim, MemorySegment strides, MemorySegment kvLo,
            MemorySegment kvHi, float scale, float softcap) {
        requireCpu("attention");
        String name = "jbnb_attention_bwd_cpu_bf16";
        MethodHandle h = lib.handle(name);
        int st = invokeInt(name, () -> (int) h.invokeExact(q, k, v, out, dout, lse, dq, dk, dv, batch, heads, kvHeads,
                seq, headDim, strides, kvLo, kvHi, scale, softcap));
        lib.check(name, st, "bf16 attention backward B=" + batch + " H=" + heads + " KVH=" + kvHeads + " T=" + seq
                + " D=" + headDim);
    }

    /**
     * Per-query key ranges (header: jbnb_attention_ranges_cpu) into kvLo/kvHi ((B, T) int32 each). segments: (B, T)
     * int64 or NULL; lengths: (B) int64 or NULL; window <= 0 for none. Fails (EINVAL) when a segment id appears in
     * two separate runs.
     */
    public void attentionRanges(long batch, long seq, MemorySegment segments, MemorySegment lengths, long window,
            MemorySegment kvLo, MemorySegment kvHi) {
        requireCpu("attention");
        String name = "jbnb_attention_ranges_cpu";
        MethodHandle h = lib.handle(name);
        int st = invokeInt(name, () -> (int) h.invokeExact(batch, seq, segments, lengths, window, kvLo, kvHi));
        lib.check(name, st, "attention key ranges B=" + batch + " T=" + seq);
    }

    // ---- fused elementwise (SwiGLU, RoPE) ---------------------------------------------------------------------

    /**
     * out = silu(gate) * up over {@code rows} rows of {@code inter} fp32 values (header: jbnb_swiglu_fwd_cpu_fp32);
     * each row contiguous, rows {@code ld*} elements apart.
     */
    public void swigluForward(MemorySegment gate, long ldGate, MemorySegment up, long ldUp, MemorySegment out,
            long ldOut, long rows, long inter) {
        requireCpu("SwiGLU");
        String name = "jbnb_swiglu_fwd_cpu_fp32";
        MethodHandle h = lib.handle(name);
        int st = invokeInt(name, () -> (int) h.invokeExact(gate, ldGate, up, ldUp, out, ldOut, rows, inter));
        lib.check(name, st, "SwiGLU forward " + rows + " x " + inter);
    }

    /** SwiGLU backward (header: jbnb_swiglu_bwd_cpu_fp32): overwrites dgate and dup. */
    public void swigluBackward(MemorySegment gate, long ldGate, MemorySegment up, long ldUp, MemorySegment dout,
            long ldDout, MemorySegment dgate, long ldDgate, MemorySegment dup, long ldDup, long rows, long inter) {
        requireCpu("SwiGLU");
        String name = "jbnb_swiglu_bwd_cpu_fp32";
        MethodHandle h = lib.handle(name);
        int st = invokeInt(name, () -> (int) h.invokeExact(gate, ldGate, up, ldUp, dout, ldDout, dgate, ldDgate, dup,
                ldDup, rows, inter));
        lib.check(name, st, "SwiGLU backward " + rows + " x " + inter);
    }

    /**
     * Rotary embedding, rotate_half layout (header: jbnb_rope_cpu_fp32): x and out (B, T, heads, headDim), cos/sin
     * (B, T, rotDims / 2) half tables; strides: 8 element strides (x: batch, position, head; out: the same; tables:
     * batch, position). backward applies the transposed rotation. out may be x.
     */
    public void rope(MemorySegment x, MemorySegment out, MemorySegment cos, MemorySegment sin, MemorySegment strides,
            long batch, long seq, long heads, long headDim, long rotDims, boolean backward) {
        requireCpu("RoPE");
        String name = "jbnb_rope_cpu_fp32";
        MethodHandle h = lib.handle(name);
        int bw = backward ? 1 : 0;
        int st = invokeInt(name, () -> (int) h.invokeExact(x, out, cos, sin, strides, batch, seq, heads, headDim,
                rotDims, bw));
        lib.check(name, st, "RoPE B=" + batch + " T=" + seq + " heads=" + heads + " D=" + headDim + " R=" + rotDims);
    }

    private void requireCpu(String what) {
        if (device != Device.CPU) {
            throw new IllegalStateException("the " + what + " kernels work on host memory (CPU only)");
        }
    }

    // ---- optimizer -------------------------------------------------------------------------------------------

    /**
     * One fused AdamW update of fp32 host tensors of {@code n} elements (header: jbnb_adamw_cpu_fp32): param,
     * expAvg and expAvgSq in place; {@code step} counts this update (>= 1).
     */
    public void adamw(MemorySegment param, MemorySegment grad, MemorySegment expAvg, MemorySegment expAvgSq, long n,
            double lr, double beta1, double beta2, double eps, double weightDecay, long step) {
        if (device != Device.CPU) {
            throw new IllegalStateException("the fused AdamW kernel works on host memory");
        }
        String name = "jbnb_adamw_cpu_fp32";
        MethodHandle h = lib.handle(name);
        int st = invokeInt(name, () -> (int) h.invokeExact(param, grad, expAvg, expAvgSq, n, lr, beta1, beta2, eps,
                weightDecay, step));
        lib.check(name, st, "AdamW step " + step + " of " + n + " parameters");
    }

    /**
     * bitsandbytes' 8-bit blockwise Adam step on host memory (header: jbnb_adam_8bit_blockwise_cpu_*; bitsandbytes'
     * argument order): p and g hold {@code n} values of {@code t}; state1 / state2 n codes of the signed / unsigned
     * dynamic maps {@code code1} / {@code code2} (256 fp32 each); absmax1 / absmax2 ceil(n / 256) fp32. Weight decay is
     * applied after the update (bitsandbytes' kernel order); {@code step} counts this update (>= 1).
     */
    public void adam8bitBlockwise(Dtype t, MemorySegment p, MemorySegment g, MemorySegment state1, MemorySegment state2,
            float beta1, float beta2, float eps, int step, float lr, MemorySegment code1, MemorySegment code2,
            MemorySegment absmax1, MemorySegment absmax2, float weightDecay, long n) {
        requireCpu("8-bit Adam");
        String name = "jbnb_adam_8bit_blockwise_cpu_" + t.suffix;
        MethodHandle h = lib.handle(name);
        int st = invokeInt(name, () -> (int) h.invokeExact(p, g, state1, state2, beta1, beta2, 0.0f, 0.0f, eps, step,
                lr, code1, code2, absmax1, absmax2, weightDecay, 1.0f, 0, n));
        lib.check(name, st, "8-bit Adam step " + step + " of " + n + " parameters");
    }

    /**
     * bitsandbytes' 32-bit Adam step (header: jbnb_adam_32bit_cpu_*), which bitsandbytes' 8-bit optimizers use for
     * tensors below min_8bit_size: g, p {@code n} values of {@code t}; state1, state2 n fp32 moments.
     */
    public void adam32bit(Dtype t, MemorySegment g, MemorySegment p, MemorySegment state1, MemorySegment state2,
            float beta1, float beta2, float eps, float weightDecay, int step, float lr, long n) {
        requireCpu("32-bit bitsandbytes Adam");
        String name = "jbnb_adam_32bit_cpu_" + t.suffix;
        MethodHandle h = lib.handle(name);
        int st = invokeInt(name, () -> (int) h.invokeExact(g, p, state1, state2, MemorySegment.NULL, 0.0f, 0.0f,
                beta1, beta2, 0.0f, 0.0f, eps, weightDecay, step, lr, 1.0f, 0, n));
        lib.check(name, st, "32-bit Adam step " + step + " of " + n + " parameters");
    }

    // ---- settings --------------------------------------------------------------------------------------------

    /** The CPU kernel ISA in use: 0 scalar, 1 AVX2, 2 AVX-512. */
    public static int cpuIsa() {
        return NativeLibrary.cpu().callInt("jbnb_cpu_isa");
    }

    /** Forces a lower CPU ISA (tests, benchmarks); fails when the CPU or build lacks it. */
    public static void setCpuIsa(int isa) {
        NativeLibrary l = NativeLibrary.cpu();
        MethodHandle h = l.handle("jbnb_set_cpu_isa");
        l.check("jbnb_set_cpu_isa", invokeInt("jbnb_set_cpu_isa", () -> (int) h.invokeExact(isa)), "isa " + isa);
    }

    /** Threads of the CPU kernels (0 = all hardware threads); defaults to SFT_THREADS or all processors. */
    public static void setThreads(int threads) {
        NativeLibrary l = NativeLibrary.cpu();
        MethodHandle h = l.handle("jbnb_set_num_threads");
        l.check("jbnb_set_num_threads", invokeInt("jbnb_set_num_threads", () -> (int) h.invokeExact(threads)),
                "threads " + threads);
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    private String dev() {
        return device == Device.CPU ? "cpu" : "cuda";
    }

    private static String quantName(int quantType) {
        return switch (quantType) {
            case BnbAbi.NF4 -> "nf4";
            case BnbAbi.FP4 -> "fp4";
            default -> throw new IllegalArgumentException("quant type must be NF4 (2) or FP4 (1), got " + quantType);
        };
    }

    private void announce(String symbol, boolean bitsandbytes, String why) {
        if (logged.add(symbol)) {
            String from = bitsandbytes
                    ? "bitsandbytes " + NativeLibrary.bitsandbytes().map(b -> b.path().toString()).orElse("?")
                    : "sft-native " + lib.path().getFileName();
            LOG.info("kernel " + symbol + " (" + device + "): " + from + (why == null ? "" : " (" + why + ")"));
        }
    }

    /** bitsandbytes exits the process on bad input: check everything it would reject, here. */
    private static void requireGpuArgs(long blocksize, long n, String fn) {
        if (n < 0 || n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(fn + ": n must be in [0, 2^31) per GPU call, got " + n);
        }
        if (blocksize < 32 || blocksize > 4096 || Long.bitCount(blocksize) != 1) {
            throw new IllegalArgumentException(fn + ": blocksize must be a power of two in [32, 4096], got " + blocksize);
        }
    }

    private static void requireCpuArgs(long blocksize, long n, String fn) {
        if (n < 0 || blocksize <= 0) {
            throw new IllegalArgumentException(fn + ": need n >= 0 and blocksize > 0, got n=" + n + ", blocksize="
                    + blocksize);
        }
    }

    @FunctionalInterface
    private interface IntCall {
        int call() throws Throwable;
    }

    @FunctionalInterface
    private interface VoidCall {
        void call() throws Throwable;
    }

    private static int invokeInt(String name, IntCall c) {
        try {
            return c.call();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new NativeRuntimeException("calling " + name + " failed: " + t, t);
        }
    }

    private static void invokeVoid(String name, VoidCall c) {
        try {
            c.call();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new NativeRuntimeException("calling " + name + " failed: " + t, t);
        }
    }
}
