package io.sftnative.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.stream.Stream;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sftnative.config.NearestName;

/**
 * One dataset: its files and how their records map to conversations (a {@code dataset_info.json} entry, or the
 * defaults for a file given directly).
 *
 * @param name       the name from the {@code dataset} key
 * @param files      data files (.json array, .jsonl, .txt, .csv, .parquet, .arrow), read in this order
 * @param formatting alpaca, sharegpt or openai (LLaMA-Factory's three converters)
 * @param columns    record keys for each role of the data
 * @param tags       sharegpt message keys and role values
 * @param numSamples dataset_info's {@code num_samples}: draw this many records (LLaMA-Factory's seeded sampling,
 *                   {@link DatasetSampling#numSamples}), or null for every record in file order
 */
public record DatasetSpec(String name, List<Path> files, Formatting formatting, Columns columns, Tags tags,
        Integer numSamples) {

    public DatasetSpec(String name, List<Path> files, Formatting formatting, Columns columns, Tags tags) {
        this(name, files, formatting, columns, tags, null);
    }

    public enum Formatting { ALPACA, SHAREGPT, OPENAI }

    /** LLaMA-Factory's column defaults: alpaca instruction/input/output, sharegpt conversations. */
    public record Columns(String prompt, String query, String response, String history, String messages,
            String system, String tools) {
        static Columns defaults() {
            return new Columns("instruction", "input", "output", null, "conversations", null, null);
        }
    }

    /** LLaMA-Factory's sharegpt tag defaults: from/value, human/gpt/observation/function_call/system. */
    public record Tags(String roleTag, String contentTag, String userTag, String assistantTag, String observationTag,
            String functionTag, String systemTag) {
        static Tags defaults() {
            return new Tags("from", "value", "human", "gpt", "observation", "function_call", "system");
        }
    }

    public static final String INFO_FILE = "dataset_info.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    public DatasetSpec {
        files = List.copyOf(files);
    }

    /**
     * Resolves a {@code dataset} entry: a name in {@code datasetDir/dataset_info.json}, else a path to a file or
     * directory (absolute, or relative to the working directory or to {@code datasetDir}).
     */
    public static DatasetSpec resolve(String entry, Path datasetDir) {
        return resolve(entry, datasetDir, note -> {});
    }

    /** As {@link #resolve(String, Path)}; {@code log} gets notes on fields that have no effect. */
    public static DatasetSpec resolve(String entry, Path datasetDir, Consumer<String> log) {
        if (datasetDir != null && Files.exists(datasetDir) && !Files.isDirectory(datasetDir)) {
            throw new DataException("dataset_dir " + datasetDir + " is a file, not a directory: point dataset_dir to the"
                    + " directory holding dataset_info.json and the data files", datasetDir, -1, "dataset_dir");
        }
        Path infoFile = datasetDir == null ? null : datasetDir.resolve(INFO_FILE);
        JsonNode info = readInfo(infoFile);
        if (info != null && info.has(entry)) {
            return fromInfo(entry, info.get(entry), datasetDir, infoFile, log);
        }
        for (Path p : candidates(entry, datasetDir)) {
            if (Files.exists(p)) {
                return new DatasetSpec(entry, dataFiles(p, entry), Formatting.ALPACA, Columns.defaults(),
                        Tags.defaults());
            }
        }
        StringBuilder msg = new StringBuilder("unknown dataset '" + entry + "': ");
        if (info != null) {
            List<String> names = new ArrayList<>();
            info.fieldNames().forEachRemaining(names::add);
            msg.append("it is not a name in ").append(infoFile);
            String near = NearestName.of(entry, names, Math.max(2, entry.length() / 3));
            if (near != null) {
                msg.append(" (did you mean '").append(near).append("'?)");
            }
            msg.append(" and ");
        } else {
            msg.append("there is no ").append(infoFile == null ? INFO_FILE : infoFile).append(" and ");
        }
        msg.append("no file ").append(entry).append(" exists. Set dataset to a name in dataset_info.json (with"
                + " dataset_dir) or to a data file path (.json, .jsonl, .txt, .csv, .parquet, .arrow).");
        throw new DataException(msg.toString(), infoFile, -1, entry);
    }

    private static List<Path> candidates(String entry, Path datasetDir) {
        List<Path> out = new ArrayList<>();
        Path p = Path.of(entry);
        out.add(p);
        if (!p.isAbsolute() && datasetDir != null) {
            out.add(datasetDir.resolve(entry));
        }
        return out;
    }

    private static JsonNode readInfo(Path infoFile) {
        if (infoFile == null || !Files.exists(infoFile)) {
            return null;
        }
        try {
            JsonNode n = JSON.readTree(infoFile.toFile());
            if (!n.isObject()) {
                throw new DataException(infoFile + " must be a JSON object of dataset name to entry", infoFile, 1,
                        null);
            }
            return n;
        } catch (JsonProcessingException e) {
            var loc = e.getLocation();
            throw new DataException(infoFile + (loc == null ? "" : ":" + loc.getLineNr()) + ": invalid JSON: "
                    + e.getOriginalMessage(), infoFile, loc == null ? -1 : loc.getLineNr(), null);
        } catch (IOException e) {
            throw new DataException("cannot read " + infoFile + ": " + e.getMessage(), infoFile, -1, null);
        }
    }

    private static DatasetSpec fromInfo(String name, JsonNode e, Path dir, Path infoFile,
            Consumer<String> log) {
        String where = infoFile + " entry '" + name + "'";
        InfoFields.check(name, e, infoFile, where, log);
        boolean hfHub = "hf_hub_url".equals(InfoFields.hubSource(e));
        if (!hfHub && (!e.has("file_name") || InfoFields.hubSource(e) != null)) {
            InfoFields.refuseHub(name, e, infoFile, where);
        }
        for (String media : List.of("images", "videos", "audios")) {
            if (e.path("columns").has(media)) {
                throw new DataException(where + " has " + media + ": multimodal data is not supported (its text"
                        + " would be trained without the " + media + ")", infoFile, -1, name + ".columns." + media);
            }
        }
        String fmt = e.path("formatting").asText("alpaca").toLowerCase(Locale.ROOT);
        Formatting formatting = switch (fmt) {
            case "alpaca" -> Formatting.ALPACA;
            case "sharegpt" -> Formatting.SHAREGPT;
            case "openai" -> Formatting.OPENAI;
            default -> throw new DataException(where + ": formatting '" + fmt + "' must be alpaca, sharegpt or openai",
                    infoFile, -1, name + ".formatting");
        };
        JsonNode c = e.path("columns");
        Columns d = Columns.defaults();
        Columns columns = new Columns(col(c, "prompt", d.prompt()), col(c, "query", d.query()),
                col(c, "response", d.response()), col(c, "history", d.history()),
                col(c, "messages", d.messages()), col(c, "system", d.system()), col(c, "tools", d.tools()));
        if (c.has("prompt") && !c.has("query") && !c.has("response")) {
            // A text dataset ({"prompt": "text"}) has no input/output columns.
            columns = new Columns(columns.prompt(), null, null, columns.history(), columns.messages(),
                    columns.system(), columns.tools());
        }
        JsonNode t = e.path("tags");
        Tags dt = Tags.defaults();
        Tags tags = new Tags(col(t, "role_tag", dt.roleTag()), col(t, "content_tag", dt.contentTag()),
                col(t, "user_tag", dt.userTag()), col(t, "assistant_tag", dt.assistantTag()),
                col(t, "observation_tag", dt.observationTag()), col(t, "function_tag", dt.functionTag()),
                col(t, "system_tag", dt.systemTag()));
        if (hfHub) { // LLaMA-Factory prefers hf_hub_url over file_name
            return new DatasetSpec(name, HubDatasetFiles.resolve(name, e, infoFile, where), formatting, columns, tags,
                    InfoFields.numSamples(name, e, infoFile, where));
        }
        Path file = dir.resolve(e.get("file_name").asText());
        if (!Files.exists(file)) {
            throw new DataException(where + ": file " + file + " does not exist", infoFile, -1, name);
        }
        return new DatasetSpec(name, dataFiles(file, name), formatting, columns, tags,
                InfoFields.numSamples(name, e, infoFile, where));
    }

    private static String col(JsonNode n, String key, String def) {
        JsonNode v = n.path(key);
        return v.isTextual() ? v.asText() : def;
    }

    /**
     * A file, or a directory: HF datasets' {@code save_to_disk} output (its Arrow files in {@code state.json}'s
     * order; a {@code DatasetDict} directory's {@code train} split), else every data file in name order, which must
     * all be of one type (LLaMA-Factory's rule: "File types should be identical").
     */
    private static List<Path> dataFiles(Path p, String name) {
        if (!Files.isDirectory(p)) {
            checkRegular(p, name);
            checkExtension(p, name);
            return List.of(p);
        }
        List<Path> saved = SavedDataset.arrowFiles(p, name);
        if (saved != null) {
            return saved;
        }
        try (Stream<Path> s = Files.list(p)) {
            List<Path> all = s.filter(Files::isRegularFile).sorted().toList();
            List<Path> files = new ArrayList<>();
            for (Path f : all) {
                if (RecordSource.type(f) != null) {
                    files.add(f);
                } else if (ext(f).equals("tsv")) {
                    checkExtension(f, name); // refused by name, never skipped
                }
            }
            if (files.isEmpty()) {
                throw new DataException("dataset '" + name + "': directory " + p + " holds no data file (.json,"
                        + " .jsonl, .txt, .csv, .parquet, .arrow)", p, -1, name);
            }
            String type = RecordSource.type(files.get(0));
            for (Path f : files) {
                if (!type.equals(RecordSource.type(f))) {
                    throw new DataException("dataset '" + name + "': directory " + p + " mixes file types ("
                            + files.get(0).getFileName() + " is " + type + ", " + f.getFileName() + " is "
                            + RecordSource.type(f) + "); LLaMA-Factory refuses this too (\"File types should be"
                            + " identical\"): give each type its own dataset entry", p, -1, name);
                }
            }
            return files;
        } catch (IOException e) {
            throw new DataException("cannot list " + p + ": " + e.getMessage(), p, -1, name);
        }
    }

    /**
     * A named pipe, {@code <(zcat ...)} or device cannot be read twice, and the data is read more than once (cache
     * key, tokenization, progress): the second read would block forever. Refused with what to do instead.
     */
    private static void checkRegular(Path p, String name) {
        if (Files.exists(p) && !Files.isRegularFile(p)) {
            throw new DataException("dataset '" + name + "': " + p + " is not a regular file (a named pipe, process"
                    + " substitution or device?); sft-native reads data files more than once, which a pipe cannot"
                    + " serve. Write it to a file first, e.g. zcat data.jsonl.gz > data.jsonl", p, -1, name);
        }
    }

    private static void checkExtension(Path p, String name) {
        if (RecordSource.type(p) == null) {
            String e = ext(p);
            throw new DataException("dataset '" + name + "': " + p + " is not a .json, .jsonl, .txt, .csv, .parquet or"
                    + " .arrow file" + (e.equals("tsv") ? " (LLaMA-Factory does not read .tsv either: rename a"
                    + " comma-separated file to .csv, or convert it)" : " (the types LLaMA-Factory reads)"), p, -1,
                    name);
        }
    }

    static String ext(Path p) {
        String f = p.getFileName().toString();
        int dot = f.lastIndexOf('.');
        return dot < 0 ? "" : f.substring(dot + 1).toLowerCase(Locale.ROOT);
    }
}
