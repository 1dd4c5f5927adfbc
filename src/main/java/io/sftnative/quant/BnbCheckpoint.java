package io.sftnative.quant;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import io.sftnative.files.AtomicFiles;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.DenseLinear;
import io.sftnative.model.LinearLayer;
import io.sftnative.model.ModelConfig;
import io.sftnative.model.ModelFormatException;
import io.sftnative.model.ParameterLayout;
import io.sftnative.model.safetensors.DType;
import io.sftnative.model.safetensors.SafetensorsCheckpoint;
import io.sftnative.model.safetensors.ShardedSafetensorsWriter;
import io.sftnative.model.safetensors.TensorEntry;
import io.sftnative.torch.Devices;
import io.sftnative.torch.TorchRuntime;

/**
 * bitsandbytes-quantized HF checkpoints (spec §2.7), as transformers saves a model loaded with
 * {@code BitsAndBytesConfig}: 4-bit modules as {@code P.weight} (packed uint8) + {@code P.weight.absmax},
 * {@code .quant_map}, {@code .nested_absmax}, {@code .nested_quant_map}, {@code .quant_state.bitsandbytes__nf4|fp4};
 * 8-bit modules as {@code P.weight} (int8) + {@code P.SCB} + {@code P.weight_format}; everything else dense, and
 * {@code quantization_config} in config.json. The per-tensor state is authoritative; config.json's block is advisory.
 */
// PointerScope blocks own every tensor created inside them; the scope variable itself is never read
@SuppressWarnings("try")
public final class BnbCheckpoint {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String QUANT_STATE = ".weight.quant_state.";

    private BnbCheckpoint() {}

    /**
     * config.json's {@code quantization_config.quant_method} (null when none); any method but bitsandbytes (GPTQ,
     * AWQ, AQLM, ...) is refused with a message, so a run can check it before preparing any data.
     */
    public static String quantMethod(Path dir) throws IOException {
        // the raw JSON, not ModelConfig: this check runs first and must not depend on the architecture's checks
        Object method = new com.fasterxml.jackson.databind.ObjectMapper().readTree(dir.resolve("config.json").toFile())
                .path("quantization_config").path("quant_method").textValue();
        if (method != null) {
            if (!"bitsandbytes".equals(method)) {
                throw new ModelFormatException(dir.resolve("config.json") + ": quantization_config.quant_method '"
                        + method + "' is not supported; only bitsandbytes 4/8-bit checkpoints load (or use the"
                        + " original full-precision model with quantization_bit)");
            }
            return "bitsandbytes";
        }
        return null;
    }

