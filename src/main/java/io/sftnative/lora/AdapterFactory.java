package io.sftnative.lora;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.LinearLayer;
import io.sftnative.model.VocabResize;
import io.sftnative.torch.Devices;

/**
 * Where {@link LoraAdapters}' A and B come from: drawn fresh ({@link #attach}: PEFT's initialisation, PiSSA's SVD
 * factors, DoRA's magnitudes) or read from a PEFT adapter directory ({@link #load}). Both check the targets against
 * the model first and, once every tensor exists, hand them to {@link LoraAdapters#install}; on a failure they put
 * back any PiSSA residual base and free what they made.
 */
final class AdapterFactory {
    // logs under LoraAdapters' name, as it did before creation moved here
    private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(
            LoraAdapters.class.getName());

    private AdapterFactory() {}

    /** See {@link LoraAdapters#attach(DecoderModel, LoraSpec, long, ScalarType)}. */
    static LoraAdapters attach(DecoderModel model, LoraSpec spec, long seed, ScalarType adapterDtype) {
        List<String> paths = TargetModules.resolveLinear(model, spec.targets(), null, "lora_target", true);
        Map<String, Tensor> fullParams = TargetModules.resolveFull(model, spec.additionalTarget(),
                "additional_target");
        check(model, spec.rank(), paths, fullParams, true);
        if (spec.pissa()) {
            Pissa.checkBases(model, paths);
        }
        Object saved = spec.targetsAll() ? TargetModules.leafNamesOf(paths) : spec.targets();
        List<Tensor> owned = new ArrayList<>();
        Map<String, Tensor[]> ab = new LinkedHashMap<>();
        Map<String, Pissa.Factors> initial = new LinkedHashMap<>();
        try (PointerScope scope = new PointerScope()) {
            Generator gen = torch.make_generator_cpu(seed); // host: the same A for a seed on every device
            TensorOptions f32 = new TensorOptions(ScalarType.Float); // host: A is drawn here, then moved
            for (String path : paths) {
                LinearLayer base = model.linear(path);
                double bound = 1.0 / Math.sqrt(base.inFeatures()); // kaiming_uniform_(a=sqrt(5)): gain*sqrt(3/fan_in)
                Tensor a = torch.empty(new long[] {spec.rank(), base.inFeatures()}, f32, new MemoryFormatOptional())
                        .uniform_(-bound, bound, new GeneratorOptional(gen)).to(adapterDtype); // (r, in) host
                Tensor b = torch.zeros(new long[] {base.outFeatures(), spec.rank()},
                        Devices.options(adapterDtype, model.device())); // (out, r)
                if (spec.pissa()) { // A, B from the SVD; the base keeps the residual
                    Pissa.Factors f = Pissa.onModel(model, path, spec, owned, initial);
                    a = f.a().clone().to(adapterDtype); // A0/B0 stay as they were for pissa_convert
                    b = f.b().clone().to(adapterDtype);
                }
                ab.put(path, own(owned, onDevice(a, model), b));
                if (spec.useDora()) {
                    Tensor[] t = ab.get(path);
                    ab.put(path, new Tensor[] {t[0], t[1], ownOne(owned,
                            Dora.initialMagnitude(base, t[0], t[1], spec.scaling(), path))});
                }
            }
        } catch (RuntimeException e) {
            Pissa.restore(model, spec.scaling(), initial);
            owned.forEach(Tensor::releaseReference);
            throw e;
        }
        return LoraAdapters.install(model, spec, saved, null, ab, fullParams, owned, true, initial);
    }

