package io.sftnative.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sftnative.files.AtomicFiles;
import io.sftnative.template.Template;
import io.sftnative.tokenizer.Tokenizer;

/**
 * LLaMA-Factory's {@code tokenized_path}: when the directory is missing or empty, the preprocessed train/eval rows
 * are saved there (then training goes on, as in LLaMA-Factory; {@code preflight} preprocesses and stops); when it
 * holds data, the rows are loaded from it and the raw data and other data keys are not read. A directory written
 * with another tokenizer, template or stage is refused: its ids would not mean what this run's model expects.
 *
 * <p>Layout: {@code train.sftds}, {@code validation.sftds} or {@code validation_NAME.sftds} (the tokenized cache
 * format) and {@value #META}, which records what the rows depend on.
 */
final class TokenizedDir {
    static final String META = "sft_native_tokenized.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private TokenizedDir() {}

    /** LLaMA-Factory's has_tokenized_data: an existing, non-empty directory. */
    static boolean hasData(Path dir) {
        if (!Files.isDirectory(dir)) {
            return false;
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.findAny().isPresent();
        } catch (IOException e) {
            throw new DataException("cannot list tokenized_path " + dir + ": " + e.getMessage(), dir, -1,
                    "tokenized_path");
        }
    }

    /** What a row depends on besides the raw data (the tokenizer, the template, the stage). */
    private static ObjectNode identity(DatasetLoader.Options o, Tokenizer tok, Template template) {
        ObjectNode n = JSON.createObjectNode();
        n.put("tokenizer", tok == null ? "none" : tok.fingerprint());
        n.put("template", template == null || o.pretrain() ? "none" : template.fingerprint());
        n.put("stage", o.stage());
        return n;
    }

    /** Saves the stores of a freshly preprocessed run into {@code dir} (published atomically). */
    static void save(Path dir, DatasetLoader.Options o, Tokenizer tok, Template template, TokenizedStore train,
            Map<String, TokenizedStore> evals, Consumer<String> log) {
        try {
            Path staged = AtomicFiles.stagingDirectory(dir);
            ObjectNode meta = JSON.createObjectNode();
            meta.put("format", "sft-native tokenized dataset");
            meta.put("version", TokenizedStore.VERSION);
            meta.setAll(identity(o, tok, template));
            meta.put("cutoff_len", o.cutoffLen());
            meta.put("packing", o.packing());
            meta.put("neat_packing", o.neatPacking());
            meta.put("val_size", o.valSize());
            meta.put("seed", o.seed());
            meta.put("datasets", String.join(",", o.datasets()));
            if (train != null) {
                link(train.file(), staged.resolve("train.sftds"));
                meta.put("train", "train.sftds");
            }
            ArrayNode ev = meta.putArray("eval");
            for (Map.Entry<String, TokenizedStore> e : evals.entrySet()) {
                String file = e.getKey() + ".sftds";
                link(e.getValue().file(), staged.resolve(file));
                ev.addObject().put("name", e.getKey()).put("file", file);
            }
            AtomicFiles.writeString(staged.resolve(META), JSON.writerWithDefaultPrettyPrinter()
                    .writeValueAsString(meta));
            if (Files.isDirectory(dir)) {
                Files.delete(dir); // empty (hasData was false); publishDirectory moves the staged one in its place
            }
            AtomicFiles.publishDirectory(staged, dir);
        } catch (IOException e) {
            throw new DataException("cannot save the tokenized dataset to tokenized_path " + dir + ": "
                    + e.getMessage(), dir, -1, "tokenized_path");
        }
        log.accept("tokenized dataset saved at " + dir + "; later runs with tokenized_path: " + dir
                + " load it and skip the raw data");
    }

    private static void link(Path from, Path to) throws IOException {
        try {
            Files.createLink(to, from); // same file system: no copy
        } catch (IOException | UnsupportedOperationException e) {
            Files.copy(from, to);
        }
    }

