package io.sftnative.distributed;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

import io.sftnative.checkpoint.TrainingCheckpoint;
import io.sftnative.files.AtomicFiles;
import io.sftnative.model.FiniteCheck;
import io.sftnative.model.safetensors.SafetensorsFile;
import io.sftnative.model.safetensors.SafetensorsWriter;
import io.sftnative.optim.Optimizer;

/**
 * The optimizer state of a ZeRO run in a checkpoint: one file per rank, {@code optimizer.rank<r>-of-<N>.safetensors},
 * holding that rank's pieces ({@code <param>.exp_avg}, {@code <param>.exp_avg_sq}, 1-d, and {@code <param>.step})
 * with each piece's offset in its parameter in the metadata ({@code <param>.offset}). The checkpoint's own
 * {@code optimizer.safetensors} then holds only the tensor {@code zero.world_size}, so a reader that does not know
 * the layout fails instead of silently starting with fresh moments.
 *
 * <p>Writing: every rank writes its file atomically into {@code output_dir/.zero-shards/checkpoint-<step>/} and waits
 * for the others; rank 0 moves the files into the checkpoint it is staging, which is published atomically as usual
 * ({@link TrainingCheckpoint}) — so ZeRO needs an {@code output_dir} every rank can write (a shared file system
 * across machines), as DeepSpeed's checkpoints do.
 *
 * <p>Reading ({@link #load}) cuts whatever this run needs out of the files, whatever world size wrote them: the
 * same world size gets its own slices back bit for bit; another world size (or plain data parallelism, or one
 * process) gets the same values re-sliced — the moments and step counts are copied exactly, nothing is recomputed.
 *
 * <p>Devices: on a GPU the moments are CUDA tensors; the writer copies each to the host to write it, and
 * {@link #read} cuts the slices in host memory, from which the optimizer's {@code loadStateDict} copies them onto
 * its parameters' device (AdamW keeps its moments beside the parameters). The values cross the device boundary as
 * plain copies, so a GPU run resumes bit-exactly as a CPU run does.
 */
@SuppressWarnings("try") // scopes are held for their side effect
public final class ZeroCheckpoint {
    static final String MARKER = "zero.world_size";
    private static final Pattern SHARD = Pattern.compile("optimizer\\.rank(\\d+)-of-(\\d+)\\.safetensors");
    private static final List<String> SUFFIXES = List.of(".exp_avg", ".exp_avg_sq", ".step");

    private ZeroCheckpoint() {}

    public static String shardName(int rank, int worldSize) {
        return "optimizer.rank" + rank + "-of-" + worldSize + ".safetensors";
    }

    static Path stagingDir(Path outputDir, long step) {
        return outputDir.resolve(".zero-shards").resolve("checkpoint-" + step);
    }

    /** Every rank, before rank 0 writes checkpoint {@code step}: stages this rank's file, then waits for all. */
    public static void stage(Path outputDir, long step, ShardedAdamW opt) throws IOException {
        ZeroPartition part = opt.partition();
        Path dir = stagingDir(outputDir, step);
        Files.createDirectories(dir);
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt");
        meta.put("content", "ZeRO stage " + opt.stage() + " AdamW state of rank " + part.rank() + " of "
                + part.worldSize() + ": <param>.exp_avg, <param>.exp_avg_sq (this rank's piece, flattened) and"
                + " <param>.step; <param>.offset = the piece's first element in the flattened parameter");
        meta.put("zero_rank", String.valueOf(part.rank()));
        meta.put("zero_world_size", String.valueOf(part.worldSize()));
        for (ZeroPartition.Piece p : part.pieces()) {
            meta.put(p.name() + ".offset", String.valueOf(p.paramOffset()));
        }
        try (PointerScope scope = new PointerScope()) { // device moments: the writer copies each to the host
            SafetensorsWriter.write(dir.resolve(shardName(part.rank(), part.worldSize())), opt.stateDict(), meta);
        }
        opt.barrier("writing the ZeRO optimizer shards of checkpoint-" + step);
    }

