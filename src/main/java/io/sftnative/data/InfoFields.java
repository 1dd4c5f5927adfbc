package io.sftnative.data;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

import com.fasterxml.jackson.databind.JsonNode;
import io.sftnative.config.NearestName;

/**
 * Every field of a {@code dataset_info.json} entry (LLaMA-Factory's DatasetAttr) is either used or refused by name:
 * a misspelt field, a hub source, preference data or a split other than train stop the run with the field named,
 * instead of training on something the user did not ask for.
 */
final class InfoFields {
    private InfoFields() {}

    static final Set<String> TOP = Set.of("file_name", "hf_hub_url", "ms_hub_url", "om_hub_url", "script_url",
            "cloud_file_name", "formatting", "ranking", "subset", "split", "folder", "num_samples", "columns", "tags");
    static final Set<String> COLUMNS = Set.of("prompt", "query", "response", "history", "messages", "system", "tools",
            "images", "videos", "audios", "chosen", "rejected", "kto_tag");
    static final Set<String> TAGS = Set.of("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag",
            "function_tag", "system_tag");
    private static final List<String> HUB = List.of("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url",
            "cloud_file_name");

    /** Refuses unknown fields, preference data and splits other than train; notes fields that have no effect. */
    static void check(String name, JsonNode e, Path infoFile, String where, Consumer<String> log) {
        if (!e.isObject()) {
            throw new DataException(where + " must be a JSON object", infoFile, -1, name);
        }
        known(e, TOP, name, "", infoFile, where);
        known(e.path("columns"), COLUMNS, name, "columns.", infoFile, where);
        known(e.path("tags"), TAGS, name, "tags.", infoFile, where);
        if (e.path("ranking").asBoolean(false) || e.path("columns").has("chosen")
                || e.path("columns").has("rejected")) {
            throw new DataException(where + " is pairwise preference data (ranking/chosen/rejected): LLaMA-Factory"
                    + " reads it only in stage rm (reward modeling) and dpo; sft-native trains sft and pt, so use an"
                    + " SFT dataset", infoFile, -1, name + ".ranking");
        }
        if (e.path("columns").has("kto_tag")) {
            throw new DataException(where + " has columns.kto_tag: it is data for stage kto (LLaMA-Factory); sft-native"
                    + " trains sft and pt", infoFile, -1, name + ".columns.kto_tag");
        }
        JsonNode split = e.get("split");
        if (split != null && !split.isNull() && !"train".equals(split.asText())) {
            throw new DataException(where + ": split '" + split.asText() + "' — a local file_name dataset has only"
                    + " the split train (LLaMA-Factory's datasets.load_dataset refuses other names; slicing such as"
                    + " train[:10%] is not implemented in sft-native: use num_samples or max_samples)", infoFile, -1,
                    name + ".split");
        }
        if (hubSource(e) == null) {
            for (String f : List.of("subset", "folder")) {
                if (e.has(f) && !e.get(f).isNull()) {
                    log.accept("note: " + where + " sets '" + f + "', which only selects within a hub dataset"
                            + " (hf_hub_url); for a file_name dataset it has no effect, as in LLaMA-Factory");
                }
            }
        }
    }

    /** The hub/script/cloud field of an entry, or null for a local file. */
    static String hubSource(JsonNode e) {
        for (String h : HUB) {
            if (e.has(h)) {
                return h;
            }
        }
        return null;
    }

    static void refuseHub(String name, JsonNode e, Path infoFile, String where) {
        String hub = hubSource(e);
        if (hub == null) {
            throw new DataException(where + " has no file_name (nor hf_hub_url): set file_name to the data file,"
                    + " relative to dataset_dir", infoFile, -1, name);
        }
        throw new DataException(where + " loads from '" + hub + "' (" + e.get(hub).asText() + "): not implemented in"
                + " sft-native: " + hub + " (LLaMA-Factory prefers it over file_name). Download the data (e.g. `hf"
                + " download --repo-type dataset " + e.get(hub).asText() + "`), then replace " + hub + " with"
                + " file_name pointing at the .json/.jsonl/.txt file", infoFile, -1, name + "." + hub);
    }

    /** {@code num_samples}: a positive whole number, or null when absent. */
    static Integer numSamples(String name, JsonNode e, Path infoFile, String where) {
        JsonNode n = e.get("num_samples");
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.canConvertToInt() || !n.isIntegralNumber() || n.asInt() < 1) {
            throw new DataException(where + ": num_samples must be a whole number >= 1, got " + n, infoFile, -1,
                    name + ".num_samples");
        }
        return n.asInt();
    }

    private static void known(JsonNode obj, Set<String> allowed, String name, String prefix, Path infoFile,
            String where) {
        if (!obj.isObject()) {
            return;
        }
        List<String> bad = new ArrayList<>();
        obj.fieldNames().forEachRemaining(f -> {
            if (!allowed.contains(f)) {
                bad.add(f);
            }
        });
        if (!bad.isEmpty()) {
            String f = bad.get(0);
            String near = NearestName.of(f, allowed, Math.max(2, f.length() / 3));
            throw new DataException(where + " has the unknown field '" + prefix + f + "'"
                    + (near == null ? "" : " (did you mean '" + prefix + near + "'?)") + "; LLaMA-Factory's fields"
                    + " are " + String.join(", ", allowed.stream().sorted().toList()), infoFile, -1,
                    name + "." + prefix + f);
        }
    }
}
