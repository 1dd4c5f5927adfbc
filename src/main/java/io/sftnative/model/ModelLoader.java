package io.sftnative.model;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.moe.FusedExperts;
import io.sftnative.model.safetensors.DType;
import io.sftnative.model.safetensors.SafetensorsCheckpoint;
import io.sftnative.model.safetensors.TensorEntry;
import io.sftnative.torch.Devices;

/**
 * Builds a {@link DecoderModel} from an HF model directory, checking names, shapes and dtypes against config.json.
 * Tensors are read in host memory one at a time and moved to the model's device before the next is read, so loading
 * onto a GPU never holds more than one tensor of the checkpoint on the host.
 */
final class ModelLoader {
    private ModelLoader() {}

    /**
     * Loads {@code dir} onto {@code device}; {@code factory} (or null) may turn linear weights into other slots (it
     * receives each weight already on {@code device}).
     */
    static DecoderModel load(Path dir, ScalarType requested, Device device, LinearFactory factory) throws IOException {
        ModelConfig config = ModelConfig.read(dir);
        ScalarType dtype = requested != null ? requested : configDtype(config);
        checkFloating(dtype);
        try (SafetensorsCheckpoint ck = open(dir, config)) {
            Map<String, long[]> expected = ParameterLayout.shapes(config);
            FusedExperts fused = FusedExperts.detect(config, ck); // MoE 3-D expert tensors, or null
            check(config, ck, expected, fused);
            Set<String> modules = new HashSet<>();
            if (factory != null) {
                modules.addAll(ParameterLayout.linearModules(config));
                if (config.tieWordEmbeddings()) {
                    modules.remove("lm_head"); // its weight is the embedding
                }
            }
            Map<String, Tensor> params = new LinkedHashMap<>();
            Map<String, LinearLayer> slots = new LinkedHashMap<>();
            try {
                for (String name : expected.keySet()) {
                    if (params.containsKey(name)) {
                        continue; // a bias read with its weight
                    }
                    String module = name.endsWith(".weight") ? name.substring(0, name.length() - 7) : null;
                    if (module == null || !modules.contains(module)) {
                        params.put(name, loadOwned(ck, fused, name, dtype, device));
                        requireFinite(params.get(name), name, dir);
                        continue;
                    }
                    Tensor bias = null;
                    if (expected.containsKey(module + ".bias")) {
                        bias = loadOwned(ck, fused, module + ".bias", dtype, device);
                        params.put(module + ".bias", bias);
                        requireFinite(bias, module + ".bias", dir);
                    }
                    try (PointerScope scope = new PointerScope()) { // frees the dense weight unless kept
                        Tensor weight = Devices.to(read(ck, fused, name, dtype), device); // (out, in) host copy
                        release(ck, fused, name);
                        requireFinite(weight, name, dir);
                        LinearLayer slot = factory.create(module, weight, bias);
                        if (slot == null) {
                            params.put(name, weight.retainReference());
                        } else {
                            slots.put(module, slot);
                        }
                    }
                }
            } catch (RuntimeException e) {
                params.values().forEach(Tensor::releaseReference);
                for (LinearLayer l : slots.values()) {
                    if (l instanceof AutoCloseable c) {
                        try {
                            c.close();
                        } catch (Exception suppressed) {
                            e.addSuppressed(suppressed);
                        }
                    }
                }
                throw e;
            }
            Map<String, Tensor> ordered = new LinkedHashMap<>(); // HF order (biases were read before weights)
            for (String name : expected.keySet()) {
                if (params.containsKey(name)) {
                    ordered.put(name, params.get(name));
                }
            }
            DecoderModel model = new DecoderModel(config, dtype, ordered, slots);
            if (config.textTowerOf() != null) { // saved back as the multimodal checkpoint it came from
                try {
                    model.keepMultimodalSource(MultimodalText.source(dir));
                } catch (IOException | RuntimeException e) {
                    model.close();
                    throw e;
                }
            }
            return model;
        }
    }

