package io.sftnative.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.bindings.BnbAbi;
import io.sftnative.bindings.Kernels;
import io.sftnative.bindings.TensorMemory;

/**
 * A weight held in bitsandbytes' blockwise 4-bit format (NF4 or FP4), optionally with double-quantized absmax —
 * the storage of QLoRA's frozen base weights (spec §2.4–§2.7).
 *
 * <p>Layout: the weight (any shape, {@code n} elements) is flattened row-major and cut into blocks of
 * {@code blocksize}; {@code packed} holds two 4-bit codes per byte (element 2i in the high nibble),
 * {@code absmax} one fp32 scale per block. With double quantization the absmax values are themselves stored as
 * 8-bit codes of the dynamic map ({@code nestedCodes}) with one fp32 scale per 256 blocks ({@code nestedAbsmax})
 * and a global {@code offset}.
 *
 * <p>Ownership: this object owns every tensor it holds and frees them in {@link #close()}; any use after that
 * fails. Tensors returned by {@link #dequantize} are new and owned by the caller. {@link #stateDict} returns
 * views of the owned tensors, valid until {@code close()}. Works on CPU tensors and, with the CUDA library, on
 * CUDA tensors (all tensors stay on the device of the weight they came from).
 */
// PointerScope blocks own every tensor created inside them; the scope variable itself is never read
@SuppressWarnings("try")
public final class QuantizedWeight implements AutoCloseable {
    /** Blocks of absmax values per nested (8-bit) scale, fixed by bitsandbytes. */
    public static final int NESTED_BLOCKSIZE = 256;

    private final QuantType type;
    private final int blocksize;
    private final long[] shape;
    private final ScalarType dtype; // original dtype; the default output of dequantize()
    private final long numel;
    private final Tensor packed; // uint8 ((n + 1) / 2, 1)
    private final Tensor absmax; // fp32 (nblocks), null when nested
    private final Tensor quantMap; // fp32 (16), code order
    private final Tensor nestedCodes; // uint8 (nblocks), null unless nested
    private final Tensor nestedAbsmax; // fp32 (ceil(nblocks / 256)), null unless nested
    private final Tensor nestedQuantMap; // fp32 (256), null unless nested
    private final float offset; // nested only
    private Tensor stateBlob; // uint8 (L), created by stateDict()
    private boolean closed;

    private QuantizedWeight(QuantType type, int blocksize, long[] shape, ScalarType dtype, Tensor packed, Tensor absmax,
            Tensor quantMap, Tensor nestedCodes, Tensor nestedAbsmax, Tensor nestedQuantMap, float offset) {
        this.type = type;
        this.blocksize = blocksize;
        this.shape = shape.clone();
        this.dtype = dtype;
        this.numel = product(shape);
        // Every tensor is created inside a PointerScope by the factories below; one extra reference makes it ours
        // (the scope drops its own at exit), released again in close().
        this.packed = keep(packed);
        this.absmax = keep(absmax);
        this.quantMap = keep(quantMap);
        this.nestedCodes = keep(nestedCodes);
        this.nestedAbsmax = keep(nestedAbsmax);
        this.nestedQuantMap = keep(nestedQuantMap);
        this.offset = offset;
    }