    /** Rank 0, while staging the checkpoint in {@code into}: moves every rank's staged file there. */
    public static void collect(Path outputDir, long step, int worldSize, Path into) throws IOException {
        Path dir = stagingDir(outputDir, step);
        for (int r = 0; r < worldSize; r++) {
            Path f = dir.resolve(shardName(r, worldSize));
            if (!Files.isRegularFile(f)) {
                throw new IOException("ZeRO: rank " + r + "'s optimizer shard " + f + " is missing: every rank must"
                        + " write to the same output_dir (a shared file system when the ranks run on several"
                        + " machines)");
            }
            Files.move(f, into.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
        }
        AtomicFiles.deleteRecursively(dir);
        try (var s = Files.list(dir.getParent())) {
            if (s.findAny().isEmpty()) {
                Files.delete(dir.getParent());
            }
        }
    }

    /** What rank 0 writes as {@code optimizer.safetensors} of a ZeRO checkpoint (the caller closes it). */
    public static Map<String, Tensor> marker(int worldSize) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put(MARKER, torch.scalar_tensor(new Scalar((double) worldSize), new TensorOptions(torch.ScalarType.Long)));
        return m;
    }

    /** Whether {@code dir} holds a ZeRO checkpoint's per-rank optimizer files. */
    public static boolean isSharded(Path dir) throws IOException {
        return !shardFiles(dir).isEmpty();
    }

    /**
     * Resume: loads the optimizer state of checkpoint {@code dir} into {@code opt}, whatever layout wrote it. A
     * plain checkpoint into a plain optimizer takes the usual path; otherwise {@link #read} cuts the slices.
     */
    public static void load(Path dir, Optimizer opt, Map<String, Tensor> trainable) throws IOException {
        boolean sharded = isSharded(dir);
        if (!(opt instanceof ShardedAdamW) && !sharded) {
            TrainingCheckpoint.loadOptimizerState(dir, opt::loadStateDict);
            return;
        }
        Map<String, Slice> wanted = new LinkedHashMap<>();
        if (opt instanceof ShardedAdamW z) {
            for (ZeroPartition.Piece p : z.partition().pieces()) {
                wanted.put(p.name(), new Slice(p.paramOffset(), p.length(), new long[] {p.length()}));
            }
        } else {
            trainable.forEach((name, t) -> wanted.put(name, new Slice(0, t.numel(), shape(t))));
        }
        try (PointerScope scope = new PointerScope()) { // host slices, copied onto the parameters' device
            opt.loadStateDict(read(dir, wanted, trainable.keySet()));
        } catch (IllegalArgumentException e) {
            throw new IOException("cannot resume the optimizer state of " + dir + ": " + e.getMessage(), e);
        }
    }

    /** Elements {@code [offset, offset + length)} of a flattened parameter, returned with {@code shape}. */
    public record Slice(long offset, long length, long[] shape) {}

