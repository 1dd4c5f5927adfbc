package io.sftnative.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.api.SftTrainer;
import io.sftnative.api.StepEvent;
import io.sftnative.api.TrainResult;
import io.sftnative.api.TrainingListener;
import io.sftnative.api.TrainingRun;
import io.sftnative.loss.CausalLmLoss;
import io.sftnative.model.DecoderModel;
import io.sftnative.model.Generation;
import io.sftnative.model.GenerationOptions;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.testing.TempDatasetCache;
import io.sftnative.torch.DeviceUnavailableException;
import io.sftnative.torch.Devices;
import io.sftnative.torch.TorchRuntime;
import io.sftnative.testing.GoldenData;

/**
 * The Java training path on a device (issue 19's test profile): golden parity, LoRA / QLoRA / full training with
 * gradient checkpointing and the fused cross-entropy against the same run on the CPU, bf16 autocast, greedy
 * generation, exact resume on the same device and the CUDA generator state in checkpoints.
 *
 * <p>Tagged {@code gpu}: excluded from {@code mvn test}, run by {@code mvn test -Pgpu-tests} (the device under
 * test is {@code -Dsft.test.device}, default {@code cuda}; skipped with the reason when it cannot be used) or on a
 * GPU machine without Maven by {@code tools/gpu/device_check.sh}. {@code -Dsft.test.device=cpu} runs the same
 * checks on the CPU build (device and reference are then the same device: a check of the test itself).
 */
@Tag("gpu")
@ExtendWith(TempDatasetCache.class)
class DeviceTrainingTest {
    static final Path GOLDEN_MODEL = Path.of("src/test/resources/golden/model");
    static final Path GOLDEN_TRAIN = Path.of("src/test/resources/golden/train");
    /** The CPU golden tests' fp32 tolerances (GoldenParityTest): the issue asks for the same on the GPU. */
    static final double LOGITS_TOL = 1e-5;
    static final double LOSS_TOL = 1e-6;
    static final double GRAD_TOL = 1e-4;
    /**
     * Per-step losses of a 12-step fp32 run on the device vs the CPU. Step 1 differs only by reduction order
     * (~1e-6 relative); later steps carry that through 11 AdamW updates at lr 1e-2. Not yet confirmed on a GPU.
     */
    static final double TRAIN_TOL = 1e-4;
    /** bf16 autocast vs the fp32 CPU run: 8-bit significands, 2^-8 per rounding through 2 layers, 12 steps. */
    static final double BF16_TRAIN_TOL = 5e-2;

    static String deviceName;
    static Device device;

    @TempDir
    Path dir;