    /**
     * Quantizes a float tensor (fp32, bf16 or fp16; CPU or CUDA). blocksize: a power of two in [32, 4096]
     * (bitsandbytes' set; 64 is its default). The weight must be finite: a NaN or Inf would silently become a
     * valid code (spec §2.5), so it is rejected with the count of bad values.
     */
    public static QuantizedWeight quantize(Tensor weight, QuantType type, int blocksize, boolean doubleQuant) {
        checkBlocksize(blocksize);
        try (PointerScope scope = new PointerScope()) {
            Tensor w = weight.detach().contiguous(); // same shape, flat row-major memory
            Kernels.Dtype kd = TensorMemory.dtype(w, "weight");
            long n = w.numel();
            if (n == 0) {
                throw new IllegalArgumentException("cannot quantize an empty weight");
            }
            long bad = w.isfinite().logical_not().sum().item_long();
            if (bad > 0) {
                throw new IllegalArgumentException("weight has " + bad + " non-finite values (NaN/Inf) out of " + n
                        + "; quantizing would silently map them to valid codes. Check the checkpoint.");
            }
            Device device = w.device();
            long nblocks = ceilDiv(n, blocksize);
            Tensor packed = empty(new long[] {(n + 1) / 2, 1}, options(ScalarType.Byte, device)); // ((n+1)/2, 1)
            Tensor absmax = empty(new long[] {nblocks}, options(ScalarType.Float, device)); // (nblocks)
            Kernels.of(TensorMemory.device(w)).quantize4bit(kd, TensorMemory.segment(w, "weight"),
                    TensorMemory.segment(absmax, "absmax"), TensorMemory.segment(packed, "packed"), blocksize, n, type.abi);
            Tensor quantMap = floats(Kernels.codebook(type.abi)).to(device, ScalarType.Float); // (16)
            long[] shape = w.sizes().vec().get();
            QuantizedWeight q;
            if (!doubleQuant) {
                q = new QuantizedWeight(type, blocksize, shape, w.scalar_type(), packed, absmax, quantMap, null, null,
                        null, 0f);
            } else {
                Tensor host = absmax.cpu().contiguous(); // (nblocks) fp32: the statistics are small
                Tensor dyn = floats(Kernels.codebook(BnbAbi.DYNAMIC_MAP)); // (256)
                Tensor codes = empty(new long[] {nblocks}, options(ScalarType.Byte, host.device())); // (nblocks)
                Tensor absmax2 = empty(new long[] {ceilDiv(nblocks, NESTED_BLOCKSIZE)},
                        options(ScalarType.Float, host.device())); // (ceil(nblocks/256))
                float offset = Kernels.doubleQuantCpu(TensorMemory.segment(host, "absmax"), nblocks,
                        TensorMemory.segment(dyn, "code"), NESTED_BLOCKSIZE, TensorMemory.segment(codes, "qabsmax"),
                        TensorMemory.segment(absmax2, "absmax2"));
                q = new QuantizedWeight(type, blocksize, shape, w.scalar_type(), packed, null, quantMap,
                        codes.to(device, ScalarType.Byte), absmax2.to(device, ScalarType.Float),
                        dyn.to(device, ScalarType.Float), offset);
            }
            return q;
        }
    }

    /** Dequantizes into a new tensor of the original dtype and shape on the weight's device. */
    public Tensor dequantize() {
        return dequantize(dtype);
    }

    /**
     * Dequantizes into a new tensor of {@code outDtype} (float32, bfloat16 or float16). Like any libtorch result, it
     * belongs to the caller's innermost {@link PointerScope} if one is open, else to the caller (close it).
     */
    public Tensor dequantize(ScalarType outDtype) {
        ensureOpen();
        Tensor out = empty(shape, options(outDtype, packed.device())); // (shape...), in the caller's scope
        try (PointerScope scope = new PointerScope()) {
            Tensor scales = absmaxFp32(); // (nblocks) fp32, on device, freed with this scope
            Kernels.Dtype kd = TensorMemory.dtype(out, "output");
            Kernels.of(TensorMemory.device(packed)).dequantize4bit(kd, TensorMemory.segment(packed, "packed"),
                    TensorMemory.segment(scales, "absmax"), TensorMemory.segment(out, "output"), blocksize, numel,
                    type.abi);
        }
        return out;
    }

    /**
     * The per-block fp32 absmax (nblocks) as a new tensor (ownership as {@link #dequantize}): a copy of the stored
     * one, or rebuilt from the nested codes as {@code fp32(fp32(code[q] * absmax2[i / 256]) + offset)} (spec §2.6).
     */
    public Tensor absmaxFp32() {
        ensureOpen();
        if (absmax != null) {
            return absmax.clone();
        }
        long nblocks = ceilDiv(numel, blocksize);
        if (!nestedCodes.is_cuda()) {
            Tensor out = empty(new long[] {nblocks}, options(ScalarType.Float, nestedCodes.device())); // (nblocks)
            Kernels.dequantAbsmaxCpu(TensorMemory.segment(nestedCodes, "nested codes"),
                    TensorMemory.segment(nestedAbsmax, "nested_absmax"),
                    TensorMemory.segment(nestedQuantMap, "nested_quant_map"), offset, NESTED_BLOCKSIZE, nblocks,
                    TensorMemory.segment(out, "absmax"));
            return out;
        }
        // On the GPU with torch ops: one rounding for the product, one for the sum, as bitsandbytes.
        Tensor values;
        Tensor scale;
        try (PointerScope scope = new PointerScope()) {
            values = nestedQuantMap.index_select(0, nestedCodes.to(ScalarType.Long)); // (nblocks)
            scale = nestedAbsmax.repeat_interleave(NESTED_BLOCKSIZE).narrow(0, 0, nblocks); // (nblocks)
            values.retainReference();
            scale.retainReference();
        }
        try {
            return values.mul(scale).add(new Scalar((double) offset));
        } finally {
            values.close();
            scale.close();
        }
    }