    /** See {@link LoraAdapters#load(DecoderModel, Path, boolean, ScalarType)}. */
    static LoraAdapters load(DecoderModel model, Path adapterDir, boolean trainable, ScalarType adapterDtype)
            throws IOException {
        PeftConfig cfg = PeftConfig.read(adapterDir);
        Path weights = adapterDir.resolve(PeftConfig.WEIGHTS_FILE);
        if (!Files.isRegularFile(weights)) {
            if (Files.isRegularFile(adapterDir.resolve(PeftConfig.LEGACY_WEIGHTS_FILE))) {
                throw new AdapterFormatException(adapterDir + " holds adapter_model.bin (pickle) but no "
                        + PeftConfig.WEIGHTS_FILE + "; re-save it with PEFT's save_pretrained(safe_serialization=True)");
            }
            throw new NoSuchFileException(weights.toString(), null, "adapter weights not found next to "
                    + PeftConfig.CONFIG_FILE);
        }
        long rows = AdapterFile.vocabularyRows(weights, model);
        if (rows > model.embedWeight().size(0)) {
            // trained with added tokens (add_tokens / resize_vocab): the base grows to the adapter's rows, whose
            // saved values replace the new zero rows below (what resize_token_embeddings + PeftModel does in HF)
            LOG.info(adapterDir + " was trained with a resized vocabulary: growing the base embedding from "
                    + model.embedWeight().size(0) + " to " + rows + " rows");
            VocabResize.toRows(model, rows);
        }
        AdapterFile.Loaded loaded = AdapterFile.read(model, cfg, weights, adapterDtype);
        List<String> targets = cfg.targetModules() instanceof List<?> l
                ? l.stream().map(String::valueOf).toList() : List.of(String.valueOf(cfg.targetModules()));
        LoraSpec spec = new LoraSpec(cfg.r(), cfg.loraAlpha(), cfg.loraDropout(), targets, cfg.useRslora(),
                cfg.modulesToSave() == null ? List.of() : cfg.modulesToSave(), cfg.useDora(), cfg.initLoraWeights());
        Map<String, Tensor> fullParams = TargetModules.resolveFull(model, spec.additionalTarget(),
                "adapter_config.json modules_to_save");
        Map<String, Pissa.Factors> initial = new LinkedHashMap<>();
        List<Tensor> owned = new ArrayList<>(loaded.owned());
        try {
            List<String> paths = new ArrayList<>(loaded.ab().keySet());
            check(model, cfg.r(), paths, fullParams, false);
            if (spec.pissa()) { // PEFT rebuilds the residual base from the SVD, then loads the trained A and B
                Pissa.checkBases(model, paths);
                for (String p : paths) {
                    Pissa.onModel(model, p, spec, owned, initial);
                }
            }
            try (NoGradGuard noGrad = new NoGradGuard(); PointerScope scope = new PointerScope()) {
                for (Map.Entry<String, Tensor> e : loaded.full().entrySet()) {
                    fullParams.get(e.getKey()).copy_(e.getValue());
                }
            }
        } catch (RuntimeException e) {
            Pissa.restore(model, spec.scaling(), initial);
            owned.forEach(Tensor::releaseReference);
            throw e;
        } finally {
            loaded.full().values().forEach(Tensor::releaseReference);
        }
        return LoraAdapters.install(model, spec, cfg.targetModules(), cfg.layersToTransform(), loaded.ab(),
                fullParams, owned, trainable, initial);
    }

    /** The tensor on the model's device (A is drawn on the host so that a seed gives the same values everywhere). */
    static Tensor onDevice(Tensor t, DecoderModel model) {
        return Devices.to(t, model.device());
    }

    private static Tensor ownOne(List<Tensor> owned, Tensor t) { // t already retained
        owned.add(t);
        return t;
    }

    private static Tensor[] own(List<Tensor> owned, Tensor a, Tensor b) {
        a.retainReference(); // owned by the adapters from now on (released in close/merge)
        b.retainReference();
        owned.add(a);
        owned.add(b);
        return new Tensor[] {a, b};
    }

    private static void check(DecoderModel model, int rank, List<String> paths, Map<String, Tensor> fullParams,
            boolean checkRank) {
        for (String path : paths) {
            LinearLayer base = model.linear(path);
            if (base instanceof LoraLinear) {
                throw new IllegalStateException(path + " already has a LoRA adapter; merge or close the first"
                        + " adapters before attaching others");
            }
            if (path.equals(TargetModules.LM_HEAD) && model.config().tieWordEmbeddings()) {
                throw new IllegalArgumentException("lm_head shares its weight with embed_tokens in this model"
                        + " (tie_word_embeddings); LoRA on it could not be merged. Drop lm_head from lora_target, or"
                        + " train it in full with additional_target: embed_tokens");
            }
            long min = Math.min(base.inFeatures(), base.outFeatures());
            if (checkRank && rank > min) {
                throw new IllegalArgumentException("lora_rank " + rank + " is larger than " + path + " ("
                        + base.inFeatures() + " -> " + base.outFeatures() + " features): a rank above min(in, out) = "
                        + min + " adds parameters but no capacity; lower lora_rank to at most " + min);
            }
            String weight = path + ".weight";
            if (fullParams.containsKey(weight)) {
                throw new IllegalArgumentException(path + " is both a LoRA target and an additional_target (trained"
                        + " in full); choose one");
            }
        }
    }
}
