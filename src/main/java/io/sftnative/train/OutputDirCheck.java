package io.sftnative.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.sftnative.checkpoint.CheckpointDirs;
import io.sftnative.config.ConfigException;
import io.sftnative.config.SftConfig;
import io.sftnative.files.RealPaths;
import io.sftnative.lora.AdapterChain;

/**
 * Checks on {@code output_dir} made before any heavy work (data, model): it must be a directory (or creatable), and
 * a training run must not write over what it reads. Compared by real path ({@link RealPaths}), so a symbolic link
 * to the model directory is caught too:
 * <ul>
 *   <li>output_dir is the model or an adapter directory: the trained weights would replace the inputs;</li>
 *   <li>the model or an adapter lies in a {@code checkpoint-N} of output_dir: {@code overwrite_output_dir} and
 *       {@code save_total_limit} delete those directories while the run reads them.</li>
 * </ul>
 */
public final class OutputDirCheck {
    private OutputDirCheck() {}

    public static void check(SftConfig cfg) {
        Path out = Path.of(cfg.training().outputDir());
        for (Path p = out.toAbsolutePath().normalize(); p != null; p = p.getParent()) {
            if (Files.exists(p) && !Files.isDirectory(p)) {
                throw new ConfigException("output_dir " + out + (p.equals(out.toAbsolutePath().normalize())
                        ? " is a file, not a directory" : ": " + p + " is a file, not a directory")
                        + "; choose a directory for the run's checkpoints and results");
            }
        }
        if (!cfg.training().doTrain()) {
            return; // evaluation writes only its own result files
        }
        List<Path> inputs = new ArrayList<>();
        if (cfg.model().modelNameOrPath() != null) {
            inputs.add(Path.of(cfg.model().modelNameOrPath()));
        }
        inputs.addAll(AdapterChain.parse(cfg.model().adapterNameOrPath()));
        List<Path> checkpoints;
        try {
            checkpoints = CheckpointDirs.list(out);
        } catch (IOException e) {
            throw new ConfigException("cannot list output_dir " + out + ": " + e.getMessage(), e);
        }
        for (Path in : inputs) {
            if (RealPaths.same(in, out)) {
                throw new ConfigException("output_dir " + out + " is " + in + " (real path " + RealPaths.of(in)
                        + "), which this run reads: the trained weights would replace it. Choose another output_dir");
            }
            for (Path c : checkpoints) {
                if (RealPaths.within(in, c)) {
                    throw new ConfigException(in + " lies in " + c + ", a checkpoint of output_dir " + out
                            + " that overwrite_output_dir or save_total_limit may delete while the run reads it."
                            + " Copy it elsewhere or choose another output_dir");
                }
            }
        }
    }
}
