package io.sftnative.model.moe;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import io.sftnative.model.ModelFormatException;

/**
 * The sparse mixture-of-experts part of an HF {@code config.json} ({@code qwen3_moe}, {@code qwen2_moe},
 * {@code mixtral}), read with transformers' defaults, and the HF names it implies.
 *
 * <p>Which layers are sparse (transformers' Qwen2/Qwen3-MoE decoder layer): layer {@code i} uses experts iff
 * {@code i} is not in {@code mlp_only_layers} and {@code (i + 1) % decoder_sparse_step == 0}; every other layer keeps
 * the dense MLP of {@code intermediate_size}. Mixtral layers are all sparse.
 *
 * @param style              naming and routing family (QWEN: {@code mlp.experts.E.gate_proj}; MIXTRAL:
 *                           {@code block_sparse_moe.experts.E.w1})
 * @param numExperts         experts per sparse layer ({@code num_experts} / {@code num_local_experts})
 * @param topK               experts per token ({@code num_experts_per_tok})
 * @param normTopK           renormalise the top-k probabilities to sum to 1 (mixtral always)
 * @param expertIntermediate an expert's hidden size ({@code moe_intermediate_size}; mixtral: intermediate_size)
 * @param sharedIntermediate the qwen2_moe shared expert's size ({@code shared_expert_intermediate_size}), 0 = none
 * @param sparse             per layer: true where the MLP is the sparse block
 * @param routerAuxLossCoef  {@code router_aux_loss_coef}: weight of the load-balancing loss in the training loss
 * @param outputRouterLogits {@code output_router_logits}: whether transformers adds the aux loss at all
 */
