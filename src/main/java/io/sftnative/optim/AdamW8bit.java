package io.sftnative.optim;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.bindings.BnbAbi;
import io.sftnative.bindings.Kernels;
import io.sftnative.bindings.TensorMemory;

/**
 * bitsandbytes' {@code AdamW8bit} (HF {@code optim: adamw_8bit}, {@code adamw_bnb_8bit}, {@code paged_adamw_8bit}) on
 * the native kernels: per parameter with at least {@link #MIN_8BIT_SIZE} elements, the two Adam moments are stored as
 * one byte each (codes of bitsandbytes' signed dynamic map for the first moment, the unsigned map for the second) plus
 * one fp32 absmax per block of {@link #BLOCK} elements, i.e. 2 + 8/256 bytes per parameter instead of 8; smaller
 * tensors keep fp32 moments with bitsandbytes' 32-bit update, as bitsandbytes' {@code min_8bit_size} does.
 *
 * <p>The update is bitsandbytes' kernel, not torch's AdamW: weight decay {@code p *= 1 - lr * wd} comes after the Adam
 * step, eps is added as {@code sqrt(v) + eps * sqrt(1 - beta2^t)}, and all scalars are fp32 (native header
 * jbnb_adam_8bit_blockwise_cpu_*, docs/training.md). Each parameter keeps its own step count; a parameter without a
 * gradient is skipped. Parameters must be host tensors (fp32, bf16 or fp16, contiguous); "paged" changes nothing on
 * the host (bitsandbytes pages only CUDA state).
 *
 * <p>The optimizer does not own the parameters (it holds its own handles); it owns its state. Use after
 * {@link #close()} fails with {@link IllegalStateException}.
 */
@SuppressWarnings("try") // scopes are held for their side effect
public final class AdamW8bit implements Optimizer {
    /** Elements per absmax block (bitsandbytes' BLOCKSIZE_2STATE). */
    public static final int BLOCK = 256;
    /** bitsandbytes' default min_8bit_size: smaller tensors keep fp32 state. */
    public static final long MIN_8BIT_SIZE = 4096;
    /** Keys of {@link #stateDict()}: {@code <param name>.<suffix>}, bitsandbytes' state names. */
    public static final String STATE1 = "state1";
    public static final String STATE2 = "state2";
    public static final String ABSMAX1 = "absmax1";
    public static final String ABSMAX2 = "absmax2";
    public static final String STEP = "step";

    private final List<Slot> slots = new ArrayList<>();
    private final Map<String, Slot> byName = new LinkedHashMap<>();
    private final float beta1;
    private final float beta2;
    private final float eps;
    private final Tensor code1; // (256) fp32 signed dynamic map
    private final Tensor code2; // (256) fp32 unsigned dynamic map
    private final Map<String, Double> lrScales = new java.util.HashMap<>(); // LoRA+: lr factor per parameter
    private boolean closed;

    private static final class Slot {
        final String name;
        final Tensor param; // our handle on the caller's parameter (shares its storage)
        final float weightDecay;
        final boolean eightBit; // numel >= MIN_8BIT_SIZE
        Tensor state1;  // (numel) uint8 codes, or fp32 exp_avg for small tensors; null until the first step
        Tensor state2;  // (numel) uint8 codes, or fp32 exp_avg_sq
        Tensor absmax1; // (ceil(numel / 256)) fp32; null for small tensors
        Tensor absmax2; // (ceil(numel / 256)) fp32
        long step;

        Slot(String name, Tensor param, float weightDecay) {
            this.name = name;
            this.param = param;
            this.weightDecay = weightDecay;
            this.eightBit = param.numel() >= MIN_8BIT_SIZE;
        }

        long blocks() {
            return (param.numel() + BLOCK - 1) / BLOCK;
        }

        void dropState() {
            for (Tensor t : new Tensor[] {state1, state2, absmax1, absmax2}) {
                if (t != null) {
                    t.close();
                }
            }
            state1 = state2 = absmax1 = absmax2 = null;
            step = 0;
        }
    }