    /** The checkpoint of {@code dir}; a multimodal one seen through its text model's names. */
    static SafetensorsCheckpoint open(Path dir, ModelConfig config) throws IOException {
        SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(dir);
        if (config.textTowerOf() == null) {
            return ck;
        }
        try {
            return MultimodalText.textView(ck);
        } catch (RuntimeException e) {
            ck.close();
            throw e;
        }
    }

    /** NaN/Inf base weights would train as "diverged" or chat as NUL bytes: name the tensor instead. */
    private static void requireFinite(Tensor t, String name, Path dir) {
        FiniteCheck.require(t, name, "the model in " + dir, "the weights are damaged (or were saved from a diverged"
                + " run): re-download the model or use an earlier checkpoint");
    }

    /** One tensor, read on the host and moved to {@code device} (the host copy is freed before the next read). */
    static Tensor loadOwned(SafetensorsCheckpoint ck, String name, ScalarType dtype, Device device) {
        return loadOwned(ck, null, name, dtype, device);
    }

    static Tensor loadOwned(SafetensorsCheckpoint ck, FusedExperts fused, String name, ScalarType dtype,
            Device device) {
        try (PointerScope scope = new PointerScope()) {
            // an owned copy (the mapping closes) on the device, owned by the model
            Tensor t = Devices.to(read(ck, fused, name, dtype), device).retainReference();
            release(ck, fused, name); // the copy is all we need: keep the file's pages out of the peak memory
            return t;
        }
    }

    /** A host copy of {@code name}, cut from a fused MoE expert tensor when the checkpoint stores them so. */
    private static Tensor read(SafetensorsCheckpoint ck, FusedExperts fused, String name, ScalarType dtype) {
        return fused != null && fused.provides(name) ? fused.load(name, dtype) : ck.load(name, dtype);
    }

    private static void release(SafetensorsCheckpoint ck, FusedExperts fused, String name) {
        if (fused == null || !fused.provides(name)) {
            ck.release(name); // fused tensors stay mapped until the checkpoint closes (their experts are sliced)
        }
    }

    /** What {@link DecoderModel#assemble} requires: every parameter but the weights of the ready-made slots. */
    static void checkAssembled(ModelConfig config, ScalarType dtype, Map<String, Tensor> params,
            Map<String, LinearLayer> linears) {
        checkFloating(dtype);
        Map<String, long[]> expected = ParameterLayout.shapes(config);
        for (Map.Entry<String, LinearLayer> e : linears.entrySet()) {
            String module = e.getKey();
            long[] shape = expected.get(module.equals("lm_head") && config.tieWordEmbeddings()
                    ? "model.embed_tokens.weight" : module + ".weight");
            LinearLayer l = e.getValue();
            if (shape == null || shape[0] != l.outFeatures() || shape[1] != l.inFeatures()) {
                throw new IllegalArgumentException("layer for '" + module + "' (" + l.inFeatures() + " -> "
                        + l.outFeatures() + " features) is not a linear module of this " + config.modelType()
                        + " config");
            }
        }
        for (String name : expected.keySet()) {
            boolean slotWeight = name.endsWith(".weight")
                    && linears.containsKey(name.substring(0, name.length() - ".weight".length()));
            if (!slotWeight && !params.containsKey(name)) {
                throw new IllegalArgumentException("parameter " + name + " missing");
            }
        }
    }

    static ScalarType configDtype(ModelConfig c) {
        if (c.torchDtype() == null) {
            return ScalarType.Float;
        }
        try {
            return DType.fromTorchName(c.torchDtype()).scalarType();
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException("config.json: torch_dtype '" + c.torchDtype() + "' is not a floating type"
                    + " we can compute in (float32, bfloat16, float16)");
        }
    }

    static void checkFloating(ScalarType t) {
        DType d = DType.of(t);
        if (d != DType.F32 && d != DType.BF16 && d != DType.F16) {
            throw new IllegalArgumentException("model dtype must be float32, bfloat16 or float16, got " + t);
        }
    }