    /**
     * The AdamW state of the wanted slices from a sharded or a plain checkpoint, as {@code <name>.exp_avg} (shaped
     * {@code slice.shape}), {@code .exp_avg_sq}, {@code .step}; parameters without state in the checkpoint have none
     * here; the tensors are in host memory and belong to the caller's PointerScope. Fails naming the file on a
     * missing rank file, a parameter of the checkpoint this run does not train ({@code names}), a slice not fully
     * covered, or non-finite values.
     */
    public static Map<String, Tensor> read(Path dir, Map<String, Slice> wanted, java.util.Set<String> names)
            throws IOException {
        Map<Integer, Path> files = shardFiles(dir);
        List<Path> sources = new ArrayList<>(files.values());
        if (sources.isEmpty()) {
            sources.add(dir.resolve(TrainingCheckpoint.OPTIMIZER_FILE));
        }
        Map<String, Tensor> out = new LinkedHashMap<>();
        Map<String, Long> covered = new HashMap<>();
        for (Path f : sources) {
            try (SafetensorsFile file = SafetensorsFile.open(f); PointerScope scope = new PointerScope()) {
                for (String key : file.names()) {
                    String name = paramOf(key, f);
                    if (!names.contains(name)) {
                        throw new IOException("optimizer state '" + key + "' in " + f + " names no trainable parameter"
                                + " of this run: the checkpoint was written with other trainable parameters"
                                + " (finetuning_type, lora_target, freeze settings must match the run being resumed)");
                    }
                }
                for (Map.Entry<String, Slice> e : wanted.entrySet()) {
                    String name = e.getKey();
                    if (!file.contains(name + ".exp_avg")) {
                        continue;
                    }
                    Slice w = e.getValue();
                    String off = file.metadata().get(name + ".offset");
                    long from = files.isEmpty() ? 0 : Long.parseLong(off == null ? "-1" : off);
                    if (from < 0) {
                        throw new IOException(f + " lacks the metadata " + name + ".offset: not a ZeRO shard written"
                                + " by sft-native");
                    }
                    for (String suffix : List.of(".exp_avg", ".exp_avg_sq")) {
                        Tensor src = file.view(name + suffix).reshape(-1); // (piece length,) or the whole parameter
                        long a = Math.max(from, w.offset());
                        long b = Math.min(from + src.numel(), w.offset() + w.length());
                        if (b <= a) {
                            continue;
                        }
                        Tensor dst = out.computeIfAbsent(name + suffix, k -> torch.zeros(new long[] {w.length()},
                                new TensorOptions(src.scalar_type())).retainReference()); // (length,)
                        dst.narrow(0, a - w.offset(), b - a).copy_(src.narrow(0, a - from, b - a));
                        if (suffix.equals(".exp_avg")) {
                            covered.merge(name, b - a, Long::sum);
                            out.computeIfAbsent(name + ".step", k -> file.load(name + ".step").retainReference());
                        }
                    }
                }
            }
        }
        Map<String, Tensor> shaped = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : out.entrySet()) {
            String key = e.getKey();
            String name = key.endsWith(".step") ? key.substring(0, key.length() - 5)
                    : key.endsWith(".exp_avg_sq") ? key.substring(0, key.length() - 11)
                            : key.substring(0, key.length() - 8);
            Slice w = wanted.get(name);
            if (covered.getOrDefault(name, 0L) != w.length()) {
                throw new IOException("the optimizer state of '" + name + "' in " + dir + " covers "
                        + covered.getOrDefault(name, 0L) + " of the " + w.length() + " elements this rank needs:"
                        + " a rank's file is missing or damaged");
            }
            Tensor t = key.endsWith(".step") ? e.getValue().clone() : e.getValue().view(w.shape()); // caller's scope
            String bad = FiniteCheck.problem(t);
            if (bad != null) {
                throw new IOException("optimizer state '" + key + "' in " + dir + " holds " + bad);
            }
            shaped.put(key, t);
        }
        out.values().forEach(Tensor::releaseReference); // the views and clones above keep what is needed
        return shaped;
    }

    /** The parameter a state key belongs to; fails on keys that are not AdamW's. */
    private static String paramOf(String key, Path f) throws IOException {
        for (String s : SUFFIXES) {
            if (key.endsWith(s)) {
                return key.substring(0, key.length() - s.length());
            }
        }
        throw new IOException("optimizer state '" + key + "' in " + f + " is not AdamW's (exp_avg, exp_avg_sq, step):"
                + " ZeRO resumes only AdamW state (optim: adamw_torch or adamw_torch_fused)");
    }

    /** The per-rank files by rank; fails when some rank's file is missing or the files disagree on the world size. */
    private static Map<Integer, Path> shardFiles(Path dir) throws IOException {
        Map<Integer, Path> files = new TreeMap<>();
        int world = -1;
        try (var s = Files.list(dir)) {
            for (Path p : s.toList()) {
                Matcher m = SHARD.matcher(p.getFileName().toString());
                if (m.matches()) {
                    int n = Integer.parseInt(m.group(2));
                    if (world >= 0 && n != world) {
                        throw new IOException(dir + " mixes ZeRO optimizer files of world sizes " + world + " and "
                                + n);
                    }
                    world = n;
                    files.put(Integer.parseInt(m.group(1)), p);
                }
            }
        }
        for (int r = 0; r < world; r++) {
            if (!files.containsKey(r)) {
                throw new IOException(dir.resolve(shardName(r, world)) + " is missing: the ZeRO checkpoint is"
                        + " incomplete; resume from another checkpoint-N directory");
            }
        }
        return files;
    }

    private static long[] shape(Tensor t) {
        long[] s = new long[(int) t.dim()];
        for (int i = 0; i < s.length; i++) {
            s[i] = t.size(i);
        }
        return s;
    }
}
