package io.sftnative.cli;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.lora.AdapterChain;
import io.sftnative.lora.LoraAdapters;
import io.sftnative.quant.BnbCheckpoint;
import io.sftnative.quant.QuantizedModels;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.Generation;
import io.sftnative.model.GenerationOptions;
import io.sftnative.template.Template;
import io.sftnative.template.Templates;
import io.sftnative.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code chat MODEL_DIR [--adapter DIR] [--template NAME]}: an interactive multi-turn chat on stdin/stdout. */
@Command(name = "chat", mixinStandardHelpOptions = true,
        footerHeading = "%nExample:%n",
        footer = {
                "  java -jar sft-native.jar chat models/Qwen2.5-0.5B-Instruct --adapter saves/run1 --template"
                        + " qwen --greedy"},
        description = {"Chat with a model in the terminal: each line you type is a user turn; the conversation is"
                + " rendered with the chat template, the answer is generated until the template's stop token.",
                "/clear forgets the conversation, /exit (or end of input) quits."})
final class ChatCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL_DIR",
            description = "HF model directory (config.json, safetensors, tokenizer files)")
    Path modelDir;

    @Option(names = "--adapter", paramLabel = "DIR[,DIR...]",
            description = "PEFT LoRA adapter(s) merged into the model in order (adapter_name_or_path)")
    String adapter;

    @Option(names = "--template", paramLabel = "NAME",
            description = "chat template (qwen, llama3, ...; default: the tokenizer's own chat_template)")
    String template;

    @Option(names = "--system", paramLabel = "TEXT", description = "system prompt (default: the template's)")
    String system;

    @Option(names = "--max-new-tokens", defaultValue = "1024", description = "answer length limit (default 1024)")
    int maxNewTokens;

    @Mixin
    SamplingArgs sampling;

    @Mixin
    DtypeArg dtype;

    @Mixin
    TorchArgs torch;

    @Override
    public Integer call() throws Exception {
        torch.boot();
        ScalarType st = dtype.scalarType();
        PrintStream out = System.out;
        boolean quantized = BnbCheckpoint.isPreQuantized(modelDir); // loads as stored; adapters stay attached
        try (Device device = new Device(torch.deviceName()); Tokenizer tok = Tokenizer.load(modelDir);
                DecoderModel model = QuantizedModels.load(modelDir, st, device, null,
                        w -> System.err.println("warning: " + w));
                LoraAdapters attached = AdapterChain.forInference(model, AdapterChain.parse(adapter), !quantized)) {
            Template tpl = Templates.resolve(template, tok, null);
            if (tok.vocabSize() > model.config().vocabSize()) {
                System.err.println("warning: the tokenizer has " + tok.vocabSize() + " ids but the model only "
                        + model.config().vocabSize() + "; prompts with the extra ids will fail");
            }
            List<Integer> stops = new ArrayList<>(tpl.stopTokenIds(tok));
            long pad = tok.padId() >= 0 ? tok.padId() : 0;
            long[] turn = {0};
            ChatSession session = new ChatSession(tok, tpl, system, prompt -> {
                GenerationOptions opts = sampling.options(maxNewTokens,
                        stops.stream().mapToLong(Integer::longValue).toArray(), pad, turn[0]++);
                return Generation.generate(model, new long[][] {prompt}, opts)[0];
            });
            session.run(new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)), out);
        }
        return 0;
    }
}