    /**
     * bitsandbytes/transformers checkpoint tensors for a module prefix (e.g. {@code model.layers.0.mlp.down_proj}):
     * {@code P.weight}, {@code P.weight.absmax}, {@code P.weight.quant_map}, and when nested
     * {@code P.weight.nested_absmax}, {@code P.weight.nested_quant_map}, plus the JSON blob
     * {@code P.weight.quant_state.bitsandbytes__nf4|fp4} (spec §2.7). Views owned by this weight.
     */
    public Map<String, Tensor> stateDict(String prefix) {
        ensureOpen();
        String base = prefix.isEmpty() ? "weight" : prefix + ".weight";
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put(base, packed);
        m.put(base + ".absmax", absmax != null ? absmax : nestedCodes);
        m.put(base + ".quant_map", quantMap);
        if (nested()) {
            m.put(base + ".nested_absmax", nestedAbsmax);
            m.put(base + ".nested_quant_map", nestedQuantMap);
        }
        if (stateBlob == null) {
            QuantStateJson js = new QuantStateJson(type, blocksize, dtypeName(dtype), shape,
                    nested() ? NESTED_BLOCKSIZE : null, nested() ? "float32" : null, nested() ? (double) offset : null);
            try (PointerScope scope = new PointerScope()) {
                stateBlob = keep(bytes(js.toBytes()));
            }
        }
        m.put(base + ".quant_state.bitsandbytes__" + type.bnbName, stateBlob);
        return m;
    }

    /**
     * Reads a bitsandbytes 4-bit weight from checkpoint tensors (keys as {@link #stateDict}); the JSON blob is
     * authoritative, the tensors are copied (the result does not depend on the source's lifetime) and stay on their
     * device. Rejects a missing or unknown {@code quant_state}, inconsistent sizes, and a {@code quant_map} that is
     * not bitsandbytes' table (its kernels, and ours, decode with the built-in NF4/FP4 tables).
     */
    public static QuantizedWeight fromStateDict(String prefix, Map<String, Tensor> tensors) {
        String base = prefix.isEmpty() ? "weight" : prefix + ".weight";
        String stateKey = null;
        for (String k : tensors.keySet()) {
            if (k.startsWith(base + ".quant_state.")) {
                stateKey = k;
            }
        }
        if (stateKey == null) {
            throw new IllegalArgumentException("no bitsandbytes quant_state for " + base + ": expected a tensor "
                    + base + ".quant_state.bitsandbytes__nf4 (or __fp4)");
        }
        String suffix = stateKey.substring((base + ".quant_state.").length());
        if (!suffix.equals("bitsandbytes__nf4") && !suffix.equals("bitsandbytes__fp4")) {
            throw new IllegalArgumentException(stateKey + ": unknown quant_state '" + suffix
                    + "'; only bitsandbytes__nf4 and bitsandbytes__fp4 are supported");
        }
        try (PointerScope scope = new PointerScope()) {
            QuantStateJson js = QuantStateJson.parse(hostBytes(tensors.get(stateKey)), stateKey);
            if (!suffix.endsWith(js.quantType().bnbName)) {
                throw new IllegalArgumentException(stateKey + " says quant_type " + js.quantType().bnbName);
            }
            checkBlocksize(js.blocksize());
            ScalarType dtype = parseDtype(js.dtype(), stateKey);
            long n = product(js.shape());
            long nblocks = ceilDiv(n, js.blocksize());
            Tensor packedSrc = require(tensors, base);
            // quant_storage other than uint8 stores the same bytes viewed as another dtype (spec §2.4)
            Tensor packedBytes = packedSrc.contiguous().view(ScalarType.Byte).reshape(-1);
            if (packedBytes.numel() < (n + 1) / 2) {
                throw new IllegalArgumentException(base + " holds " + packedBytes.numel() + " bytes but shape "
                        + Arrays.toString(js.shape()) + " needs " + (n + 1) / 2);
            }
            Tensor packed = packedBytes.narrow(0, 0, (n + 1) / 2).reshape((n + 1) / 2, 1).clone();
            Tensor am = require(tensors, base + ".absmax");
            Tensor quantMap = checkQuantMap(tensors.get(base + ".quant_map"), js.quantType(), base, packed.device());
            QuantizedWeight q;
            if (!js.nested()) {
                expect(am, ScalarType.Float, nblocks, base + ".absmax");
                q = new QuantizedWeight(js.quantType(), js.blocksize(), js.shape(), dtype, packed,
                        am.contiguous().reshape(-1).clone(), quantMap, null, null, null, 0f);
            } else {
                if (js.nestedBlocksize() != NESTED_BLOCKSIZE) {
                    throw new IllegalArgumentException(stateKey + ": nested_blocksize " + js.nestedBlocksize()
                            + " is not supported (bitsandbytes always uses 256)");
                }
                expect(am, ScalarType.Byte, nblocks, base + ".absmax");
                Tensor am2 = require(tensors, base + ".nested_absmax");
                expect(am2, ScalarType.Float, ceilDiv(nblocks, NESTED_BLOCKSIZE), base + ".nested_absmax");
                Tensor map = require(tensors, base + ".nested_quant_map");
                expect(map, ScalarType.Float, 256, base + ".nested_quant_map");
                q = new QuantizedWeight(js.quantType(), js.blocksize(), js.shape(), dtype, packed,
                        null, quantMap, am.contiguous().reshape(-1).clone(), am2.contiguous().reshape(-1).clone(),
                        map.contiguous().reshape(-1).clone(), (float) (double) js.nestedOffset());
            }
            return q;
        }
    }

