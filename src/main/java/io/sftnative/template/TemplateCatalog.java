package io.sftnative.template;

import static io.sftnative.template.Slot.BOS;
import static io.sftnative.template.Slot.EOS;
import static io.sftnative.template.Slot.text;
import static io.sftnative.template.TemplateBuilder.template;

import java.util.List;

/**
 * LLaMA-Factory's text templates (its {@code data/template.py}, commit ff6d4d1) for the generic formats and the
 * architectures sft-native loads: Llama, Mistral, Qwen2 and Qwen3 (and the model families built on them). Data only:
 * slots, stop words, flags; {@link TemplateBuilder} supplies {@code register_template}'s defaults.
 */
final class TemplateCatalog {
    private TemplateCatalog() {}

    private static final String IM_USER = "<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n";
    private static final String IM_ASSISTANT = "{{content}}<|im_end|>\n";
    private static final String IM_SYSTEM = "<|im_start|>system\n{{content}}<|im_end|>\n";
    private static final String IM_TOOL = "<|im_start|>tool\n{{content}}<|im_end|>\n<|im_start|>assistant\n";
    private static final String QWEN_OBSERVATION = "<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response>"
            + "<|im_end|>\n<|im_start|>assistant\n";
    private static final String LLAMA3_HEADER = "<|start_header_id|>%s<|end_header_id|>\n\n";
    private static final String VICUNA_SYSTEM = "A chat between a curious user and an artificial intelligence"
            + " assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";

