package io.sftnative.model.moe;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.ModelConfig;
import io.sftnative.model.ModelFormatException;
import io.sftnative.model.safetensors.SafetensorsCheckpoint;

/**
 * Reads the fused expert layout newer transformers (v5) write: per sparse layer
 * {@code <block>.experts.gate_up_proj} (E, 2*I, H), gate rows first then up rows (the forward splits
 * {@code linear(x, gate_up_proj[e]).chunk(2, -1)}), and {@code <block>.experts.down_proj} (E, H, I), where
 * {@code <block>} is {@code model.layers.i.mlp} (mixtral: {@code block_sparse_moe} or {@code mlp}; a mixtral
 * router is then read from {@code mlp.gate.weight} too). A {@code .weight} suffix on the fused names is accepted.
 * Each per-expert parameter name of {@link MoeSpec} (e.g. {@code mlp.experts.3.up_proj.weight}) is served as a copy
 * of its slice, so the rest of the model (slots, LoRA, QLoRA, saving) sees the classic one-tensor-per-expert layout.
 */
public final class FusedExperts {
    private final SafetensorsCheckpoint ck;
    private final Map<String, Slice> slices = new LinkedHashMap<>(); // per-expert name -> where it lies
    private final Set<String> consumed = new LinkedHashSet<>(); // checkpoint names this layout stands for

    /** A per-expert weight: rows [rowStart, rowStart + rows) of {@code fused[expert]}. */
    private record Slice(String fused, int expert, long rowStart, long rows) {}

    private FusedExperts(SafetensorsCheckpoint ck) {
        this.ck = ck;
    }

    /** The fused layout of {@code ck} for {@code config}, or null when it stores one tensor per expert. */
    public static FusedExperts detect(ModelConfig config, SafetensorsCheckpoint ck) {
        MoeSpec spec = config.moe();
        if (spec == null) {
            return null;
        }
        FusedExperts f = new FusedExperts(ck);
        String[] names = spec.projections(); // gate, up, down leaf names
        for (int i = 0; i < config.numHiddenLayers(); i++) {
            if (!spec.isSparse(i)) {
                continue;
            }
            String canonical = spec.blockPrefix(i); // ...mlp. or ...block_sparse_moe.
            String block = null;
            for (String b : new String[] {canonical, "model.layers." + i + ".mlp."}) {
                if (find(ck, b + "experts.gate_up_proj") != null) {
                    block = b;
                    break;
                }
            }
            if (block == null) {
                continue;
            }
            String gateUp = find(ck, block + "experts.gate_up_proj");
            String down = find(ck, block + "experts.down_proj");
            long e = spec.numExperts();
            long inter = spec.expertIntermediate();
            long hidden = config.hiddenSize();
            if (down == null) {
                throw new ModelFormatException(ck.source() + ": '" + gateUp + "' is present but its partner '"
                        + block + "experts.down_proj' is missing (fused expert layout)");
            }
            expectShape(ck, gateUp, new long[] {e, 2 * inter, hidden}, "(num_experts, 2 * moe_intermediate_size,"
                    + " hidden_size)");
            expectShape(ck, down, new long[] {e, hidden, inter}, "(num_experts, hidden_size, moe_intermediate_size)");
            f.consumed.add(gateUp);
            f.consumed.add(down);
            for (int x = 0; x < e; x++) {
                String p = spec.expert(i, x);
                f.slices.put(p + names[0] + ".weight", new Slice(gateUp, x, 0, inter));
                f.slices.put(p + names[1] + ".weight", new Slice(gateUp, x, inter, inter));
                f.slices.put(p + names[2] + ".weight", new Slice(down, x, 0, hidden));
            }
            if (!block.equals(canonical) && ck.contains(block + "gate.weight")) {
                f.aliases.put(spec.router(i) + ".weight", block + "gate.weight");
                f.consumed.add(block + "gate.weight");
            }
        }
        return f.slices.isEmpty() ? null : f;
    }

    private final Map<String, String> aliases = new LinkedHashMap<>(); // canonical name -> stored name

    private static String find(SafetensorsCheckpoint ck, String name) {
        return ck.contains(name) ? name : ck.contains(name + ".weight") ? name + ".weight" : null;
    }

    private static void expectShape(SafetensorsCheckpoint ck, String name, long[] shape, String what) {
        long[] got = ck.entry(name).shape();
        if (!Arrays.equals(got, shape)) {
            throw new ModelFormatException("tensor '" + name + "' in " + ck.fileOf(name) + " has shape "
                    + Arrays.toString(got) + " but config.json implies " + Arrays.toString(shape) + " " + what);
        }
    }

    /** Whether {@code name} (a per-expert or router parameter) is served from the fused layout. */
    public boolean provides(String name) {
        return slices.containsKey(name) || aliases.containsKey(name);
    }

    /** Checkpoint tensor names the fused layout accounts for (not "unexpected"). */
    public boolean consumes(String checkpointName) {
        return consumed.contains(checkpointName);
    }

    /** The stored shape of a served name (the slice's). */
    public long[] shape(String name) {
        String alias = aliases.get(name);
        if (alias != null) {
            return ck.entry(alias).shape();
        }
        Slice s = slices.get(name);
        long[] fused = ck.entry(s.fused()).shape();
        return new long[] {s.rows(), fused[2]};
    }

    /** The checkpoint tensor a served name comes from (for messages). */
    public String source(String name) {
        return aliases.containsKey(name) ? aliases.get(name) : slices.get(name).fused();
    }

    /** An owned host copy of {@code name} in {@code dtype}, cut from the fused tensor's zero-copy view. */
    public Tensor load(String name, ScalarType dtype) {
        String alias = aliases.get(name);
        if (alias != null) {
            return ck.load(alias, dtype);
        }
        Slice s = slices.get(name);
        Tensor fused = ck.view(s.fused()); // (E, R, C) zero-copy
        Tensor slice = fused.select(0, s.expert()).narrow(0, s.rowStart(), s.rows()); // (rows, C) view
        return slice.to(dtype).clone(); // owned, contiguous
    }
}
