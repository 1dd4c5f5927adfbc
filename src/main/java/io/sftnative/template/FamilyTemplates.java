package io.sftnative.template;

import static io.sftnative.template.Slot.BOS;
import static io.sftnative.template.Slot.EOS;
import static io.sftnative.template.Slot.text;

import java.util.List;
import java.util.function.Consumer;

/**
 * The LLaMA-Factory templates of the model families beyond Llama/Qwen (docs/architectures.md): gemma, gemma2, gemma3
 * (text part), phi, phi4, phi4_mini, glm4, olmo, granite3, as {@code template.py} registers them. The baichuan and
 * baichuan2 templates are in {@link Templates}. Where LLaMA-Factory leaves a slot to {@code register_template}'s
 * defaults we spell the default out: function = the assistant slots (or {@code {{content}}} + EOS), observation =
 * the user slots, system = {@code {{content}}}.
 */
final class FamilyTemplates {
    private FamilyTemplates() {}

    static void registerAll(Consumer<SlotTemplate> register) {
        // gemma family: Llama2Template (system folded into the first user turn), <end_of_turn> ends turns
        List<Slot> gemmaUser = List.of(text("<start_of_turn>user\n{{content}}<end_of_turn>\n<start_of_turn>model\n"));
        List<Slot> gemmaAssistant = List.of(text("{{content}}<end_of_turn>\n"));
        List<Slot> gemmaSystem = List.of(text("{{content}}\n\n"));
        List<Slot> gemmaTool = List.of(text("<start_of_turn>tool\n{{content}}<end_of_turn>\n<start_of_turn>model\n"));
        register.accept(new SlotTemplate("gemma", List.of(BOS), gemmaUser, gemmaAssistant, gemmaSystem,
                gemmaAssistant, gemmaTool, "", List.of("<end_of_turn>"), true, false, true, ToolFormat.DEFAULT));
        register.accept(new SlotTemplate("gemma2", List.of(BOS), gemmaUser, gemmaAssistant, gemmaSystem,
                gemmaAssistant, gemmaTool, "", List.of("<eos>", "<end_of_turn>"), false, true, true,
                ToolFormat.DEFAULT));
        register.accept(new SlotTemplate("gemma3", List.of(BOS), gemmaUser, gemmaAssistant, gemmaSystem,
                gemmaAssistant, gemmaTool, "", List.of("<end_of_turn>"), true, false, true, ToolFormat.DEFAULT));

        List<Slot> phiUser = List.of(text("<|user|>\n{{content}}<|end|>\n<|assistant|>\n"));
        List<Slot> phiAssistant = List.of(text("{{content}}<|end|>\n"));
        register.accept(new SlotTemplate("phi", List.of(), phiUser, phiAssistant,
                List.of(text("<|system|>\n{{content}}<|end|>\n")), phiAssistant, phiUser, "", List.of("<|end|>"),
                true, false, false, ToolFormat.DEFAULT));
        List<Slot> phi4User = List.of(text("<|im_start|>user<|im_sep|>{{content}}<|im_end|>"
                + "<|im_start|>assistant<|im_sep|>"));
        List<Slot> phi4Assistant = List.of(text("{{content}}<|im_end|>"));
        register.accept(new SlotTemplate("phi4", List.of(), phi4User, phi4Assistant,
                List.of(text("<|im_start|>system<|im_sep|>{{content}}<|im_end|>")), phi4Assistant, phi4User, "",
                List.of("<|im_end|>"), true, false, false, ToolFormat.DEFAULT));
        // phi4_mini writes tools as <|tool|>...<|/tool|>, which ToolFormat does not model: tools are refused
        List<Slot> phi4MiniUser = List.of(text("<|user|>{{content}}<|end|><|assistant|>"));
        List<Slot> phi4MiniAssistant = List.of(text("{{content}}<|end|>"));
        register.accept(new SlotTemplate("phi4_mini", List.of(), phi4MiniUser, phi4MiniAssistant,
                List.of(text("<|system|>{{content}}<|end|>")), phi4MiniAssistant, phi4MiniUser, "",
                List.of("<|end|>"), true, false, false, ToolFormat.UNSUPPORTED));

        // glm4: efficient EOS, glm4 tool format
        register.accept(new SlotTemplate("glm4", List.of(text("[gMASK]<sop>")),
                List.of(text("<|user|>\n{{content}}<|assistant|>")), List.of(text("\n{{content}}")),
                List.of(text("<|system|>\n{{content}}")), List.of(text("{{content}}")),
                List.of(text("<|observation|>\n{{content}}<|assistant|>")), "",
                List.of("<|user|>", "<|observation|>"), false, true, false, ToolFormat.GLM4));

        List<Slot> olmoUser = List.of(text("<|user|>\n{{content}}<|assistant|>\n"));
        List<Slot> contentEos = List.of(text("{{content}}"), EOS);
        register.accept(new SlotTemplate("olmo", List.of(EOS), olmoUser, contentEos, List.of(text("{{content}}")),
                contentEos, olmoUser, "", List.of(), false, false, false, ToolFormat.DEFAULT));

        List<Slot> graniteUser = List.of(text("<|start_of_role|>user<|end_of_role|>{{content}}<|end_of_text|>\n"
                + "<|start_of_role|>assistant<|end_of_role|>"));
        List<Slot> graniteAssistant = List.of(text("{{content}}<|end_of_text|>\n"));
        register.accept(new SlotTemplate("granite3", List.of(), graniteUser, graniteAssistant,
                List.of(text("<|start_of_role|>system<|end_of_role|>{{content}}<|end_of_text|>\n")),
                graniteAssistant, graniteUser, "", List.of(), false, false, false, ToolFormat.DEFAULT));
    }
}
