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

import io.sftnative.config.ConfigException;
import io.sftnative.config.GenerationArgs;
import io.sftnative.config.SftConfig;
import io.sftnative.lora.AdapterChain;
import io.sftnative.lora.LoraAdapters;
import io.sftnative.train.NewTokens;
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
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code chat MODEL_DIR [--adapter DIR] [--template NAME]} or {@code chat CONFIG.yaml [key=value ...]} (LLaMA-Factory's
 * inference configs: model_name_or_path, adapter_name_or_path, template, default_system and the generation keys): an
 * interactive multi-turn chat on stdin/stdout.
 */
@Command(name = "chat", mixinStandardHelpOptions = true,
        footerHeading = "%nExample:%n",
        footer = {
                "  java -jar sft-native.jar chat models/Qwen2.5-0.5B-Instruct --adapter saves/run1 --template"
                        + " qwen --greedy"},
        description = {"Chat with a model in the terminal: each line you type is a user turn; the conversation is"
                + " rendered with the chat template, the answer is generated until the template's stop token.",
                "/clear forgets the conversation, /exit (or end of input) quits."})
final class ChatCommand implements Callable<Integer> {
    @Parameters(arity = "1..*", paramLabel = "MODEL_DIR|CONFIG",
            description = {"HF model directory (config.json, safetensors, tokenizer files), or a LLaMA-Factory"
                    + " inference config (.yaml/.yml/.json) followed by key=value (or --key value) overrides"})
    List<String> args = new ArrayList<>();

    @Spec
    CommandSpec spec;

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
        Path modelDir;
        String adapterArg = adapter;
        String templateArg = template;
        String systemArg = system;
        GenerationArgs gen = null;
        String ropeScaling = null;
        if (ConfigArgs.isConfigFile(args.get(0))) {
            List<String> a = ConfigArgs.normalized(args);
            SftConfig cfg = SftConfig.load(Path.of(a.get(0)), a.subList(1, a.size()),
                    w -> System.err.println("warning: " + w));
            if (cfg.model().modelNameOrPath() == null) {
                throw new ConfigException("chat " + a.get(0) + ": the config has no model_name_or_path");
            }
            modelDir = Path.of(cfg.model().modelNameOrPath());
            adapterArg = adapter != null ? adapter : cfg.model().adapterNameOrPath();
            templateArg = template != null ? template : cfg.data().template();
            systemArg = system != null ? system : cfg.data().defaultSystem();
            gen = cfg.generation();
            ropeScaling = cfg.model().ropeScaling();
            NewTokens.requirePresent(cfg.model().newTokens(), AdapterChain.tokenizerDir(modelDir,
                    AdapterChain.parse(adapterArg)), "chat");
        } else {
            if (args.size() > 1) {
                throw new ConfigException("chat MODEL_DIR takes no further arguments (got " + args.subList(1,
                        args.size()) + "); key=value overrides go with a config file: chat CONFIG.yaml key=value");
            }
            modelDir = Path.of(io.sftnative.hub.HubCache.resolveModel(args.get(0), "main", null));
        }
        torch.boot();
        ScalarType st = dtype.scalarType();
        PrintStream out = System.out;
        boolean quantized = BnbCheckpoint.isPreQuantized(modelDir); // loads as stored; adapters stay attached
        try (Device device = new Device(torch.deviceName()); Tokenizer tok = Tokenizer.load(
                        AdapterChain.tokenizerDir(modelDir, AdapterChain.parse(adapterArg)));
                DecoderModel model = QuantizedModels.load(modelDir, st, device, null,
                        w -> System.err.println("warning: " + w));
                LoraAdapters attached = AdapterChain.forInference(model, AdapterChain.parse(adapterArg), !quantized)) {
            if (ropeScaling != null) { // LLaMA-Factory's inference: factor 2 (no model_max_length)
                model.rescaleRope(model.config().withLlamaFactoryRopeScaling(ropeScaling, null,
                        w -> System.err.println("note: " + w)));
            }
            Template tpl = Templates.resolve(templateArg, tok, null);
            if (tok.vocabSize() > model.config().vocabSize()) {
                System.err.println("warning: the tokenizer has " + tok.vocabSize() + " ids but the model only "
                        + model.config().vocabSize() + "; prompts with the extra ids will fail");
            }
            List<Integer> stops = new ArrayList<>(tpl.stopTokenIds(tok));
            long pad = tok.padId() >= 0 ? tok.padId() : 0;
            long[] turn = {0};
            GenerationArgs fromConfig = gen;
            int answerLimit = fromConfig == null
                    || spec.commandLine().getParseResult().hasMatchedOption("--max-new-tokens") ? maxNewTokens
                            : fromConfig.maxNewTokens();
            ChatSession session = new ChatSession(tok, tpl, systemArg, (int) Math.min(Integer.MAX_VALUE,
                    Generation.contextLength(model.config())),
                    answerLimit, new ChatSession.Responder() {
                        @Override
                        public long[] respond(long[] prompt) {
                            return respond(prompt, answerLimit);
                        }

                        @Override
                        public long[] respond(long[] prompt, int maxNew) {
                            long[] stopIds = stops.stream().mapToLong(Integer::longValue).toArray();
                            GenerationOptions opts = fromConfig == null
                                    ? sampling.options(maxNew, stopIds, pad, turn[0]++)
                                    : configOptions(fromConfig, maxNew, stopIds, pad, turn[0]++);
                            return Generation.generate(model, new long[][] {prompt}, opts)[0];
                        }
                    });
            session.run(new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)), out);
        }
        return 0;
    }

    /** The config's generation keys; a decoding flag given on the command line wins over its key; {@code maxNew}
     * is the answer limit the session leaves room for. */
    private GenerationOptions configOptions(GenerationArgs g, int maxNew, long[] stopIds, long pad, long turn) {
        var parsed = spec.commandLine().getParseResult();
        return new GenerationOptions(!parsed.hasMatchedOption("--greedy") && g.doSample(),
                parsed.hasMatchedOption("--temperature") ? sampling.temperature : g.temperature(),
                parsed.hasMatchedOption("--top-p") ? sampling.topP : g.topP(),
                parsed.hasMatchedOption("--top-k") ? sampling.topK : g.topK(),
                parsed.hasMatchedOption("--repetition-penalty") ? sampling.repetitionPenalty : g.repetitionPenalty(),
                maxNew, stopIds, pad,
                sampling.seed + turn);
    }
}
