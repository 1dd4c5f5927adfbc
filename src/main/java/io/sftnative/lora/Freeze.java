package io.sftnative.lora;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.bytedeco.pytorch.Tensor;

import io.sftnative.model.DecoderModel;

/**
 * {@code finetuning_type: freeze} (LLaMA-Factory's {@code _setup_freeze_tuning}): the last N decoder layers train
 * ({@code freeze_trainable_layers: N}; negative N: the first |N|), restricted to {@code freeze_trainable_modules}
 * (names of the layer's direct children: {@code self_attn}, {@code mlp}, {@code input_layernorm},
 * {@code post_attention_layernorm}; {@code all} = the whole layer), plus the named non-layer modules
 * ({@code embed_tokens}, {@code norm}, {@code lm_head}; LLaMA-Factory's {@code freeze_extra_modules}, here also
 * what {@code additional_target} names). Everything else is frozen. Parameters keep the model dtype.
 */
public final class Freeze {
    private Freeze() {}

    /** Sets requires_grad accordingly and returns the trainable parameters by HF name, in model order. */
    public static Map<String, Tensor> apply(DecoderModel model, int trainableLayers, List<String> modules,
            List<String> additionalTarget) {
        int layers = model.config().numHiddenLayers();
        if (trainableLayers == 0) {
            throw new IllegalArgumentException("freeze_trainable_layers is 0: nothing would train; use N > 0 for the"
                    + " last N layers or -N for the first N");
        }
        int from = trainableLayers > 0 ? Math.max(0, layers - trainableLayers) : 0;
        int to = trainableLayers > 0 ? layers : Math.min(-trainableLayers, layers);
        List<String> wanted = modules == null || modules.isEmpty() ? List.of(TargetModules.ALL) : modules;
        Set<String> layerChildren = layerChildren(model);
        for (String m : wanted) {
            if (!m.equalsIgnoreCase(TargetModules.ALL) && !layerChildren.contains(m)) {
                throw new IllegalArgumentException("freeze_trainable_modules '" + m + "' is not a module of the"
                        + " decoder layers; choose from " + String.join(", ", layerChildren) + " (or all)");
            }
        }
        boolean all = wanted.stream().anyMatch(m -> m.equalsIgnoreCase(TargetModules.ALL));
        Set<String> extra = extraParameters(model, additionalTarget == null ? List.of() : additionalTarget);

        model.setRequiresGrad(false);
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) {
            String name = e.getKey();
            int layer = TargetModules.layerIndex(name);
            boolean inLayer = layer >= from && layer < to
                    && (all || wanted.contains(childOf(name)));
            if (inLayer || extra.contains(name)) {
                e.getValue().requires_grad_(true);
                out.put(name, e.getValue());
            }
        }
        return Collections.unmodifiableMap(out);
    }

    /** {@code model.layers.3.mlp.up_proj.weight} -> {@code mlp}. */
    private static String childOf(String name) {
        String rest = name.substring(name.indexOf('.', "model.layers.".length()) + 1);
        int dot = rest.indexOf('.');
        return dot < 0 ? rest : rest.substring(0, dot);
    }

    private static Set<String> layerChildren(DecoderModel model) {
        Set<String> out = new LinkedHashSet<>();
        for (String name : model.parameters().keySet()) {
            if (TargetModules.layerIndex(name) == 0) {
                out.add(childOf(name));
            }
        }
        return out;
    }

    /** Parameters of the named non-layer modules (embed_tokens, norm, lm_head; tied lm_head = the embedding). */
    private static Set<String> extraParameters(DecoderModel model, List<String> names) {
        Set<String> out = new LinkedHashSet<>();
        List<String> available = new ArrayList<>();
        for (String name : model.parameters().keySet()) {
            if (TargetModules.layerIndex(name) < 0) {
                String module = TargetModules.moduleOf(name);
                available.add(module.substring(module.lastIndexOf('.') + 1));
            }
        }
        if (model.config().tieWordEmbeddings()) {
            available.add(TargetModules.LM_HEAD);
        }
        for (String n : names) {
            if (!available.contains(n)) {
                throw new IllegalArgumentException("'" + n + "' is not a module outside the decoder layers; choose"
                        + " from " + String.join(", ", available));
            }
            if (n.equals(TargetModules.LM_HEAD) && model.config().tieWordEmbeddings()) {
                out.add(TargetModules.EMBED + ".weight");
                continue;
            }
            for (String name : model.parameters().keySet()) {
                String module = TargetModules.moduleOf(name);
                if (TargetModules.layerIndex(name) < 0 && module.substring(module.lastIndexOf('.') + 1).equals(n)) {
                    out.add(name);
                }
            }
        }
        return out;
    }
}