    /**
     * Whether {@code dir} holds a bitsandbytes-quantized model: config.json's {@code quantization_config} says
     * {@code quant_method: bitsandbytes}, or a tensor carries a quant_state / SCB. Other quantization methods (GPTQ,
     * AWQ, ...) are rejected with a message.
     */
    public static boolean isPreQuantized(Path dir) throws IOException {
        if ("bitsandbytes".equals(quantMethod(dir))) {
            return true;
        }
        try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(dir)) {
            for (String n : ck.names()) {
                if (n.contains(QUANT_STATE) || n.endsWith(".SCB")) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * Loads a bitsandbytes-quantized checkpoint: quantized modules become {@link QuantizedLinear} slots with the stored
     * codes (nothing is re-quantized), dense tensors are converted to {@code dtype} (null: config.json's torch_dtype).
     * Inconsistent state (sizes, shapes that disagree with config.json, a missing part, an unknown tensor) fails
     * naming the tensor and file.
     */
    public static DecoderModel load(Path dir, ScalarType dtype) throws IOException {
        try (PointerScope scope = new PointerScope()) {
            return load(dir, dtype, TorchRuntime.device());
        }
    }

    /**
     * As {@link #load(Path, ScalarType)} onto {@code device}: every tensor is read on the host and moved there (the
     * quantized codes and statistics as stored) before the next is read.
     */
    public static DecoderModel load(Path dir, ScalarType dtype, Device device) throws IOException {
        ModelConfig config = ModelConfig.read(dir);
        ScalarType compute = dtype != null ? dtype
                : config.torchDtype() == null ? ScalarType.Float : DType.fromTorchName(config.torchDtype()).scalarType();
        Map<String, long[]> expected = ParameterLayout.shapes(config);
        Map<String, Tensor> params = new LinkedHashMap<>();
        Map<String, LinearLayer> slots = new LinkedHashMap<>();
        try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(dir)) {
            Set<String> used = new LinkedHashSet<>();
            try {
                Set<String> quantized = new LinkedHashSet<>();
                for (String module : ParameterLayout.linearModules(config)) {
                    if (!(module.equals("lm_head") && config.tieWordEmbeddings()) && isQuantized(ck, module)) {
                        quantized.add(module);
                    }
                }
                for (Map.Entry<String, long[]> e : expected.entrySet()) {
                    String name = e.getKey();
                    if (name.endsWith(".weight") && quantized.contains(name.substring(0, name.length() - 7))) {
                        continue;
                    }
                    params.put(name, readDense(ck, name, e.getValue(), compute, device));
                    used.add(name);
                }
                for (String module : quantized) {
                    slots.put(module, readQuantized(ck, module, expected.get(module + ".weight"), compute,
                            params.get(module + ".bias"), used, device));
                }
                rejectUnknown(ck, config, used);
                return DecoderModel.assemble(config, compute, params, slots);
            } catch (RuntimeException e) {
                params.values().forEach(Tensor::releaseReference);
                slots.values().forEach(l -> ((QuantizedLinear) l).close());
                throw e;
            }
        }
    }

    /** Whether {@code module} is stored quantized; a 4-bit part without its quant_state is an error. */
    private static boolean isQuantized(SafetensorsCheckpoint ck, String module) {
        String w = module + ".weight";
        String part = null;
        for (String n : ck.names()) {
            if (n.startsWith(module + QUANT_STATE)) {
                return true;
            }
            if (n.startsWith(w + ".")) {
                part = n;
            }
        }
        if (ck.contains(module + ".SCB")) {
            return true;
        }
        if (part != null) {
            throw new ModelFormatException(ck.source() + ": " + part + " belongs to a 4-bit weight but " + w
                    + ".quant_state.bitsandbytes__nf4 (or __fp4) is missing");
        }
        return false;
    }

    private static QuantizedLinear readQuantized(SafetensorsCheckpoint ck, String module, long[] shape,
            ScalarType compute, Tensor bias, Set<String> used, Device device) {
        String w = module + ".weight";
        Map<String, Tensor> parts = new LinkedHashMap<>();
        boolean fourBit = false;
        for (String n : ck.names()) {
            if (n.startsWith(w + ".")) {
                parts.put(n, null);
                fourBit |= n.startsWith(module + QUANT_STATE);
            }
        }
        if (!ck.contains(w)) {
            throw new ModelFormatException(ck.source() + ": quantization state for " + module + " but no tensor " + w);
        }
        try (PointerScope scope = new PointerScope()) {
            for (String n : parts.keySet()) {
                parts.put(n, ck.view(n)); // zero-copy views; the weights below copy what they keep
            }
            parts.put(w, ck.view(w));
            long[] stored;
            QuantizedLinear q;
            if (fourBit) {
                QuantizedWeight qw = onDevice(QuantizedWeight.fromStateDict(module, parts), device);
                q = QuantizedLinear.of(module, qw, bias);
                stored = qw.shape();
            } else {
                parts.put(module + ".SCB", ck.view(module + ".SCB"));
                if (ck.contains(module + ".weight_format")) {
                    parts.put(module + ".weight_format", ck.view(module + ".weight_format"));
                }
                q = QuantizedLinear.of(module, onDevice(RowwiseInt8Weight.fromStateDict(module, parts, compute),
                        device), bias);
                stored = new long[] {q.outFeatures(), q.inFeatures()};
            }
            if (!Arrays.equals(stored, shape)) {
                q.close();
                throw new ModelFormatException(ck.source() + ": the quantization state of " + w + " says shape "
                        + Arrays.toString(stored) + " but config.json implies " + Arrays.toString(shape));
            }
            used.addAll(parts.keySet());
            for (String n : parts.keySet()) {
                ck.release(n);
            }
            return q;
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(ck.source() + ": inconsistent quantized weight " + w + ": " + e.getMessage(),
                    e);
        }
    }

    /** The weight itself on the host; else its copy on {@code device} (the host copy is closed). */
    private static QuantizedWeight onDevice(QuantizedWeight w, Device device) {
        if (device.is_cpu()) {
            return w;
        }
        try (w) {
            return w.to(device);
        }
    }

    private static RowwiseInt8Weight onDevice(RowwiseInt8Weight w, Device device) {
        if (device.is_cpu()) {
            return w;
        }
        try (w) {
            return w.to(device);
        }
    }

    private static Tensor readDense(SafetensorsCheckpoint ck, String name, long[] shape, ScalarType dtype,
            Device device) {
        if (!ck.contains(name)) {
            throw new ModelFormatException(ck.source() + ": tensor " + name + " is missing");
        }
        TensorEntry entry = ck.entry(name);
        if (!Arrays.equals(entry.shape(), shape)) {
            throw new ModelFormatException("tensor '" + name + "' in " + ck.fileOf(name) + " has shape "
                    + Arrays.toString(entry.shape()) + " but config.json implies " + Arrays.toString(shape));
        }
        DType d = entry.dtype();
        if (d != DType.F32 && d != DType.BF16 && d != DType.F16 && d != DType.F64) {
            throw new ModelFormatException("tensor '" + name + "' in " + ck.fileOf(name) + " is stored as " + d
                    + " without quantization state (" + name + ".quant_state.* for 4-bit, or "
                    + name.replaceAll("\\.weight$", "") + ".SCB for 8-bit)");
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor t = Devices.to(ck.load(name, dtype), device).retainReference(); // owned by the model
            ck.release(name); // the file's pages need not stay resident
            return t;
        }
    }

    private static void rejectUnknown(SafetensorsCheckpoint ck, ModelConfig config, Set<String> used) {
        List<String> unknown = new ArrayList<>();
        for (String n : ck.names()) {
            boolean ignorable = n.endsWith(".rotary_emb.inv_freq")
                    || (config.tieWordEmbeddings() && n.equals("lm_head.weight"));
            if (!used.contains(n) && !ignorable) {
                unknown.add(n);
            }
        }
        if (!unknown.isEmpty()) {
            throw new ModelFormatException(ck.source() + " has tensors this " + config.modelType()
                    + " config does not use: " + String.join(", ", unknown.subList(0, Math.min(8, unknown.size())))
                    + (unknown.size() > 8 ? ", ... (" + unknown.size() + " in all)" : "")
                    + "; check that config.json belongs to these weights");
        }
    }

    // ---------------------------------------------------------------- writing (export)

    /**
     * Writes {@code model} as a bitsandbytes-quantized HF checkpoint that transformers (with bitsandbytes) and
     * {@link #load} read: config.json with {@code quantization_config}, safetensors (sharded above
     * {@code maxShardBytes}). Linear layers already quantized are written as they are; dense ones (all but lm_head)
     * are quantized per {@code spec}, one at a time. The model must hold no adapters (merge them first).
     */
    public static void save(DecoderModel model, Path dir, QuantizationSpec spec, long maxShardBytes)
            throws IOException {
        ModelConfig config = model.config();
        Map<String, Tensor> out = new LinkedHashMap<>();
        List<AutoCloseable> temporary = new ArrayList<>();
        Integer bits = null;
        QuantType type = spec == null ? null : spec.type();
        Boolean nested = spec == null ? null : spec.doubleQuant();
        try {
            Set<String> modules = new LinkedHashSet<>(ParameterLayout.linearModules(config));
            for (String name : ParameterLayout.shapes(config).keySet()) {
                String module = name.endsWith(".weight") ? name.substring(0, name.length() - 7) : null;
                if (module == null || !modules.contains(module)) {
                    out.put(name, model.parameter(name));
                    continue;
                }
                LinearLayer slot = model.linear(module);
                QuantizedLinear q;
                if (slot instanceof QuantizedLinear existing) {
                    q = existing;
                } else if (!(slot instanceof DenseLinear dense)) {
                    throw new IllegalStateException(module + " holds " + slot.getClass().getSimpleName()
                            + "; merge or remove adapters before exporting a quantized model");
                } else if (spec == null || module.equals("lm_head")) {
                    out.put(name, model.parameter(name));
                    continue;
                } else {
                    q = spec.quantize(module, dense.weight(), null);
                    temporary.add(q);
                }
                if (bits != null && bits != q.bits()) {
                    throw new IllegalStateException("the model mixes 4- and 8-bit layers; transformers cannot load"
                            + " such a checkpoint");
                }
                bits = q.bits();
                if (q.bits() == 4) {
                    type = q.fourBit().type();
                    nested = q.fourBit().nested();
                }
                out.putAll(q.stateDict(module));
            }
            Files.createDirectories(dir);
            ShardedSafetensorsWriter.write(dir, out, Map.of("format", "pt"), maxShardBytes);
            writeConfig(model, dir, bits, type, nested);
        } finally {
            for (AutoCloseable c : temporary) {
                try {
                    c.close();
                } catch (Exception ignored) {
                    // closing a quantized weight does not fail
                }
            }
        }
    }

    private static void writeConfig(DecoderModel model, Path dir, Integer bits, QuantType type, Boolean nested)
            throws IOException {
        String dtypeName = switch (DType.of(model.dtype())) {
            case BF16 -> "bfloat16";
            case F16 -> "float16";
            default -> "float32";
        };
        Map<String, Object> json = JSON.readValue(model.config().withTorchDtype(dtypeName).toJson(),
                new TypeReference<LinkedHashMap<String, Object>>() {});
        json.remove("quantization_config");
        if (bits != null) {
            json.put("quantization_config", quantizationConfig(bits, type, nested, dtypeName));
        }
        AtomicFiles.writeString(dir.resolve("config.json"),
                JSON.copy().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(json) + "\n");
    }

    /** transformers' {@code BitsAndBytesConfig.to_dict()} for what we wrote. */
    static Map<String, Object> quantizationConfig(int bits, QuantType type, Boolean nested, String computeDtype) {
        Map<String, Object> q = new LinkedHashMap<>();
        q.put("_load_in_4bit", bits == 4);
        q.put("_load_in_8bit", bits == 8);
        q.put("bnb_4bit_compute_dtype", computeDtype);
        q.put("bnb_4bit_quant_storage", "uint8");
        q.put("bnb_4bit_quant_type", type == null ? "nf4" : type.bnbName);
        q.put("bnb_4bit_use_double_quant", nested != null && nested);
        q.put("llm_int8_enable_fp32_cpu_offload", false);
        q.put("llm_int8_has_fp16_weight", false);
        q.put("llm_int8_skip_modules", null);
        q.put("llm_int8_threshold", 6.0);
        q.put("load_in_4bit", bits == 4);
        q.put("load_in_8bit", bits == 8);
        q.put("quant_method", "bitsandbytes");
        return q;
    }
}
