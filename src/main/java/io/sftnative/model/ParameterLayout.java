package io.sftnative.model;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.sftnative.model.moe.MoeSpec;

/** The HF parameter names and shapes a config implies, in transformers' {@code named_parameters()} order. */
public final class ParameterLayout {
    private ParameterLayout() {}

    public static String layerPrefix(int layer) {
        return "model.layers." + layer + ".";
    }

    /**
     * Name to shape, from the config's {@link Architecture}: fused projections ({@code qkv_proj}, {@code W_pack},
     * {@code gate_up_proj}) stack their parts along the output dim (q, k, v / gate, up). Tied models have no
     * {@code lm_head.weight} (HF saves and counts it once, as the embedding).
     */
    public static Map<String, long[]> shapes(ModelConfig c) {
        Architecture a = c.arch();
        Map<String, long[]> s = new LinkedHashMap<>();
        long hidden = c.hiddenSize();
        long q = (long) c.numAttentionHeads() * c.headDim();
        long kv = (long) c.numKeyValueHeads() * c.headDim();
        long inter = c.intermediateSize();
        MoeSpec moe = c.moe(); // null for a dense model
        s.put("model.embed_tokens.weight", new long[] {c.vocabSize(), hidden});
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = layerPrefix(i) + "self_attn.";
            if (a.qkvFused() != null) {
                linear(s, p + a.qkvFused(), q + 2 * kv, hidden, c.attentionBias());
            } else {
                linear(s, p + "q_proj", q, hidden, c.attentionBias());
                linear(s, p + "k_proj", kv, hidden, c.attentionBias());
                linear(s, p + "v_proj", kv, hidden, c.attentionBias());
            }
            linear(s, p + "o_proj", hidden, q, c.outputBias());
            switch (a.qkNorm()) {
                case PER_HEAD -> {
                    s.put(p + "q_norm.weight", new long[] {c.headDim()});
                    s.put(p + "k_norm.weight", new long[] {c.headDim()});
                }
                case FULL -> {
                    s.put(p + "q_norm.weight", new long[] {q});
                    s.put(p + "k_norm.weight", new long[] {kv});
                }
                case NONE -> { }
            }
            p = layerPrefix(i) + "mlp.";
            if (moe != null && moe.isSparse(i)) {
                moe.addShapes(s, i, hidden); // io.sftnative.model.moe: router and experts
            } else if (a.gateUpFused() != null) {
                linear(s, p + a.gateUpFused(), 2 * inter, hidden, c.mlpBias());
            } else {
                linear(s, p + "gate_proj", inter, hidden, c.mlpBias());
                linear(s, p + "up_proj", inter, hidden, c.mlpBias());
            }
            if (moe == null || !moe.isSparse(i)) {
                linear(s, p + "down_proj", hidden, inter, c.mlpBias());
            }
            for (String norm : a.norms().present()) {
                s.put(layerPrefix(i) + norm + ".weight", new long[] {hidden});
            }
        }
        s.put("model.norm.weight", new long[] {hidden});
        if (!c.tieWordEmbeddings()) {
            s.put("lm_head.weight", new long[] {c.vocabSize(), hidden});
        }
        return s;
    }

    private static void linear(Map<String, long[]> s, String module, long out, long in, boolean bias) {
        s.put(module + ".weight", new long[] {out, in});
        if (bias) {
            s.put(module + ".bias", new long[] {out});
        }
    }

    /** HF module paths of all linear projections (attention inputs, o_proj, MLP inputs, down_proj), lm_head last. */
    public static List<String> linearModules(ModelConfig c) {
        Architecture a = c.arch();
        MoeSpec moe = c.moe();
        List<String> out = new ArrayList<>();
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            for (String p : a.qkvNames()) {
                out.add(layerPrefix(i) + "self_attn." + p);
            }
            out.add(layerPrefix(i) + "self_attn.o_proj");
            if (moe != null && moe.isSparse(i)) {
                out.addAll(moe.linearModules(i));
                continue;
            }
            for (String p : a.gateUpNames()) {
                out.add(layerPrefix(i) + "mlp." + p);
            }
            out.add(layerPrefix(i) + "mlp.down_proj");
        }
        out.add("lm_head");
        return out;
    }

    /** The decoder layer of {@code model.layers.N....}, or -1. */
    static int layerIndexOf(String path) {
        String prefix = "model.layers.";
        if (!path.startsWith(prefix)) {
            return -1;
        }
        int end = path.indexOf('.', prefix.length());
        try {
            return Integer.parseInt(path.substring(prefix.length(), end < 0 ? path.length() : end));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Total parameter count (tied embeddings counted once, as transformers' num_parameters()). */
    public static long count(ModelConfig c) {
        long n = 0;
        for (long[] shape : shapes(c).values()) {
            long k = 1;
            for (long d : shape) {
                k *= d;
            }
            n += k;
        }
        return n;
    }
}
