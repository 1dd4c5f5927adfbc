package io.sftnative.lora;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

import org.bytedeco.pytorch.Tensor;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.MultimodalText;

/**
 * Which modules of a model a target list names, with PEFT's matching rules: a name matches a module path when it is
 * the path or a dot-separated suffix of it ({@code q_proj} matches {@code model.layers.3.self_attn.q_proj}); a
 * single string that is not a plain name is a regular expression that must match the whole path
 * ({@code re.fullmatch}); {@code all} (LLaMA-Factory) and {@code all-linear} (PEFT) mean every linear layer but the
 * output layer {@code lm_head}.
 */
final class TargetModules {
    static final String ALL = "all";
    static final String ALL_LINEAR = "all-linear";
    static final String LM_HEAD = "lm_head";
    static final String EMBED = "model.embed_tokens";

    private TargetModules() {}

    static boolean matches(String path, String target) {
        return path.equals(target) || path.endsWith("." + target);
    }

    /** Short (leaf) names of the linear modules, e.g. q_proj ... down_proj, lm_head. */
    static List<String> leafNames(DecoderModel model) {
        Set<String> names = new LinkedHashSet<>();
        for (String p : model.linearPaths()) {
            names.add(p.substring(p.lastIndexOf('.') + 1));
        }
        return List.copyOf(names);
    }

    /**
     * The linear module paths (in model order) that {@code targets} select, restricted to {@code layers} (null =
     * all). Fails naming the target that matches nothing and listing the available names.
     */
    static List<String> resolveLinear(DecoderModel model, List<String> targets, List<Integer> layers, String what,
            boolean strict) {
        List<String> paths = model.linearPaths();
        Set<String> chosen = new LinkedHashSet<>();
        for (String t : targets) {
            if (ALL.equalsIgnoreCase(t) || ALL_LINEAR.equalsIgnoreCase(t)) {
                for (String p : paths) {
                    if (!p.equals(LM_HEAD) && !model.isRouter(p)) { // MoE routers only when named (gate)
                        chosen.add(p);
                    }
                }
            } else {
                List<String> hit = paths.stream().filter(p -> matches(p, t)).toList();
                if (hit.isEmpty() && strict) {
                    throw new IllegalArgumentException(what + " '" + t + "' matches no linear module of this "
                            + model.config().modelType() + " model; available: "
                            + String.join(", ", leafNames(model)) + " (or all = every linear layer but lm_head)");
                }
                chosen.addAll(hit);
            }
        }
        if (chosen.isEmpty()) { // PEFT: names that match nothing are fine as long as one matches
            throw new IllegalArgumentException(what + " " + targets + " match no linear module of this "
                    + model.config().modelType() + " model; available: " + String.join(", ", leafNames(model)));
        }
        return filterLayers(paths, chosen, layers);
    }

    /** Sorted distinct leaf names of module paths (how LLaMA-Factory saves target_modules for "all"). */
    static List<String> leafNamesOf(List<String> paths) {
        return paths.stream().map(p -> p.substring(p.lastIndexOf('.') + 1)).distinct().sorted().toList();
    }

    /**
     * PEFT's regex form of target_modules that fully matches exactly {@code paths}, each written as {@code name}
     * gives it (LLaMA-Factory's form for composite models: {@code ^(a\.b|c\.d)$}).
     */
    static String exactRegex(List<String> paths, java.util.function.UnaryOperator<String> name) {
        return "^(" + String.join("|", paths.stream().map(p -> name.apply(p).replace(".", "\\.")).toList()) + ")$";
    }

    /**
     * PEFT's regex form of target_modules: the module paths the pattern fully matches. For Gemma 3 text models the
     * paths are also tried as either multimodal checkpoint names them (an adapter of Gemma3ForConditionalGeneration).
     */
    static List<String> resolveRegex(DecoderModel model, String regex, List<Integer> layers, String what) {
        Pattern p;
        try {
            p = Pattern.compile(regex);
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException(what + " '" + regex + "' is not a valid regular expression: "
                    + e.getDescription());
        }
        Set<String> chosen = new LinkedHashSet<>();
        boolean gemma3 = model.config().modelType().equals("gemma3_text");
        for (String path : model.linearPaths()) {
            boolean match = p.matcher(path).matches();
            for (String stored : gemma3 ? MultimodalText.storedNames(path) : List.<String>of()) {
                match |= p.matcher(stored).matches();
            }
            if (match) {
                chosen.add(path);
            }
        }
        if (chosen.isEmpty()) {
            throw new IllegalArgumentException(what + " regex '" + regex + "' matches no linear module of this "
                    + model.config().modelType() + " model; module paths look like " + model.linearPaths().get(0));
        }
        return filterLayers(model.linearPaths(), chosen, layers);
    }

    private static List<String> filterLayers(List<String> order, Set<String> chosen, List<Integer> layers) {
        List<String> out = new ArrayList<>();
        for (String p : order) {
            if (chosen.contains(p) && (layers == null || layers.contains(layerIndex(p)))) {
                out.add(p);
            }
        }
        return out;
    }

    /** The decoder layer index of {@code model.layers.N....}, or -1. */
    static int layerIndex(String path) {
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

    /**
     * Parameters (by HF name, model order) of the modules named in {@code targets} (PEFT modules_to_save matching).
     * With tied embeddings {@code lm_head} is the embedding matrix, so it resolves to {@code model.embed_tokens.weight}.
     */
    static Map<String, Tensor> resolveFull(DecoderModel model, List<String> targets, String what) {
        Map<String, Tensor> params = model.parameters();
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (String t : targets) {
            boolean hit = false;
            if (t.equals(LM_HEAD) && model.config().tieWordEmbeddings()) {
                out.put(EMBED + ".weight", params.get(EMBED + ".weight"));
                continue;
            }
            for (Map.Entry<String, Tensor> e : params.entrySet()) {
                if (matches(moduleOf(e.getKey()), t)) {
                    out.put(e.getKey(), e.getValue());
                    hit = true;
                }
            }
            if (!hit) {
                throw new IllegalArgumentException(what + " '" + t + "' matches no module of this "
                        + model.config().modelType() + " model; modules with parameters: "
                        + String.join(", ", moduleNames(model)));
            }
        }
        return out;
    }

    /** Leaf module names that hold parameters (embed_tokens, q_proj, ..., input_layernorm, norm, lm_head). */
    static List<String> moduleNames(DecoderModel model) {
        Set<String> names = new LinkedHashSet<>();
        for (String n : model.parameters().keySet()) {
            String m = moduleOf(n);
            names.add(m.substring(m.lastIndexOf('.') + 1));
        }
        if (model.config().tieWordEmbeddings()) {
            names.add(LM_HEAD);
        }
        return List.copyOf(names);
    }

    /** {@code model.layers.0.mlp.up_proj.weight} -> {@code model.layers.0.mlp.up_proj}. */
    static String moduleOf(String parameterName) {
        int dot = parameterName.lastIndexOf('.');
        return dot < 0 ? parameterName : parameterName.substring(0, dot);
    }
}
