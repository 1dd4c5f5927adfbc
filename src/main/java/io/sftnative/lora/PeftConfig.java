package io.sftnative.lora;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.json.PyJson;

/**
 * {@code adapter_config.json} of a PEFT LoRA adapter: what we write (the fields PEFT's {@code LoraConfig} saves,
 * sorted and indented as PEFT's {@code json.dumps(..., indent=2, sort_keys=True)}) and what we read back.
 *
 * @param r                 rank
 * @param loraAlpha         alpha
 * @param loraDropout       dropout
 * @param targetModules     a list of module names, or a single string (PEFT: regex, or "all-linear")
 * @param useRslora         alpha / sqrt(r) scaling
 * @param modulesToSave     modules trained in full (null = none)
 * @param layersToTransform decoder layer indices the adapter is restricted to (null = all)
 * @param baseModel         base_model_name_or_path
 * @param useDora           DoRA adapter (lora_magnitude_vector tensors)
 * @param initLoraWeights   {@code true} ({@link LoraSpec#DEFAULT_INIT}), {@code pissa} or {@code pissa_niter_N}: a
 *                          PiSSA adapter, whose base is rebuilt as the SVD residual when it loads (as PEFT does)
 */
record PeftConfig(int r, double loraAlpha, double loraDropout, Object targetModules, boolean useRslora,
        List<String> modulesToSave, List<Integer> layersToTransform, String baseModel, boolean useDora,
        String initLoraWeights) {

    static final String CONFIG_FILE = "adapter_config.json";
    static final String WEIGHTS_FILE = "adapter_model.safetensors";
    static final String LEGACY_WEIGHTS_FILE = "adapter_model.bin";
    /** Every saved key starts with this (PeftModelForCausalLM -> LoraModel -> the HF model). */
    static final String PREFIX = "base_model.model.";

    /** The JSON object PEFT writes for a LoraConfig (fields of PEFT 0.10+, which every later PEFT reads). */
    Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("alpha_pattern", Map.of());
        m.put("auto_mapping", null);
        m.put("base_model_name_or_path", baseModel);
        m.put("bias", "none");
        m.put("fan_in_fan_out", false);
        m.put("inference_mode", true); // PEFT's save_pretrained always writes true
        m.put("init_lora_weights", initLoraWeights == null || initLoraWeights.equals(LoraSpec.DEFAULT_INIT) ? (Object) true
                : initLoraWeights);
        m.put("layer_replication", null);
        m.put("layers_pattern", null);
        m.put("layers_to_transform", layersToTransform);
        m.put("loftq_config", Map.of());
        m.put("lora_alpha", loraAlpha == Math.rint(loraAlpha) && Math.abs(loraAlpha) < 1e15 ? (Object) (long) loraAlpha
                : (Object) loraAlpha);
        m.put("lora_dropout", loraDropout);
        m.put("megatron_config", null);
        m.put("megatron_core", "megatron.core");
        m.put("modules_to_save", modulesToSave == null || modulesToSave.isEmpty() ? null : modulesToSave);
        m.put("peft_type", "LORA");
        m.put("r", r);
        m.put("rank_pattern", Map.of());
        m.put("revision", null);
        m.put("target_modules", targetModules);
        m.put("task_type", "CAUSAL_LM");
        m.put("use_dora", useDora);
        m.put("use_rslora", useRslora);
        return m;
    }

    String toJsonText() {
        return PyJson.dumps(toJson(), 2, true);
    }

    /** Reads and checks {@code dir/adapter_config.json}; every unsupported option is a clear error. */
    static PeftConfig read(Path dir) throws IOException {
        Path file = dir.resolve(CONFIG_FILE);
        if (!Files.isDirectory(dir)) {
            throw new NoSuchFileException(dir.toString(), null, "adapter directory not found (adapter_name_or_path"
                    + " must be a local directory with adapter_config.json and adapter_model.safetensors)");
        }
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "no adapter_config.json: " + dir
                    + " is not a PEFT adapter directory (a merged model is loaded with model_name_or_path instead)");
        }
        JsonNode n;
        try {
            n = new ObjectMapper().readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new AdapterFormatException(file + " is not valid JSON: " + e.getOriginalMessage());
        }
        if (n == null || !n.isObject()) {
            throw new AdapterFormatException(file + " must hold a JSON object");
        }
        String type = text(n, "peft_type");
        if (type == null || !type.equalsIgnoreCase("LORA")) {
            throw new AdapterFormatException(file + ": peft_type is " + (type == null ? "missing" : "'" + type + "'")
                    + "; only LoRA adapters (peft_type LORA) are supported");
        }
        String task = text(n, "task_type");
        if (task != null && !task.equals("CAUSAL_LM")) {
            throw new AdapterFormatException(file + ": task_type is '" + task + "'; a causal-LM adapter (CAUSAL_LM)"
                    + " is needed");
        }
        int r = n.path("r").asInt(0);
        if (r < 1) {
            throw new AdapterFormatException(file + ": r must be a positive integer, got " + n.get("r"));
        }
        if (!n.path("lora_alpha").isNumber()) {
            throw new AdapterFormatException(file + ": lora_alpha must be a number, got " + n.get("lora_alpha"));
        }
        reject(n, file, "fan_in_fan_out", v -> v.asBoolean(false),
                "fan_in_fan_out: true is for GPT-2 style Conv1D weights, not Llama-family models");
        String bias = text(n, "bias");
        if (bias != null && !bias.equals("none")) {
            throw new AdapterFormatException(file + ": bias is '" + bias + "'; only bias 'none' adapters are"
                    + " supported (this one also trains biases)");
        }
        reject(n, file, "rank_pattern", v -> v.isObject() && !v.isEmpty(),
                "per-module ranks (rank_pattern) are not supported");
        reject(n, file, "alpha_pattern", v -> v.isObject() && !v.isEmpty(),
                "per-module alphas (alpha_pattern) are not supported");
        reject(n, file, "layer_replication", v -> !v.isNull(), "layer_replication is not supported");
        reject(n, file, "trainable_token_indices", v -> !v.isNull(), "trainable_token_indices is not supported");
        reject(n, file, "target_parameters", v -> !v.isNull() && !(v.isArray() && v.isEmpty()),
                "target_parameters (LoRA on raw parameters) is not supported");
        JsonNode lp = n.get("layers_pattern");
        if (lp != null && !lp.isNull() && !(lp.isTextual() && lp.asText().equals("layers"))
                && !(lp.isArray() && lp.size() == 1 && lp.get(0).asText().equals("layers"))) {
            throw new AdapterFormatException(file + ": layers_pattern " + lp + " does not name this model's"
                    + " 'layers'");
        }
        JsonNode tm = n.get("target_modules");
        Object targets;
        if (tm == null || tm.isNull()) {
            throw new AdapterFormatException(file + ": target_modules is missing");
        } else if (tm.isTextual()) {
            targets = tm.asText();
        } else if (tm.isArray()) {
            targets = strings(tm);
        } else {
            throw new AdapterFormatException(file + ": target_modules must be a list of names or a string, got " + tm);
        }
        return new PeftConfig(r, n.get("lora_alpha").asDouble(), n.path("lora_dropout").asDouble(0.0), targets,
                n.path("use_rslora").asBoolean(false), nullableStrings(n.get("modules_to_save")),
                layers(n.get("layers_to_transform"), file), text(n, "base_model_name_or_path"),
                n.path("use_dora").asBoolean(false), init(n.get("init_lora_weights"), file));
    }

    /**
     * init_lora_weights decides what PEFT does to the base when the adapter loads: nothing for the random inits
     * (true, false, gaussian, eva: the saved A and B replace them), the SVD residual for PiSSA. Others that rewrite
     * the base (olora, corda, loftq, lora_ga, ...) cannot be reproduced here and are refused.
     */
    private static String init(JsonNode v, Path file) {
        if (v == null || v.isNull() || v.isBoolean()) {
            return LoraSpec.DEFAULT_INIT;
        }
        String s = v.asText();
        if (s.equalsIgnoreCase("gaussian") || s.equalsIgnoreCase("eva")) {
            return LoraSpec.DEFAULT_INIT;
        }
        if (LoraSpec.validInit(s)) { // pissa / pissa_niter_N
            return s;
        }
        throw new AdapterFormatException(file + ": init_lora_weights '" + s + "' is not supported: sft-native"
                + " loads adapters initialised with true, gaussian, eva, pissa or pissa_niter_<N>; '" + s + "'"
                + " rewrites the base weights when PEFT loads it (or is unknown). Convert it to a plain LoRA adapter"
                + " with PEFT (save_pretrained(path_initial_model_for_weight_conversion=...)) and load that one");
    }

    private interface Check {
        boolean bad(JsonNode v);
    }

    private static void reject(JsonNode n, Path file, String key, Check bad, String message) {
        JsonNode v = n.get(key);
        if (v != null && bad.bad(v)) {
            throw new AdapterFormatException(file + ": " + message + " (" + key + ": " + v + ")");
        }
    }

    private static String text(JsonNode n, String key) {
        JsonNode v = n.get(key);
        return v == null || v.isNull() ? null : v.asText();
    }

    private static List<String> strings(JsonNode arr) {
        List<String> out = new ArrayList<>();
        arr.forEach(x -> out.add(x.asText()));
        return List.copyOf(out);
    }

    private static List<String> nullableStrings(JsonNode v) {
        if (v == null || v.isNull()) {
            return null;
        }
        return v.isArray() ? strings(v) : List.of(v.asText());
    }

    private static List<Integer> layers(JsonNode v, Path file) {
        if (v == null || v.isNull()) {
            return null;
        }
        List<Integer> out = new ArrayList<>();
        if (v.isInt()) {
            out.add(v.asInt());
        } else if (v.isArray()) {
            for (JsonNode x : v) {
                if (!x.isInt()) {
                    throw new AdapterFormatException(file + ": layers_to_transform must hold layer indices, got " + v);
                }
                out.add(x.asInt());
            }
        } else {
            throw new AdapterFormatException(file + ": layers_to_transform must be an index or a list, got " + v);
        }
        return List.copyOf(out);
    }
}
