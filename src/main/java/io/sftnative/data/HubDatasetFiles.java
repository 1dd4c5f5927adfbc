package io.sftnative.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import io.sftnative.hub.HubCache;
import io.sftnative.hub.HubEnv;
import io.sftnative.hub.HubException;

/**
 * An {@code hf_hub_url} dataset read from the Hugging Face cache ({@code datasets--Org--Name/snapshots/...},
 * revision main; downloaded there first unless HF_HUB_OFFLINE is set): its files of the train split, found as HF
 * datasets' default data-file patterns find them (files or folders named for the split; when no file names a split,
 * every file is train), under {@code folder} when set.
 */
final class HubDatasetFiles {
    private HubDatasetFiles() {}

    private static final Set<String> DATA = Set.of("json", "jsonl", "txt", "csv", "tsv", "parquet", "arrow");
    // HF datasets: a split keyword delimited by start/end or one of "/", ".", "-", "_", " " (digits after it allowed)
    private static final String SEP = "(^|[/._\\- ])";
    private static final Pattern TRAIN = Pattern.compile(SEP + "(train|training)([/._\\- 0-9]|$)");
    private static final Pattern OTHER = Pattern.compile(SEP + "(test|testing|eval|evaluation|valid|validation|dev)"
            + "([/._\\- 0-9]|$)");

    /** The train files of the cached snapshot, or a DataException naming what is missing or unsupported. */
    static List<Path> resolve(String name, JsonNode e, Path infoFile, String where) {
        String repo = e.get("hf_hub_url").asText();
        if (e.hasNonNull("subset")) {
            throw new DataException(where + ": subset '" + e.get("subset").asText() + "' of hf_hub_url " + repo
                    + ": not implemented in sft-native: hub dataset configurations (subset). Download the"
                    + " configuration's files and point file_name at them", infoFile, -1, name + ".subset");
        }
        Path snap;
        try {
            snap = HubCache.resolveDataset(HubEnv.current(null), repo, System.err::println);
        } catch (HubException ex) {
            throw new DataException(where + ": hf_hub_url " + repo + ": " + ex.getMessage(), infoFile, -1,
                    name + ".hf_hub_url");
        }
        if (snap == null) {
            throw new DataException(where + ": " + HubCache.missing("hf_hub_url", repo, "dataset", null, null),
                    infoFile, -1, name + ".hf_hub_url");
        }
        Path root = e.hasNonNull("folder") ? snap.resolve(e.get("folder").asText()) : snap;
        List<Path> files;
        try (Stream<Path> s = Files.walk(root)) {
            files = s.filter(Files::isRegularFile).filter(f -> DATA.contains(DatasetSpec.ext(f))).sorted().toList();
        } catch (IOException ex) {
            throw new DataException(where + ": cannot list " + root + ": " + ex.getMessage(), root, -1, name);
        }
        List<Path> train = files.stream().filter(f -> TRAIN.matcher(rel(root, f)).find()).toList();
        if (train.isEmpty() && files.stream().noneMatch(f -> OTHER.matcher(rel(root, f)).find())) {
            train = files; // no file names a split: everything is train
        }
        if (train.isEmpty()) {
            throw new DataException(where + ": the cached snapshot " + root + " of " + repo + " has no train split"
                    + " files (" + files.size() + " data files)", root, -1, name);
        }
        for (Path f : train) {
            if (RecordSource.type(f) == null) {
                throw new DataException(where + ": " + f + " is ." + DatasetSpec.ext(f) + ", which LLaMA-Factory"
                        + " does not read either (json, jsonl, txt, csv, parquet and arrow are read)", f, -1,
                        name + ".hf_hub_url");
            }
        }
        return train;
    }

    private static String rel(Path root, Path f) {
        return root.relativize(f).toString().replace('\\', '/').toLowerCase(Locale.ROOT);
    }
}
