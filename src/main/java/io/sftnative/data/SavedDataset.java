package io.sftnative.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * A directory written by HF datasets' {@code save_to_disk} ({@code load_from_disk}'s input): a {@code Dataset}
 * ({@code state.json} listing its {@code data-0000i-of-0000N.arrow} files, Arrow IPC stream format, plus
 * {@code dataset_info.json}) or a {@code DatasetDict} ({@code dataset_dict.json} and one such directory per split,
 * of which the {@code train} split is read).
 */
final class SavedDataset {
    private SavedDataset() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The Arrow files of a save_to_disk directory in order, or null when {@code dir} is not one. */
    static List<Path> arrowFiles(Path dir, String name) {
        Path dict = dir.resolve("dataset_dict.json");
        if (Files.isRegularFile(dict)) {
            JsonNode splits = read(dict, name).path("splits");
            List<String> names = new ArrayList<>();
            splits.forEach(s -> names.add(s.asText()));
            if (!names.contains("train") || !Files.isDirectory(dir.resolve("train"))) {
                throw new DataException("dataset '" + name + "': " + dir + " is a DatasetDict saved with save_to_disk"
                        + " and has no train split (splits: " + names + "); point file_name at the split's"
                        + " directory", dict, -1, name);
            }
            List<Path> train = arrowFiles(dir.resolve("train"), name);
            if (train == null) {
                throw new DataException("dataset '" + name + "': " + dir.resolve("train") + " has no state.json"
                        + " (not a save_to_disk split directory)", dir.resolve("train"), -1, name);
            }
            return train;
        }
        Path state = dir.resolve("state.json");
        if (!Files.isRegularFile(state) || !Files.isRegularFile(dir.resolve("dataset_info.json"))) {
            return null;
        }
        JsonNode files = read(state, name).path("_data_files");
        if (!files.isArray() || files.isEmpty()) {
            throw new DataException("dataset '" + name + "': " + state + " lists no _data_files (not written by"
                    + " save_to_disk?)", state, -1, name);
        }
        List<Path> out = new ArrayList<>();
        for (JsonNode f : files) {
            Path p = dir.resolve(f.path("filename").asText(""));
            if (!f.path("filename").isTextual() || !p.normalize().startsWith(dir.normalize())
                    || !Files.isRegularFile(p)) {
                throw new DataException("dataset '" + name + "': " + state + " lists the data file "
                        + f.path("filename") + ", which is not in " + dir + " (copied only in part?)", state, -1,
                        name);
            }
            out.add(p);
        }
        return out;
    }

    private static JsonNode read(Path f, String name) {
        try {
            return JSON.readTree(f.toFile());
        } catch (IOException e) {
            throw new DataException("dataset '" + name + "': cannot read " + f + ": " + e.getMessage(), f, -1, name);
        }
    }
}
