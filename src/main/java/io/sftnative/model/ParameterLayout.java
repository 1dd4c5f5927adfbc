package io.sftnative.model;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.sftnative.model.moe.MoeSpec;

/** The HF parameter names and shapes a config implies, in transformers' {@code named_parameters()} order. */
public final class ParameterLayout {
    private ParameterLayout() {}

    /** The projections of one layer, in HF order: module name under the layer and whether it is attention. */
    static final String[] ATTENTION_PROJECTIONS = {"q_proj", "k_proj", "v_proj", "o_proj"};
    static final String[] MLP_PROJECTIONS = {"gate_proj", "up_proj", "down_proj"};

    public static String layerPrefix(int layer) {
        return "model.layers." + layer + ".";
    }

    /** Name to shape. Tied models have no {@code lm_head.weight} (HF saves and counts it once, as the embedding). */
    public static Map<String, long[]> shapes(ModelConfig c) {
        Map<String, long[]> s = new LinkedHashMap<>();
        long hidden = c.hiddenSize();
        long q = (long) c.numAttentionHeads() * c.headDim();
        long kv = (long) c.numKeyValueHeads() * c.headDim();
        long inter = c.intermediateSize();
        MoeSpec moe = c.moe(); // null for a dense model
        s.put("model.embed_tokens.weight", new long[] {c.vocabSize(), hidden});
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = layerPrefix(i);
            linear(s, p + "self_attn.q_proj", q, hidden, c.attentionBias());
            linear(s, p + "self_attn.k_proj", kv, hidden, c.attentionBias());
            linear(s, p + "self_attn.v_proj", kv, hidden, c.attentionBias());
            linear(s, p + "self_attn.o_proj", hidden, q, c.outputBias());
            if (c.qkNorm()) {
                s.put(p + "self_attn.q_norm.weight", new long[] {c.headDim()});
                s.put(p + "self_attn.k_norm.weight", new long[] {c.headDim()});
            }
            if (moe != null && moe.isSparse(i)) {
                moe.addShapes(s, i, hidden);
            } else {
                linear(s, p + "mlp.gate_proj", inter, hidden, c.mlpBias());
                linear(s, p + "mlp.up_proj", inter, hidden, c.mlpBias());
                linear(s, p + "mlp.down_proj", hidden, inter, c.mlpBias());
            }
            s.put(p + "input_layernorm.weight", new long[] {hidden});
            s.put(p + "post_attention_layernorm.weight", new long[] {hidden});
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

    /** HF module paths of all linear projections, lm_head last. */
    public static List<String> linearModules(ModelConfig c) {
        List<String> out = new ArrayList<>();
        MoeSpec moe = c.moe();
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            for (String p : ATTENTION_PROJECTIONS) {
                out.add(layerPrefix(i) + "self_attn." + p);
            }
            if (moe != null && moe.isSparse(i)) {
                out.addAll(moe.linearModules(i));
                continue;
            }
            for (String p : MLP_PROJECTIONS) {
                out.add(layerPrefix(i) + "mlp." + p);
            }
        }
        out.add("lm_head");
        return out;
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
