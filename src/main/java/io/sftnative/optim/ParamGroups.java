package io.sftnative.optim;

import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Which trainable parameters get weight decay, as HF Trainer decides it ({@code Trainer.get_decay_parameter_names}).
 *
 * <p>HF excludes every parameter of a {@code nn.LayerNorm} module and every parameter whose lower-cased name matches
 * {@code bias}, {@code layernorm}, {@code rmsnorm}, {@code (^|.)norm($|.)} or {@code _norm($|.)}. Our models have no
 * module types, so the name rules carry the whole decision: for the Llama family they cover biases,
 * {@code input_layernorm}, {@code post_attention_layernorm}, {@code q_norm}/{@code k_norm} and {@code model.norm}.
 * LoRA matrices ({@code lora_A}/{@code lora_B}) decay, as in HF.
 */
public final class ParamGroups {
    private static final Pattern NO_DECAY = Pattern.compile(
            "bias|layernorm|rmsnorm|(?:^|\\.)norm(?:$|\\.)|_norm(?:$|\\.)");

    private ParamGroups() {}

    /** True when HF Trainer would put the parameter in the weight-decay group. */
    public static boolean decays(String parameterName) {
        return !NO_DECAY.matcher(parameterName.toLowerCase(Locale.ROOT)).find();
    }

    /** The names of {@code parameterNames} that decay, in their original order. */
    public static Set<String> decayParameterNames(Collection<String> parameterNames) {
        Set<String> out = new LinkedHashSet<>();
        for (String n : parameterNames) {
            if (decays(n)) {
                out.add(n);
            }
        }
        return out;
    }
}