    /** The examples saved in {@code dir}, after checking they were written for this tokenizer/template/stage. */
    static LoadedData load(Path dir, DatasetLoader.Options o, Tokenizer tok, Template template,
            Consumer<String> log) {
        Path metaFile = dir.resolve(META);
        if (!Files.exists(metaFile)) {
            String what = Files.exists(dir.resolve("dataset_dict.json")) || Files.exists(dir.resolve("state.json"))
                    ? "a dataset saved by LLaMA-Factory / HF datasets (Arrow): not implemented in sft-native:"
                    + " reading HF datasets' save_to_disk output"
                    : "not a tokenized dataset written by sft-native (no " + META + ")";
            throw new DataException("tokenized_path " + dir + " is " + what + ". Point tokenized_path to a new"
                    + " (missing or empty) directory: the first run fills it", dir, -1, "tokenized_path");
        }
        JsonNode meta;
        try {
            meta = JSON.readTree(metaFile.toFile());
        } catch (IOException e) {
            throw new DataException("cannot read " + metaFile + ": " + e.getMessage(), metaFile, -1,
                    "tokenized_path");
        }
        ObjectNode want = identity(o, tok, template);
        for (String key : List.of("stage", "tokenizer", "template")) {
            if (!want.get(key).asText().equals(meta.path(key).asText())) {
                throw new DataException("tokenized_path " + dir + " was written with another " + key + " ("
                        + meta.path(key).asText() + ", this run: " + want.get(key).asText() + "): its token ids do"
                        + " not fit this run. Use a new tokenized_path (or delete this one) to preprocess again",
                        dir, -1, "tokenized_path");
            }
        }
        log.accept("loading the tokenized dataset from " + dir + " (as LLaMA-Factory: dataset, eval_dataset,"
                + " cutoff_len and the other data keys are not read again; it was made with cutoff_len "
                + meta.path("cutoff_len").asInt() + ", packing " + meta.path("packing").asBoolean() + ")");
        List<TokenizedStore> owned = new ArrayList<>();
        try {
            TokenizedStore train = meta.hasNonNull("train") ? open(dir, meta.get("train").asText(), owned) : null;
            Map<String, ExampleSet> evalSets = new LinkedHashMap<>();
            ExampleSet eval = null;
            PreprocessReport evalReport = null;
            for (JsonNode e : meta.path("eval")) {
                TokenizedStore s = open(dir, e.get("file").asText(), owned);
                ExampleSet set = new ExampleSet(s, DatasetLoader.range(s.size()));
                if (eval == null) {
                    eval = set;
                    evalReport = PreprocessReport.fromJson(s.reportJson());
                }
                String name = e.get("name").asText();
                if (name.startsWith("validation_")) {
                    evalSets.put(name.substring("validation_".length()), set);
                }
            }
            TokenizedStore any = train != null ? train : owned.get(0);
            ExampleSet trainSet;
            double valSize = meta.path("val_size").asDouble(0);
            if (train == null) {
                trainSet = new ExampleSet(any, new int[0]);
            } else if (eval == null && valSize > 1e-6) {
                int[][] split = DatasetLoader.split(train.size(), valSize, meta.path("seed").asLong());
                trainSet = new ExampleSet(train, split[0]);
                eval = new ExampleSet(train, split[1]);
            } else {
                trainSet = new ExampleSet(train, DatasetLoader.range(train.size()));
            }
            if (eval == null) {
                eval = new ExampleSet(any, new int[0]);
            }
            PreprocessReport trainReport = train == null ? new PreprocessReport.Builder(o.cutoffLen()).build()
                    : PreprocessReport.fromJson(train.reportJson());
            List<TokenizedStore> close = List.copyOf(owned);
            return new LoadedData(trainSet, eval, trainReport, evalReport, any.padId(), any.neat(), () -> {
                for (TokenizedStore s : close) {
                    s.close();
                }
            }, evalSets);
        } catch (IOException | RuntimeException e) {
            owned.forEach(TokenizedStore::close);
            if (e instanceof DataException de) {
                throw de;
            }
            throw new DataException("tokenized_path " + dir + " is unreadable (" + e.getMessage() + "): use a new"
                    + " tokenized_path to preprocess again", dir, -1, "tokenized_path");
        }
    }

    private static TokenizedStore open(Path dir, String file, List<TokenizedStore> owned) throws IOException {
        TokenizedStore s = TokenizedStore.open(dir.resolve(file));
        owned.add(s);
        return s;
    }
}