    /** A copy on another device (e.g. load on the CPU, then move to CUDA). */
    public QuantizedWeight to(Device device) {
        ensureOpen();
        try (PointerScope scope = new PointerScope()) {
            QuantizedWeight q = new QuantizedWeight(type, blocksize, shape, dtype, move(packed, device),
                    move(absmax, device), move(quantMap, device), move(nestedCodes, device), move(nestedAbsmax, device),
                    move(nestedQuantMap, device), offset);
            return q;
        }
    }

    public QuantType type() {
        return type;
    }

    public int blocksize() {
        return blocksize;
    }

    /** The original weight shape, e.g. (out_features, in_features). */
    public long[] shape() {
        return shape.clone();
    }

    /** The original dtype (float32, bfloat16 or float16). */
    public ScalarType dtype() {
        return dtype;
    }

    public long numel() {
        return numel;
    }

    public boolean nested() {
        return nestedCodes != null;
    }

    /** Double-quantization offset (0 when not nested). */
    public float offset() {
        return offset;
    }

    /** Packed codes, uint8 ((n + 1) / 2, 1); a view owned by this weight. */
    public Tensor packed() {
        ensureOpen();
        return packed;
    }

    /** Bytes of quantized storage (codes + statistics), e.g. for memory reports. */
    public long storageBytes() {
        ensureOpen();
        long b = packed.nbytes() + quantMap.nbytes();
        if (absmax != null) {
            return b + absmax.nbytes();
        }
        return b + nestedCodes.nbytes() + nestedAbsmax.nbytes() + nestedQuantMap.nbytes();
    }