    /**
     * @param params      trainable parameters by name, in a stable order; host tensors
     * @param weightDecay decoupled weight decay for the parameters {@code decays} accepts; the rest get 0
     */
    public AdamW8bit(Map<String, Tensor> params, double weightDecay, Predicate<String> decays, double beta1,
            double beta2, double eps) {
        check(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1), got " + beta1 + " (key adam_beta1)");
        check(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1), got " + beta2 + " (key adam_beta2)");
        check(eps >= 0, "eps must be >= 0, got " + eps + " (key adam_epsilon)");
        check(weightDecay >= 0, "weight decay must be >= 0, got " + weightDecay + " (key weight_decay)");
        check(!params.isEmpty(), "AdamW8bit got no trainable parameters: check finetuning_type and the freeze/LoRA"
                + " target settings");
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            Tensor p = e.getValue();
            check(p != null && p.defined(), "parameter '" + e.getKey() + "' is not a defined tensor");
            check(!p.is_cuda(), "optim adamw_8bit runs on host memory in sft-native (its CUDA kernel has not been"
                    + " verified on a GPU yet), but parameter '" + e.getKey() + "' is on CUDA: use optim adamw_torch on GPUs");
            TensorMemory.dtype(p, "parameter '" + e.getKey() + "'"); // fp32, bf16 or fp16
            check(p.is_contiguous(), "parameter '" + e.getKey() + "' is not contiguous");
        }
        this.beta1 = (float) beta1;
        this.beta2 = (float) beta2;
        this.eps = (float) eps;
        this.code1 = owned(floats(Kernels.codebook(BnbAbi.DYNAMIC_MAP)));
        this.code2 = owned(floats(Kernels.codebook(BnbAbi.UNSIGNED_DYNAMIC_MAP)));
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            Slot s = new Slot(e.getKey(), owned(new Tensor(e.getValue())),
                    decays.test(e.getKey()) ? (float) weightDecay : 0.0f);
            slots.add(s);
            byName.put(s.name, s);
        }
    }

    /** AdamW8bit with HF Trainer's parameter groups (no decay for biases and norm weights). */
    public static AdamW8bit withHfGroups(Map<String, Tensor> params, double weightDecay, double beta1, double beta2,
            double eps) {
        return new AdamW8bit(params, weightDecay, ParamGroups::decays, beta1, beta2, eps);
    }

    @Override
    public void step(double lr) {
        ensureOpen();
        Kernels k = Kernels.cpu();
        MemorySegment q1 = TensorMemory.segment(code1, "signed dynamic map");
        MemorySegment q2 = TensorMemory.segment(code2, "unsigned dynamic map");
        for (Slot s : slots) {
            try (PointerScope scope = new PointerScope()) {
                Tensor grad = s.param.grad(); // same shape as param; undefined when backward never reached it
                if (!grad.defined()) {
                    continue;
                }
                Kernels.Dtype t = TensorMemory.dtype(s.param, "parameter '" + s.name + "'");
                check(TensorMemory.same(grad.scalar_type(), s.param.scalar_type()), "gradient of '" + s.name
                        + "' is " + grad.scalar_type() + " but the parameter is " + s.param.scalar_type());
                Tensor g = grad.contiguous(); // (numel) view or copy
                if (s.state1 == null) {
                    initState(s);
                }
                s.step++;
                check(s.step <= Integer.MAX_VALUE, "step count of '" + s.name + "' exceeds bitsandbytes' int step");
                float lrS = (float) (lr * lrScales.getOrDefault(s.name, 1.0));
                MemorySegment p = TensorMemory.segment(s.param, s.name);
                MemorySegment gs = TensorMemory.segment(g, s.name + " grad");
                MemorySegment m = TensorMemory.segment(s.state1, s.name + " state1");
                MemorySegment v = TensorMemory.segment(s.state2, s.name + " state2");
                if (s.eightBit) {
                    k.adam8bitBlockwise(t, p, gs, m, v, beta1, beta2, eps, (int) s.step, lrS, q1, q2,
                            TensorMemory.segment(s.absmax1, s.name + " absmax1"),
                            TensorMemory.segment(s.absmax2, s.name + " absmax2"), s.weightDecay, s.param.numel());
                } else {
                    k.adam32bit(t, gs, p, m, v, beta1, beta2, eps, s.weightDecay, (int) s.step, lrS,
                            s.param.numel());
                }
            }
        }
    }

    /** bitsandbytes' initial state: zero codes and zero absmax (8-bit), or zero fp32 moments. */
    private static void initState(Slot s) {
        long n = s.param.numel();
        if (s.eightBit) {
            s.state1 = owned(torch.zeros(new long[] {n}, new TensorOptions(ScalarType.Byte)));
            s.state2 = owned(torch.zeros(new long[] {n}, new TensorOptions(ScalarType.Byte)));
            s.absmax1 = owned(torch.zeros(new long[] {s.blocks()}, new TensorOptions(ScalarType.Float)));
            s.absmax2 = owned(torch.zeros(new long[] {s.blocks()}, new TensorOptions(ScalarType.Float)));
        } else {
            s.state1 = owned(torch.zeros(new long[] {n}, new TensorOptions(ScalarType.Float)));
            s.state2 = owned(torch.zeros(new long[] {n}, new TensorOptions(ScalarType.Float)));
        }
    }

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
     * The state for exact resume, flat per parameter: {@code <name>.state1}, {@code .state2} (uint8 codes for 8-bit
     * parameters, fp32 moments for small ones), {@code .absmax1}, {@code .absmax2} (8-bit only) and {@code .step}
     * (a float32 scalar). The handles share storage with the optimizer; the caller closes them.
     */
    @Override
    public Map<String, Tensor> stateDict() {
        ensureOpen();
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Slot s : slots) {
            if (s.state1 == null) {
                continue;
            }
            out.put(s.name + "." + STATE1, new Tensor(s.state1));
            out.put(s.name + "." + STATE2, new Tensor(s.state2));
            if (s.eightBit) {
                out.put(s.name + "." + ABSMAX1, new Tensor(s.absmax1));
                out.put(s.name + "." + ABSMAX2, new Tensor(s.absmax2));
            }
            out.put(s.name + "." + STEP, torch.scalar_tensor(new Scalar((double) s.step))); // float32 scalar
        }
        return out;
    }

    /**
     * Replaces the state with one {@link #stateDict()} wrote (values copied); parameters absent from {@code state}
     * start fresh. Fails, changing nothing, on an unknown key, a missing entry, or a dtype or size that does not fit
     * the parameter (e.g. a checkpoint written with optim adamw_torch: its exp_avg keys are named in the message).
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
            Slot s = byName.get(name);
            if (!List.of(STATE1, STATE2, ABSMAX1, ABSMAX2, STEP).contains(suffix)) {
                throw new IllegalArgumentException("optimizer state key '" + key + "' is not 8-bit AdamW state (.state1,"
                        + " .state2, .absmax1, .absmax2, .step): the checkpoint was written with another optim;"
                        + " resume with the optim it was trained with");
            }
            if (s == null) {
                throw new IllegalArgumentException("optimizer state key '" + key + "' names no trainable parameter"
                        + " of this run: the checkpoint was written with other trainable parameters (finetuning_type,"
                        + " lora_target, freeze settings must match the run being resumed)");
            }
            if (!suffix.equals(STEP)) {
                expectFits(key, e.getValue(), s, suffix);
            }
            withState.add(name);
        }
        for (String name : withState) {
            Slot s = byName.get(name);
            List<String> need = s.eightBit ? List.of(STATE1, STATE2, ABSMAX1, ABSMAX2, STEP)
                    : List.of(STATE1, STATE2, STEP);
            for (String suffix : need) {
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
            initState(s);
            try (PointerScope scope = new PointerScope()) {
                s.state1.copy_(state.get(s.name + "." + STATE1).reshape(-1));
                s.state2.copy_(state.get(s.name + "." + STATE2).reshape(-1));
                if (s.eightBit) {
                    s.absmax1.copy_(state.get(s.name + "." + ABSMAX1).reshape(-1));
                    s.absmax2.copy_(state.get(s.name + "." + ABSMAX2).reshape(-1));
                }
            }
            s.step = Math.round(state.get(s.name + "." + STEP).item_double());
        }
    }

    private static void expectFits(String key, Tensor t, Slot s, String suffix) {
        boolean absmax = suffix.equals(ABSMAX1) || suffix.equals(ABSMAX2);
        check(!absmax || s.eightBit, "optimizer state '" + key + "' is 8-bit state but parameter '" + s.name
                + "' has fewer than " + MIN_8BIT_SIZE + " elements (fp32 state)");
        long want = absmax ? s.blocks() : s.param.numel();
        ScalarType dtype = absmax || !s.eightBit ? ScalarType.Float : ScalarType.Byte;
        check(t.defined() && t.numel() == want && TensorMemory.same(t.scalar_type(), dtype), "optimizer state '"
                + key + "' is " + (t.defined() ? t.scalar_type() + " with " + t.numel() + " elements" : "undefined")
                + " but parameter '" + s.name + "' needs " + dtype + " with " + want);
    }

    /** How many updates parameter {@code name} has received (0 before its first gradient). */
    public long stepCount(String name) {
        ensureOpen();
        Slot s = byName.get(name);
        check(s != null, "no trainable parameter named '" + name + "'");
        return s.step;
    }

    /** The weight decay applied to parameter {@code name} (0 for the no-decay group), as the kernel gets it. */
    public float weightDecay(String name) {
        Slot s = byName.get(name);
        check(s != null, "no trainable parameter named '" + name + "'");
        return s.weightDecay;
    }

    /** Whether parameter {@code name} has 8-bit state (at least {@link #MIN_8BIT_SIZE} elements). */
    public boolean eightBit(String name) {
        Slot s = byName.get(name);
        check(s != null, "no trainable parameter named '" + name + "'");
        return s.eightBit;
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
        code1.close();
        code2.close();
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("AdamW8bit is closed");
        }
    }

    private static Tensor floats(float[] values) { // (n) fp32 host tensor owning a copy of values
        try (FloatPointer p = new FloatPointer(values);
                TensorOptions opts = new TensorOptions(ScalarType.Float);
                Tensor view = torch.from_blob(p, new long[] {values.length}, opts)) {
            return view.clone();
        }
    }

    /** Keeps {@code t} alive past any {@link PointerScope} the caller has open (released in {@link #close()}). */
    private static Tensor owned(Tensor t) {
        return t.retainReference();
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }
}
