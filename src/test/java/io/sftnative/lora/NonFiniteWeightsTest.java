package io.sftnative.lora;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.model.DecoderModel;
import io.sftnative.model.ModelFormatException;
import io.sftnative.testing.Poison;
import io.sftnative.torch.TorchRuntime;
import io.sftnative.train.log.ResultsWriter;

/** Issue 13: a NaN in base weights or an adapter is refused naming the tensor; a NaN metric is never written. */
class NonFiniteWeightsTest {
    @TempDir
    Path tmp;

    @BeforeAll
    static void boot() {
        TorchRuntime.boot(2);
    }

    @Test
    void nanBaseWeightsAreRefusedOnLoadNamingTheTensor() throws Exception {
        Path base = ModelExportTest.baseDir(tmp, LoraTesting.LLAMA);
        Poison.nan(base.resolve("model.safetensors"), "model.layers.1.mlp.down_proj.weight");
        var e = assertThrows(ModelFormatException.class, () -> DecoderModel.load(base, null).close());
        assertTrue(e.getMessage().contains("tensor 'model.layers.1.mlp.down_proj.weight' of the model in " + base
                + " holds 1 NaN and 0 infinite values"), e.getMessage());
    }

    @Test
    void aNanAdapterIsNotExported() throws Exception {
        Path base = ModelExportTest.baseDir(tmp, LoraTesting.LLAMA);
        Path adapter = tmp.resolve("adapter");
        try (DecoderModel model = DecoderModel.load(base, null);
                LoraAdapters lora = LoraAdapters.attach(model, new LoraSpec(4, 8, 0, List.of("all"), false,
                        List.of()), 1)) {
            LoraTesting.randomize(lora, 7);
            lora.save(adapter, base.toString());
        }
        String key = "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight";
        Poison.nan(adapter.resolve("adapter_model.safetensors"), key);
        Path out = tmp.resolve("export");
        var e = assertThrows(AdapterFormatException.class,
                () -> ModelExport.export(base, List.of(adapter), out, 1_000_000, null, m -> { }));
        assertTrue(e.getMessage().contains("adapter tensor '" + key + "'") && e.getMessage().contains("1 NaN"),
                e.getMessage());
        assertFalse(Files.exists(out));
    }

    @Test
    void aNanMetricIsAnErrorNotJson() throws Exception {
        var e = assertThrows(IllegalStateException.class,
                () -> ResultsWriter.save(tmp, "eval", Map.of("eval_loss", Double.NaN, "eval_examples", 3)));
        assertTrue(e.getMessage().contains("the eval metric 'eval_loss' is NaN"), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("eval_results.json")));
    }

    @Test
    void anAdapterConfigRankThatContradictsTheTensorsSaysSo() throws Exception {
        Path base = ModelExportTest.baseDir(tmp, LoraTesting.LLAMA);
        Path adapter = tmp.resolve("adapter");
        try (DecoderModel model = DecoderModel.load(base, null);
                LoraAdapters lora = LoraAdapters.attach(model, new LoraSpec(4, 8, 0, List.of("all"), false,
                        List.of()), 1)) {
            lora.save(adapter, base.toString());
        }
        Path cfg = adapter.resolve("adapter_config.json");
        Files.writeString(cfg, Files.readString(cfg).replaceFirst("\"r\"\\s*:\\s*4", "\"r\": 8"));
        var e = assertThrows(AdapterFormatException.class,
                () -> ModelExport.export(base, List.of(adapter), tmp.resolve("x"), 1_000_000, null, m -> { }));
        assertTrue(e.getMessage().contains("says r=8 but '") && e.getMessage().contains("has rank 4"),
                e.getMessage());
    }

    @Test
    void aFullDiskNamesTheFileBeingWritten() throws Exception {
        Path target = tmp.resolve("trainer_state.json");
        var e = assertThrows(java.io.IOException.class, () -> io.sftnative.files.AtomicFiles.write(target, out -> {
            throw new java.io.IOException("No space left on device");
        }));
        assertTrue(e.getMessage().startsWith("cannot write " + target + ": No space left on device (the disk is"
                + " full"), e.getMessage());
        assertFalse(Files.list(tmp).findAny().isPresent(), "no temporary file left");
    }
}
