package io.sftnative.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

import org.bytedeco.pytorch.Device;

import io.sftnative.config.ConfigException;
import io.sftnative.config.SftConfig;
import io.sftnative.lora.AdapterChain;
import io.sftnative.train.NewTokens;
import io.sftnative.lora.ModelExport;
import io.sftnative.quant.QuantizationSpec;
import io.sftnative.files.AtomicFiles;
import io.sftnative.template.SlotTemplate;
import io.sftnative.template.Template;
import io.sftnative.template.Templates;
import io.sftnative.tokenizer.Tokenizer;
import io.sftnative.torch.TorchRuntime;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** {@code export config.yaml key=value ...}: merges LoRA adapters into the base model and writes an HF directory. */
@Command(name = "export", mixinStandardHelpOptions = true,
        footerHeading = "%nExample:%n",
        footer = {
                "  java -jar sft-native.jar export model_name_or_path=models/Qwen2.5-0.5B-Instruct"
                        + " adapter_name_or_path=saves/run1 export_dir=models/merged"},
        description = {"Merge LoRA adapters (adapter_name_or_path, comma-separated, merged in order) into the base"
                + " model (model_name_or_path) and write a complete HF model directory to export_dir: config.json,"
                + " safetensors shards of at most export_size GB (+ model.safetensors.index.json), and the base's"
                + " generation_config.json and tokenizer files. The directory is replaced atomically. With"
                + " export_quantization_bit: 4|8 the weights are written bitsandbytes-quantized (quantization_type,"
                + " double_quantization, quantization_blocksize)."})
final class ExportCommand implements Callable<Integer> {
    @Mixin
    ConfigArgs config;

    @Mixin
    TorchArgs torch;

    @Override
    public Integer call() throws Exception {
        SftConfig cfg = config.load();
        String base = cfg.model().modelNameOrPath();
        if (base == null) {
            throw new ConfigException("export needs model_name_or_path (the base model directory)");
        }
        String dir = cfg.export().exportDir();
        if (dir == null) {
            throw new ConfigException("export needs export_dir (where the merged model is written)");
        }
        if (cfg.model().quantizationBit() != 0) {
            throw new ConfigException("export merges into the full-precision weights: remove quantization_bit ("
                    + cfg.model().quantizationBit() + ") from the export config");
        }
        String template = cfg.data().template();
        if (template != null && !template.isBlank() && !template.equalsIgnoreCase(Templates.AUTO)) {
            Templates.named(template.trim()); // a typo is an error, as in training (the tokenizer files are copied)
        }
        List<Path> adapters = AdapterChain.parse(cfg.model().adapterNameOrPath());
        NewTokens.requirePresent(cfg.model().newTokens(), AdapterChain.tokenizerDir(Path.of(base), adapters),
                "export");
        if (!adapters.isEmpty() && !cfg.finetuning().finetuningType().equals("lora")) {
            throw new ConfigException("adapter_name_or_path is only valid with finetuning_type: lora (it is "
                    + cfg.finetuning().finetuningType() + "); a full or freeze run's output_dir is already a model:"
                    + " use it as model_name_or_path");
        }
        QuantizationSpec quantize;
        try {
            quantize = QuantizationSpec.of(cfg.export().exportQuantizationBit(), cfg.model().quantizationType(),
                    cfg.model().doubleQuantization(), cfg.model().quantizationBlocksize());
        } catch (IllegalArgumentException e) {
            throw new ConfigException(e.getMessage(), e);
        }
        torch.boot();
        // LLaMA-Factory's export_device: cpu (default) or auto (the run's device); --device wins over both
        String device = torch.device != null ? torch.deviceName()
                : cfg.export().exportDevice().equals("auto") ? TorchRuntime.deviceName(cfg.model().device()) : "cpu";
        ModelExport.Result r;
        try (Device on = new Device(device)) {
            r = ModelExport.export(Path.of(base), adapters, Path.of(dir), cfg.export().maxShardBytes(), null,
                    quantize, on, cfg.model().ropeScaling(), m -> System.err.println(m));
        }
        writeModelfile(r.dir(), template, cfg.data().defaultSystem());
        System.out.printf("exported %s%s to %s%s: %s (%.1f MB)%n", base,
                adapters.isEmpty() ? "" : " with " + adapters.size() + " merged adapter(s)", r.dir(),
                quantize == null ? "" : " (bitsandbytes " + quantize + ")", String.join(", ", r.files()),
                r.bytes() / 1e6);
        return 0;
    }

    /**
     * LLaMA-Factory writes an Ollama Modelfile next to the merged model from the template. It needs the exported
     * tokenizer and a slot template (a named one); a model's own Jinja template has no slots to translate.
     */
    private static void writeModelfile(Path dir, String template, String defaultSystem) throws IOException {
        if (!Files.exists(dir.resolve("tokenizer.json")) && !Files.exists(dir.resolve("tokenizer.model"))) {
            System.err.println("note: no Ollama Modelfile written (the export has no tokenizer files)");
            return;
        }
        try (Tokenizer tok = Tokenizer.load(dir)) {
            Template t = Templates.resolve(template, tok, defaultSystem);
            if (!(t instanceof SlotTemplate slots)) {
                System.err.println("note: no Ollama Modelfile written: set template to a named template (the model's"
                        + " own Jinja chat_template has no slots to translate into an Ollama template)");
                return;
            }
            AtomicFiles.writeString(dir.resolve("Modelfile"), OllamaModelfile.of(slots, tok));
            System.err.println("Ollama modelfile saved in " + dir.resolve("Modelfile"));
        }
    }
}