public record MoeSpec(Style style, int numExperts, int topK, boolean normTopK, int expertIntermediate,
        int sharedIntermediate, boolean[] sparse, double routerAuxLossCoef, boolean outputRouterLogits) {

    public enum Style { QWEN, MIXTRAL }

    public static final List<String> MODEL_TYPES = List.of("qwen2_moe", "qwen3_moe", "mixtral");

    public static boolean isMoe(String modelType) {
        return MODEL_TYPES.contains(modelType);
    }

    /**
     * Reads the MoE keys of a config map (null for a dense model type); {@code origin} names the file in errors.
     * {@code intermediateSize}: the config's dense {@code intermediate_size}.
     */
    public static MoeSpec read(Map<String, ?> m, String origin, int layers, int intermediateSize) {
        Object t = m.get("model_type");
        if (!(t instanceof String type) || !isMoe(type)) {
            return null;
        }
        Keys k = new Keys(m, origin);
        boolean mixtral = type.equals("mixtral");
        boolean qwen3 = type.equals("qwen3_moe");
        // transformers' config defaults per type
        int experts = mixtral ? k.positive("num_local_experts", 8) : k.positive("num_experts", qwen3 ? 128 : 60);
        int topK = k.positive("num_experts_per_tok", mixtral ? 2 : qwen3 ? 8 : 4);
        if (topK > experts) {
            throw k.err("num_experts_per_tok", "(" + topK + ") exceeds the number of experts (" + experts + ", key '"
                    + (mixtral ? "num_local_experts" : "num_experts") + "'): each token picks top-k distinct experts");
        }
        if (mixtral && k.number("router_jitter_noise", 0.0) != 0.0) {
            throw k.err("router_jitter_noise", "is not 0; router jitter (training-time noise) is not supported");
        }
        boolean[] sparse = new boolean[layers];
        if (mixtral) {
            java.util.Arrays.fill(sparse, true);
        } else {
            int step = k.positive("decoder_sparse_step", 1);
            List<Integer> mlpOnly = k.intList("mlp_only_layers");
            for (int i = 0; i < layers; i++) {
                sparse[i] = !mlpOnly.contains(i) && (i + 1) % step == 0;
            }
        }
        int expertInter = mixtral ? intermediateSize : k.positive("moe_intermediate_size", qwen3 ? 768 : 1408);
        int shared = type.equals("qwen2_moe") ? k.positive("shared_expert_intermediate_size", 5632) : 0;
        boolean norm = mixtral || k.bool("norm_topk_prob", false);
        return new MoeSpec(mixtral ? Style.MIXTRAL : Style.QWEN, experts, topK, norm, expertInter, shared, sparse,
                k.number("router_aux_loss_coef", 0.001), k.bool("output_router_logits", false));
    }

    public boolean isSparse(int layer) {
        return sparse[layer];
    }

    /** Number of sparse layers (what the load-balancing loss concatenates). */
    public int sparseLayers() {
        int n = 0;
        for (boolean s : sparse) {
            n += s ? 1 : 0;
        }
        return n;
    }

    /** {@code model.layers.i.mlp.} or, for mixtral, {@code model.layers.i.block_sparse_moe.} */
    public String blockPrefix(int layer) {
        return "model.layers." + layer + (style == Style.MIXTRAL ? ".block_sparse_moe." : ".mlp.");
    }

    /** The router's module path ({@code ...gate}); its parameter is {@code + ".weight"} (E, H). */
    public String router(int layer) {
        return blockPrefix(layer) + "gate";
    }

    /** Module path of expert {@code e}'s projections, in HF order: gate (w1), down (w2), up (w3) for mixtral. */
    public String expert(int layer, int e) {
        return blockPrefix(layer) + "experts." + e + ".";
    }

    /** Leaf names of an expert's gate, up and down projections. */
    public String[] projections() {
        return style == Style.MIXTRAL ? new String[] {"w1", "w3", "w2"}
                : new String[] {"gate_proj", "up_proj", "down_proj"};
    }

    /** Leaf names in transformers' parameter order (mixtral declares w1, w2, w3). */
    String[] declarationOrder() {
        return style == Style.MIXTRAL ? new String[] {"w1", "w2", "w3"}
                : new String[] {"gate_proj", "up_proj", "down_proj"};
    }

    /** The qwen2_moe shared expert's module prefix ({@code ...mlp.shared_expert.}). */
    public String sharedExpert(int layer) {
        return blockPrefix(layer) + "shared_expert.";
    }

    /** The qwen2_moe shared expert gate's parameter (1, H). */
    public String sharedExpertGate(int layer) {
        return blockPrefix(layer) + "shared_expert_gate.weight";
    }

    /** Adds the sparse block's parameter shapes of {@code layer} in transformers' order. */
    public void addShapes(Map<String, long[]> s, int layer, long hidden) {
        s.put(router(layer) + ".weight", new long[] {numExperts, hidden});
        String[] names = projections();
        for (int e = 0; e < numExperts; e++) {
            for (String p : declarationOrder()) {
                boolean down = p.equals(names[2]);
                s.put(expert(layer, e) + p + ".weight",
                        down ? new long[] {hidden, expertIntermediate} : new long[] {expertIntermediate, hidden});
            }
        }
        if (sharedIntermediate > 0) {
            String p = sharedExpert(layer);
            s.put(p + "gate_proj.weight", new long[] {sharedIntermediate, hidden});
            s.put(p + "up_proj.weight", new long[] {sharedIntermediate, hidden});
            s.put(p + "down_proj.weight", new long[] {hidden, sharedIntermediate});
            s.put(sharedExpertGate(layer), new long[] {1, hidden});
        }
    }

    /** The sparse block's linear module paths (experts, then the shared expert); the router is not one. */
    public List<String> linearModules(int layer) {
        List<String> out = new ArrayList<>();
        for (int e = 0; e < numExperts; e++) {
            for (String p : declarationOrder()) {
                out.add(expert(layer, e) + p);
            }
        }
        if (sharedIntermediate > 0) {
            for (String p : new String[] {"gate_proj", "up_proj", "down_proj"}) {
                out.add(sharedExpert(layer) + p);
            }
        }
        return out;
    }

    /** Typed reads with errors naming the origin and key. */
    private record Keys(Map<String, ?> m, String origin) {
        int positive(String key, int def) {
            Object v = m.get(key);
            if (v == null) {
                return def;
            }
            if (!(v instanceof Number n) || n.doubleValue() != Math.rint(n.doubleValue()) || n.intValue() <= 0) {
                throw err(key, "must be a positive whole number, got " + v);
            }
            return n.intValue();
        }

        double number(String key, double def) {
            Object v = m.get(key);
            if (v == null) {
                return def;
            }
            if (!(v instanceof Number n)) {
                throw err(key, "must be a number, got " + v);
            }
            return n.doubleValue();
        }

        boolean bool(String key, boolean def) {
            Object v = m.get(key);
            if (v == null) {
                return def;
            }
            if (!(v instanceof Boolean b)) {
                throw err(key, "must be true or false, got " + v);
            }
            return b;
        }

        List<Integer> intList(String key) {
            Object v = m.get(key);
            List<Integer> out = new ArrayList<>();
            if (v == null) {
                return out;
            }
            if (!(v instanceof List<?> l)) {
                throw err(key, "must be a list of layer indices, got " + v);
            }
            for (Object o : l) {
                if (!(o instanceof Number n) || n.doubleValue() != Math.rint(n.doubleValue())) {
                    throw err(key, "must hold whole numbers, got " + o);
                }
                out.add(n.intValue());
            }
            return out;
        }

        ModelFormatException err(String key, String what) {
            return new ModelFormatException(origin + ": key '" + key + "' " + what);
        }
    }
}
