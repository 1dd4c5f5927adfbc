package io.sftnative.checkpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.Device;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sftnative.files.AtomicFiles;

/**
 * Every random state a training run needs for exact resume, stored as {@code rng_state.json} in each checkpoint
 * (HF stores the same things in {@code rng_state.pth}, which the JVM cannot read or write): the data shuffler's
 * {@link ResumableRandom#state()}, libtorch's CPU generator and, on GPU, the CUDA generator.
 *
 * @param shuffleState the data loader's {@link ResumableRandom} state
 * @param torchCpu     {@link TorchRng#cpuState()}
 * @param torchCuda    {@link TorchRng#cudaState}, null when the run is not on a GPU
 * @param rankCpu      in a data-parallel run: every rank's CPU generator, by rank (each rank draws its own dropout
 *                     masks); null in a single process
 */
public record RngState(long shuffleState, byte[] torchCpu, byte[] torchCuda, List<byte[]> rankCpu) {
    public static final String FILE_NAME = "rng_state.json";
    private static final String FORMAT = "sft-native-rng-v1";

    /** A single process's state. */
    public RngState(long shuffleState, byte[] torchCpu, byte[] torchCuda) {
        this(shuffleState, torchCpu, torchCuda, null);
    }

    /** This state with every data-parallel rank's CPU generator (index = rank). */
    public RngState withRanks(List<byte[]> ranks) {
        return new RngState(shuffleState, torchCpu, torchCuda, List.copyOf(ranks));
    }

    /**
     * The current state of libtorch's generators for a run on {@code device} (the CPU generator, and the GPU's when
     * {@code device} is one: dropout there draws from it) plus the given shuffler.
     */
    public static RngState capture(ResumableRandom shuffler, Device device) {
        return new RngState(shuffler.state(), TorchRng.cpuState(), TorchRng.cudaState(device));
    }

    /**
     * Puts libtorch's generators back for a run on {@code device} and returns the shuffler as it was. A CUDA state
     * goes into that GPU's generator; a run resumed on the CPU has no use for one (its dropout draws from the CPU
     * generator), and a GPU run resumed from a CPU checkpoint keeps its seeded generator.
     */
    public ResumableRandom restore(Device device) {
        TorchRng.setCpuState(torchCpu);
        if (torchCuda != null && device.is_cuda()) {
            TorchRng.setCudaState(device, torchCuda);
        }
        return ResumableRandom.fromState(shuffleState);
    }

    /** Writes {@code dir/rng_state.json} atomically. */
    public void write(Path dir) throws IOException {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("format", FORMAT);
        m.put("shuffle_state", shuffleState);
        m.put("torch_cpu", Base64.getEncoder().encodeToString(torchCpu));
        m.put("torch_cuda", torchCuda == null ? null : Base64.getEncoder().encodeToString(torchCuda));
        if (rankCpu != null) {
            m.put("torch_cpu_ranks", rankCpu.stream().map(b -> Base64.getEncoder().encodeToString(b)).toList());
        }
        AtomicFiles.writeString(dir.resolve(FILE_NAME), new ObjectMapper().writerWithDefaultPrettyPrinter()
                .writeValueAsString(m) + "\n");
    }

    /** Reads {@code dir/rng_state.json}. */
    public static RngState read(Path dir) throws IOException {
        Path file = dir.resolve(FILE_NAME);
        if (!Files.exists(file)) {
            throw new IOException(file + " is missing: the checkpoint cannot be resumed exactly (its data order and"
                    + " dropout would differ); resume from another checkpoint-N directory");
        }
        JsonNode n;
        try {
            n = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new IOException(file + " is not valid JSON: the checkpoint is damaged", e);
        }
        if (n == null || !FORMAT.equals(n.path("format").asText()) || !n.path("shuffle_state").canConvertToLong()
                || !n.path("torch_cpu").isTextual()) {
            throw new IOException(file + " is not an sft-native random state (" + FORMAT + ")");
        }
        try {
            byte[] cuda = n.path("torch_cuda").isTextual() ? Base64.getDecoder().decode(n.get("torch_cuda").asText())
                    : null;
            List<byte[]> ranks = null;
            if (n.path("torch_cpu_ranks").isArray()) {
                ranks = new java.util.ArrayList<>();
                for (JsonNode r : n.get("torch_cpu_ranks")) {
                    ranks.add(Base64.getDecoder().decode(r.asText()));
                }
            }
            return new RngState(n.get("shuffle_state").asLong(),
                    Base64.getDecoder().decode(n.get("torch_cpu").asText()), cuda, ranks);
        } catch (IllegalArgumentException e) {
            throw new IOException(file + " holds a damaged generator state: " + e.getMessage(), e);
        }
    }
}
