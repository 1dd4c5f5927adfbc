package io.sftnative.model;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.safetensors.DType;
import io.sftnative.model.safetensors.SafetensorsCheckpoint;
import io.sftnative.model.safetensors.TensorEntry;

/** Builds a {@link DecoderModel} from an HF model directory, checking names, shapes and dtypes against config.json. */
final class ModelLoader {
    private ModelLoader() {}

    static DecoderModel load(Path dir, ScalarType requested) throws IOException {
        ModelConfig config = ModelConfig.read(dir);
        ScalarType dtype = requested != null ? requested : configDtype(config);
        checkFloating(dtype);
        try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(dir)) {
            Map<String, long[]> expected = ParameterLayout.shapes(config);
            check(config, ck, expected);
            Map<String, Tensor> params = new LinkedHashMap<>();
            try (PointerScope scope = new PointerScope()) {
                for (String name : expected.keySet()) {
                    Tensor t = ck.load(name, dtype); // an owned copy: the mapping closes below
                    t.retainReference(); // owned by the model from now on
                    params.put(name, t);
                }
            } catch (RuntimeException e) {
                params.values().forEach(Tensor::releaseReference);
                throw e;
            }
            return new DecoderModel(config, dtype, params);
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
        List<String> missing = new ArrayList<>();
        for (String n : expected.keySet()) {
            if (!ck.contains(n)) {
                missing.add(n);
            }
        }
        List<String> unexpected = new ArrayList<>();
        for (String n : ck.names()) {
            boolean ignorable = n.endsWith(".rotary_emb.inv_freq") // buffers older transformers saved
                    || (config.tieWordEmbeddings() && n.equals("lm_head.weight")); // tied: HF ignores the copy
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

    private static String list(List<String> names) {
        int show = Math.min(names.size(), 8);
        String head = String.join(", ", names.subList(0, show));
        return names.size() > show ? head + ", ... (" + names.size() + " in all)" : head;
    }
}