    @BeforeAll
    static void selectDevice() {
        TorchRuntime.boot(2);
        String env = System.getenv("SFT_TEST_DEVICE");
        deviceName = System.getProperty("sft.test.device", env != null ? env : "cuda");
        try {
            device = TorchRuntime.device(deviceName);
        } catch (DeviceUnavailableException e) {
            assumeTrue(false, "skipped: device '" + deviceName + "' cannot be used here: " + e.getMessage());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama_gqa", "qwen2_tied_bf16", "qwen3_qknorm", "mistral_swa"})
    void goldenLogitsLossAndGradientsOnTheDevice(String name) throws IOException {
        Path root = GOLDEN_MODEL.resolve(name);
        JsonNode meta = new ObjectMapper().readTree(root.resolve("expected.json").toFile());
        try (DecoderModel model = DecoderModel.load(root.resolve("checkpoint"), ScalarType.Float, device);
                SafetensorsFile exp = SafetensorsFile.open(root.resolve("expected.safetensors"));
                PointerScope scope = new PointerScope()) {
            model.setRequiresGrad(true);
            Tensor ids = Devices.to(exp.view("padded.input_ids"), device); // (B, T)
            Tensor am = Devices.to(exp.view("padded.attention_mask"), device); // (B, T)
            Tensor pos = Devices.to(exp.view("padded.position_ids"), device); // (B, T)
            Tensor labels = Devices.to(exp.view("padded.labels"), device); // (B, T)
            Tensor logits = model.forward(ids, model.paddedContext(am, pos)); // (B, T, V) on the device
            Tensor masked = logits.mul(am.ne(new Scalar(0L)).unsqueeze(-1).to(ScalarType.Float));
            assertTrue(relErr(masked, exp.view("padded.logits")) <= LOGITS_TOL, name + " logits");
            Tensor loss = CausalLmLoss.mean(logits, labels);
            double ref = meta.get("cases").get("padded").get("loss").asDouble();
            assertEquals(ref, loss.item_double(), LOSS_TOL * Math.abs(ref), name + " loss");
            loss.backward();
            int grads = 0;
            for (String key : exp.names()) {
                if (key.startsWith("padded.grad.")) {
                    String param = key.substring("padded.grad.".length());
                    assertTrue(relErr(model.parameter(param).grad(), exp.view(key)) <= GRAD_TOL, name + " " + key);
                    grads++;
                }
            }
            assertTrue(grads >= 4, "gradients checked");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama_gqa", "qwen3_qknorm"})
    void greedyGenerationOnTheDeviceMatchesTheReference(String name) throws IOException {
        Path root = GOLDEN_MODEL.resolve(name);
        JsonNode gen = new ObjectMapper().readTree(root.resolve("expected.json").toFile()).get("generate");
        long[][] prompts = GoldenData.ids(gen.get("prompts"));
        try (DecoderModel model = DecoderModel.load(root.resolve("checkpoint"), ScalarType.Float, device)) {
            long[][] out = Generation.generate(model, prompts, GenerationOptions.greedy(
                    gen.get("max_new_tokens").asInt()).withPadTokenId(gen.get("pad_token_id").asLong()));
            long[][] expected = GoldenData.ids(gen.get("greedy"));
            for (int r = 0; r < prompts.length; r++) {
                assertArrayEquals(expected[r], out[r], name + " greedy row " + r);
            }
        }
    }

    @Test
    void loraMatchesTheCpuRun() throws Exception {
        compareWithCpu(run("lora").set("lora_dropout", 0.0), TRAIN_TOL);
    }

    @Test
    void qloraWithCheckpointingAndFusedLossMatchesTheCpuRun() throws Exception {
        compareWithCpu(run("lora").set("lora_dropout", 0.0).set("quantization_bit", 4)
                .set("gradient_checkpointing", true).set("fused_cross_entropy", true), TRAIN_TOL);
    }

    @Test
    void fullFineTuningWithCheckpointingMatchesTheCpuRun() throws Exception {
        compareWithCpu(run("full").set("gradient_checkpointing", true).set("fused_cross_entropy", true), TRAIN_TOL);
    }

    @Test
    void bf16AutocastStaysCloseToTheFp32CpuRun() throws Exception {
        List<Double> cpu = losses(run("lora").set("lora_dropout", 0.0).set("device", "cpu"), dir.resolve("cpu"));
        List<Double> dev = losses(run("lora").set("lora_dropout", 0.0).set("bf16", true), dir.resolve("dev"));
        assertClose(cpu, dev, BF16_TRAIN_TOL, "bf16 on " + deviceName + " vs fp32 on the CPU");
    }

    /** Exact resume on the same device, with dropout: the device generator is saved and restored. */
    @Test
    void resumeOnTheDeviceIsBitExact() throws Exception {
        List<Double> whole = losses(run("lora").set("lora_dropout", 0.1), dir.resolve("a"));
        Path out = dir.resolve("b");
        List<Double> resumed = new ArrayList<>(losses(run("lora").set("lora_dropout", 0.1), out, 5));
        resumed.addAll(losses(run("lora").set("lora_dropout", 0.1), out));
        assertEquals(whole, resumed, "per-step losses after resume on " + deviceName);
        JsonNode rng = new ObjectMapper().readTree(out.resolve("checkpoint-5/rng_state.json").toFile());
        if (deviceName.startsWith("cuda")) {
            assertTrue(rng.path("torch_cuda").isTextual(), "checkpoint holds the CUDA generator: " + rng);
        }
        assertTrue(Files.exists(out.resolve("adapter_model.safetensors")));
    }

    /** The golden tiny model and its prompt-masked rows: 12 optimizer steps, batch 3 x accumulation 2. */
    private SftTrainer.Builder run(String method) {
        return SftTrainer.builder()
                .set("model_name_or_path", GOLDEN_TRAIN.resolve("sft_lora/model").toString())
                .set("dataset", GOLDEN_TRAIN.resolve("sft_lora/train.jsonl").toString())
                .set("stage", "sft").set("finetuning_type", method).set("lora_rank", 4).set("lora_target", "all")
                .set("cutoff_len", 64).set("per_device_train_batch_size", 3).set("gradient_accumulation_steps", 2)
                .set("learning_rate", 1e-2).set("num_train_epochs", 3).set("lr_scheduler_type", "cosine")
                .set("warmup_steps", 2).set("logging_steps", 1).set("save_steps", 3).set("seed", 5)
                .set("preprocessing_num_workers", 1).set("device", deviceName);
    }

    private void compareWithCpu(SftTrainer.Builder b, double tol) throws Exception {
        List<Double> dev = losses(b, dir.resolve("dev"));
        List<Double> cpu = losses(b.set("device", "cpu"), dir.resolve("cpu"));
        assertEquals(12, dev.size());
        assertClose(cpu, dev, tol, deviceName + " vs cpu");
    }

    private static void assertClose(List<Double> want, List<Double> got, double rel, String what) {
        assertEquals(want.size(), got.size(), what + ": steps");
        for (int i = 0; i < want.size(); i++) {
            assertTrue(Double.isFinite(got.get(i)), what + ": step " + (i + 1) + " loss " + got.get(i));
            assertEquals(want.get(i), got.get(i), rel * Math.abs(want.get(i)), what + ": step " + (i + 1));
        }
    }

    private static List<Double> losses(SftTrainer.Builder b, Path out) throws Exception {
        return losses(b, out, -1);
    }

    /** Per-step losses of a run into {@code out}, cancelled after {@code cancelAt} (-1 = run to the end). */
    private static List<Double> losses(SftTrainer.Builder b, Path out, int cancelAt) throws Exception {
        List<Double> losses = new ArrayList<>();
        TrainingRun[] handle = new TrainingRun[1];
        b.set("output_dir", out.toString()).listener(new TrainingListener() {
            @Override
            public void onStep(StepEvent e) {
                losses.add(e.loss());
                if (e.step() == cancelAt) {
                    handle[0].cancel();
                }
            }
        });
        try (TrainingRun run = b.build().start()) {
            handle[0] = run;
            TrainResult r = run.await();
            assertEquals(cancelAt < 0 ? TrainResult.Status.COMPLETED : TrainResult.Status.CANCELLED, r.status());
        }
        return losses;
    }

    /** max |got - want| / max |want|, on the host. */
    private static double relErr(Tensor got, Tensor want) {
        Tensor g = Devices.toHost(got).to(ScalarType.Double);
        Tensor w = want.to(ScalarType.Double);
        return g.sub(w).abs().max().item_double() / Math.max(1e-30, w.abs().max().item_double());
    }
}