    static void check(ModelConfig config, SafetensorsCheckpoint ck, Map<String, long[]> expected) {
        check(config, ck, expected, null);
    }

    static void check(ModelConfig config, SafetensorsCheckpoint ck, Map<String, long[]> expected,
            FusedExperts fused) {
        List<String> missing = new ArrayList<>();
        for (String n : expected.keySet()) {
            if (!ck.contains(n) && (fused == null || !fused.provides(n))) {
                missing.add(n);
            }
        }
        List<String> unexpected = new ArrayList<>();
        for (String n : ck.names()) {
            boolean ignorable = n.endsWith(".rotary_emb.inv_freq") // buffers older transformers saved
                    || (config.tieWordEmbeddings() && n.equals("lm_head.weight")) // tied: HF ignores the copy
                    || (fused != null && fused.consumes(n)); // MoE experts stored as 3-D tensors
            if (!expected.containsKey(n) && !ignorable) {
                unexpected.add(n);
            }
        }
        if (!missing.isEmpty() || !unexpected.isEmpty()) {
            StringBuilder sb = new StringBuilder(ck.source() + " does not match config.json (" + config.modelType()
                    + ", " + config.numHiddenLayers() + " layers"
                    + (config.tieWordEmbeddings() ? ", tied embeddings" : "") + "):");
            if (!missing.isEmpty()) {
                sb.append(" missing tensors ").append(list(missing)).append(';');
            }
            if (!unexpected.isEmpty()) {
                sb.append(" unexpected tensors ").append(list(unexpected)).append(';');
            }
            sb.append(" check that config.json belongs to these weights");
            throw new ModelFormatException(sb.toString());
        }
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            if (fused != null && fused.provides(e.getKey())) {
                String src = fused.source(e.getKey());
                checkServed(config, ck, e.getKey(), fused.shape(e.getKey()), e.getValue(), src);
                continue;
            }
            TensorEntry entry = ck.entry(e.getKey());
            if (!Arrays.equals(entry.shape(), e.getValue())) {
                throw new ModelFormatException("tensor '" + e.getKey() + "' in " + ck.fileOf(e.getKey())
                        + " has shape " + Arrays.toString(entry.shape()) + " but config.json implies "
                        + Arrays.toString(e.getValue()) + " (hidden_size " + config.hiddenSize()
                        + ", intermediate_size " + config.intermediateSize() + ", heads "
                        + config.numAttentionHeads() + "/" + config.numKeyValueHeads() + ", head_dim "
                        + config.headDim() + ", vocab_size " + config.vocabSize() + ")");
            }
            DType d = entry.dtype();
            if (d != DType.F32 && d != DType.BF16 && d != DType.F16 && d != DType.F64) {
                throw new ModelFormatException("tensor '" + e.getKey() + "' in " + ck.fileOf(e.getKey())
                        + " is stored as " + d + "; weights must be floating point (quantized checkpoints are not"
                        + " loaded here)");
            }
        }
    }

    /** A parameter served from a fused MoE tensor {@code src}: its slice's shape and the stored dtype. */
    private static void checkServed(ModelConfig config, SafetensorsCheckpoint ck, String name, long[] got,
            long[] want, String src) {
        if (!Arrays.equals(got, want)) {
            throw new ModelFormatException("tensor '" + src + "' in " + ck.fileOf(src) + " gives '" + name
                    + "' the shape " + Arrays.toString(got) + " but config.json implies " + Arrays.toString(want));
        }
        DType d = ck.entry(src).dtype();
        if (d != DType.F32 && d != DType.BF16 && d != DType.F16 && d != DType.F64) {
            throw new ModelFormatException("tensor '" + src + "' in " + ck.fileOf(src) + " is stored as " + d
                    + "; weights must be floating point");
        }
    }

    private static String list(List<String> names) {
        int show = Math.min(names.size(), 8);
        String head = String.join(", ", names.subList(0, show));
        return names.size() > show ? head + ", ... (" + names.size() + " in all)" : head;
    }
}