    public boolean isClosed() {
        return closed;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Tensor t : owned()) {
            t.close();
        }
    }

    @Override
    public String toString() {
        return "QuantizedWeight(" + type.bnbName + ", blocksize " + blocksize + ", shape " + Arrays.toString(shape)
                + ", " + dtypeName(dtype) + (nested() ? ", double-quantized" : "") + (closed ? ", closed" : "") + ")";
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    private List<Tensor> owned() {
        List<Tensor> l = new ArrayList<>();
        for (Tensor t : new Tensor[] {packed, absmax, quantMap, nestedCodes, nestedAbsmax, nestedQuantMap, stateBlob}) {
            if (t != null) {
                l.add(t);
            }
        }
        return l;
    }

    private static Tensor keep(Tensor t) {
        if (t != null) {
            t.retainReference();
        }
        return t;
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException(this + " is used after close()");
        }
    }

    static void checkBlocksize(int blocksize) {
        if (blocksize < 32 || blocksize > 4096 || Integer.bitCount(blocksize) != 1) {
            throw new IllegalArgumentException("quantization blocksize must be one of 32, 64, 128, 256, 512, 1024, 2048,"
                    + " 4096 (bitsandbytes' set), got " + blocksize);
        }
    }

    private static Tensor move(Tensor t, Device device) {
        return t == null ? null : t.to(device, t.scalar_type()).contiguous();
    }

    private static Tensor require(Map<String, Tensor> tensors, String key) {
        Tensor t = tensors.get(key);
        if (t == null) {
            throw new IllegalArgumentException("checkpoint tensor " + key + " is missing");
        }
        return t;
    }

    private static void expect(Tensor t, ScalarType type, long numel, String key) {
        if (!TensorMemory.same(t.scalar_type(), type) || t.numel() != numel) {
            throw new IllegalArgumentException(key + " must be " + type + " with " + numel + " elements, got "
                    + t.scalar_type() + " with " + t.numel());
        }
    }

    private static Tensor checkQuantMap(Tensor map, QuantType type, String base, Device device) {
        float[] builtin = Kernels.codebook(type.abi);
        if (map != null) {
            expect(map, ScalarType.Float, 16, base + ".quant_map");
            float[] given = hostFloats(map);
            for (int i = 0; i < 16; i++) {
                if (Float.floatToRawIntBits(given[i]) != Float.floatToRawIntBits(builtin[i])
                        && !(given[i] == 0f && builtin[i] == 0f)) {
                    throw new IllegalArgumentException(base + ".quant_map entry " + i + " is " + given[i]
                            + " but bitsandbytes' " + type.bnbName + " table has " + builtin[i]
                            + "; custom 4-bit maps are not supported (bitsandbytes' kernels ignore them too)");
                }
            }
        }
        return floats(builtin).to(device, ScalarType.Float);
    }

    static String dtypeName(ScalarType t) {
        if (TensorMemory.same(t, ScalarType.Float)) {
            return "float32";
        }
        if (TensorMemory.same(t, ScalarType.BFloat16)) {
            return "bfloat16";
        }
        if (TensorMemory.same(t, ScalarType.Half)) {
            return "float16";
        }
        throw new IllegalArgumentException("unsupported weight dtype " + t);
    }

    private static ScalarType parseDtype(String s, String key) {
        return switch (s) {
            case "float32" -> ScalarType.Float;
            case "bfloat16" -> ScalarType.BFloat16;
            case "float16" -> ScalarType.Half;
            default -> throw new IllegalArgumentException(key + ": dtype '" + s
                    + "' is not supported (float32, bfloat16, float16)");
        };
    }

    private static Tensor empty(long[] shape, TensorOptions options) {
        return torch.empty(shape, options, new MemoryFormatOptional());
    }

    private static TensorOptions options(ScalarType t, Device device) {
        return new TensorOptions(t).device(new DeviceOptional(device));
    }

    /** A new CPU fp32 tensor holding the values. */
    static Tensor floats(float[] values) {
        Tensor t = empty(new long[] {values.length}, new TensorOptions(ScalarType.Float));
        TensorMemory.segment(t, "floats").copyFrom(MemorySegment.ofArray(values));
        return t;
    }

    private static Tensor bytes(byte[] values) {
        Tensor t = empty(new long[] {values.length}, new TensorOptions(ScalarType.Byte));
        TensorMemory.segment(t, "bytes").copyFrom(MemorySegment.ofArray(values));
        return t;
    }

    private static byte[] hostBytes(Tensor t) {
        Tensor h = t.cpu().contiguous().view(ScalarType.Byte).reshape(-1);
        return TensorMemory.segment(h, "bytes").toArray(ValueLayout.JAVA_BYTE);
    }

    private static float[] hostFloats(Tensor t) {
        Tensor h = t.cpu().contiguous();
        return TensorMemory.segment(h, "floats").toArray(ValueLayout.JAVA_FLOAT);
    }

    private static long product(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }
}