    static List<SlotTemplate> all() {
        return List.of(
                // generic formats
                template("default").user(text("Human: {{content}}"), EOS, text("\nAssistant:"))
                        .assistant(text("{{content}}"), EOS, text("\n"))
                        .system(text("System: {{content}}"), EOS, text("\n")).build(),
                template("empty").assistant("{{content}}").build(),
                template("alpaca").user("### Instruction:\n{{content}}\n\n### Response:\n")
                        .assistant(text("{{content}}"), EOS, text("\n\n"))
                        .defaultSystem("Below is an instruction that describes a task. Write a response that"
                                + " appropriately completes the request.\n\n").build(),
                template("fewshot").assistant("{{content}}\n\n").efficientEos().build(),
                template("chatml").user(IM_USER).assistant(IM_ASSISTANT).system(IM_SYSTEM).observation(IM_TOOL)
                        .stopWords("<|im_end|>", "<|im_start|>").replaceEos().build(),
                template("chatml_de").user(IM_USER).assistant(IM_ASSISTANT).system(IM_SYSTEM).observation(IM_TOOL)
                        .defaultSystem("Du bist ein freundlicher und hilfsbereiter KI-Assistent.")
                        .stopWords("<|im_end|>", "<|im_start|>").replaceEos().build(),

                // Qwen2 / Qwen3 (and models built on them)
                qwen("qwen").defaultSystem("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
                        .build(),
                qwen("qwen3").reasoning().build(),
                qwen("qwen3_nothink").build(),
                template("deepseekr1").user("<｜User｜>{{content}}<｜Assistant｜>").prefix(BOS).reasoning().build(),
                template("sailor").user("<|im_start|>question\n{{content}}<|im_end|>\n<|im_start|>answer\n")
                        .assistant(IM_ASSISTANT).system(IM_SYSTEM)
                        .defaultSystem("You are an AI assistant named Sailor created by Sea AI Lab. Your answer should"
                                + " be friendly, unbiased, faithful, informative and detailed.")
                        .stopWords("<|im_end|>").build(),

                // Llama (and models built on it)
                template("llama2").user(BOS, text("[INST] {{content}} [/INST]"))
                        .system("<<SYS>>\n{{content}}\n<</SYS>>\n\n").foldSystem().build(),
                template("llama2_zh").user(BOS, text("[INST] {{content}} [/INST]"))
                        .system("<<SYS>>\n{{content}}\n<</SYS>>\n\n")
                        .defaultSystem("You are a helpful assistant. 你是一个乐于助人的助手。").foldSystem().build(),
                template("llama3").user(LLAMA3_HEADER.formatted("user") + "{{content}}<|eot_id|>"
                                + LLAMA3_HEADER.formatted("assistant"))
                        .assistant("{{content}}<|eot_id|>")
                        .system(LLAMA3_HEADER.formatted("system") + "{{content}}<|eot_id|>")
                        .function(ToolFormat.LLAMA3, text("{{content}}<|eot_id|>"))
                        .observation(LLAMA3_HEADER.formatted("ipython") + "{{content}}<|eot_id|>"
                                + LLAMA3_HEADER.formatted("assistant"))
                        .prefix(BOS).stopWords("<|eot_id|>", "<|eom_id|>").replaceEos().build(),
                template("deepseek").user("User: {{content}}\n\nAssistant:").system("{{content}}\n\n").prefix(BOS)
                        .build(),
                template("deepseekcoder").user("### Instruction:\n{{content}}\n### Response:")
                        .assistant("\n{{content}}\n<|EOT|>\n").prefix(BOS)
                        .defaultSystem("You are an AI programming assistant, utilizing the DeepSeek Coder model,"
                                + " developed by DeepSeek Company, and you only answer questions related to computer"
                                + " science. For politically sensitive questions, security and privacy issues, and"
                                + " other non-computer science questions, you will refuse to answer.\n").build(),
                template("yi").user(IM_USER).assistant(IM_ASSISTANT).system(IM_SYSTEM).stopWords("<|im_end|>")
                        .build(),
                template("smollm").user(IM_USER).assistant(IM_ASSISTANT).system(IM_SYSTEM).stopWords("<|im_end|>")
                        .build(),
                template("smollm2").user(IM_USER).assistant(IM_ASSISTANT).system(IM_SYSTEM).stopWords("<|im_end|>")
                        .defaultSystem("You are a helpful AI assistant named SmolLM, trained by Hugging Face.")
                        .build(),
                template("opencoder").user(IM_USER).assistant(IM_ASSISTANT).system(IM_SYSTEM).observation(IM_TOOL)
                        .defaultSystem("You are OpenCoder, created by OpenCoder Team.").stopWords("<|im_end|>")
                        .build(),
                template("solar").user("### User:\n{{content}}\n\n### Assistant:\n")
                        .system("### System:\n{{content}}\n\n").efficientEos().build(),
                template("vicuna").user("USER: {{content}} ASSISTANT:").defaultSystem(VICUNA_SYSTEM).build(),
                template("xuanyuan").user("Human: {{content}} Assistant:")
                        .defaultSystem("以下是用户和人工智能助手之间的对话。用户以Human开头，人工智能助手以Assistant开头，"
                                + "会对人类提出的问题给出有帮助、高质量、详细和礼貌的回答，并且总是拒绝参与与不道德、"
                                + "不安全、有争议、政治敏感等相关的话题、问题和指示。\n").build(),
                template("openchat-3.6").user(LLAMA3_HEADER.formatted("GPT4 Correct User") + "{{content}}<|eot_id|>"
                                + LLAMA3_HEADER.formatted("GPT4 Correct Assistant"))
                        .prefix(BOS).stopWords("<|eot_id|>").build(),
                template("seed_coder").user(BOS, text("user\n{{content}}"), EOS, BOS, text("assistant\n"))
                        .system(BOS, text("system\n{{content}}"), EOS)
                        .defaultSystem("You are an AI programming assistant, utilizing the Seed-Coder model,"
                                + " developed by ByteDance Seed, and you only answer questions related to computer"
                                + " science. For politically sensitive questions, security and privacy issues, and"
                                + " other non-computer science questions, you will refuse to answer.\n\n").build(),

                // Mistral (and models built on it)
                template("mistral").user("[INST] {{content}}[/INST]").assistant(text(" {{content}}"), EOS)
                        .system("{{content}}\n\n")
                        .function(ToolFormat.MISTRAL, text("[TOOL_CALLS] {{content}}"), EOS)
                        .observation("[TOOL_RESULTS] {\"content\": {{content}}}[/TOOL_RESULTS]")
                        .prefix(BOS).foldSystem().build(),
                template("ministral").user("[INST]{{content}}[/INST]").system("{{content}}\n\n")
                        .function(ToolFormat.MISTRAL, text("[TOOL_CALLS]{{content}}"), EOS)
                        .observation("[TOOL_RESULTS]{\"content\": {{content}}}[/TOOL_RESULTS]")
                        .prefix(BOS).foldSystem().build(),
                template("mistral_small").user("[INST]{{content}}[/INST]")
                        .system("[SYSTEM_PROMPT]{{content}}[/SYSTEM_PROMPT]")
                        .function(ToolFormat.MISTRAL, text("[TOOL_CALLS]{{content}}"), EOS)
                        .observation("[TOOL_RESULTS]{\"content\": {{content}}}[/TOOL_RESULTS]")
                        .prefix(BOS).build(),
                template("zephyr").user(text("<|user|>\n{{content}}"), EOS, text("<|assistant|>\n"))
                        .system(text("<|system|>\n{{content}}"), EOS)
                        .defaultSystem("You are Zephyr, a helpful assistant.").build(),
                template("openchat").user(text("GPT4 Correct User: {{content}}"), EOS,
                                text("GPT4 Correct Assistant:"))
                        .prefix(BOS).build(),
                template("breeze").user("[INST] {{content}} [/INST] ").prefix(BOS).efficientEos().build());
    }

    /** LLaMA-Factory's qwen family: ChatML with Qwen's tool format and tool responses inside a user turn. */
    private static TemplateBuilder qwen(String name) {
        return template(name).user(IM_USER).assistant(IM_ASSISTANT).system(IM_SYSTEM)
                .function(ToolFormat.QWEN, text(IM_ASSISTANT)).observation(QWEN_OBSERVATION)
                .stopWords("<|im_end|>").replaceEos();
    }
}
