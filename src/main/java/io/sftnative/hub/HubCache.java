package io.sftnative.hub;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * Finds a Hugging Face Hub repository in the local hub cache the way huggingface_hub / transformers do offline: the
 * cache directory is {@code cache_dir}, else {@code HF_HUB_CACHE} (or the older {@code HUGGINGFACE_HUB_CACHE}), else
 * {@code HF_HOME/hub}, else {@code XDG_CACHE_HOME/huggingface/hub}, else {@code ~/.cache/huggingface/hub}; a repo
 * {@code Org/Name} of type model lives in {@code models--Org--Name}, a dataset in {@code datasets--Org--Name}; the
 * revision (default {@code main}) is a commit hash or a name whose commit is in {@code refs/<revision>}; the files
 * are in {@code snapshots/<commit>/}.
 *
 * <p>When the cache lacks a repository (or, for a branch or tag, the hub has a newer commit) and
 * {@code HF_HUB_OFFLINE} is not set, {@link HubDownload} fetches it into this same layout. With
 * {@code HF_HUB_OFFLINE=1} nothing touches the network: a repository or file that is not cached is reported with the
 * command that fetches it.
 */
public final class HubCache {
    private HubCache() {}

    /** huggingface_hub's validate_repo_id: an optional namespace, a name of word characters, '-', '.'. */
    private static final Pattern REPO_ID = Pattern.compile("^([\\w\\-.]+/)?[\\w\\-.]+$");
    private static final Pattern COMMIT = Pattern.compile("^[0-9a-f]{40}$");

    /**
     * The hub cache directory for this environment (see the class comment for the order); the JVM property
     * {@code -Dsft.hf.hub.cache} comes right after {@code cache_dir}, as {@code -Dsft.cache.dir} does for the
     * tokenized cache.
     */
    public static Path cacheDir(String cacheDirKey, Map<String, String> env) {
        if (cacheDirKey != null && !cacheDirKey.isBlank()) {
            return Path.of(cacheDirKey);
        }
        String prop = System.getProperty("sft.hf.hub.cache");
        if (prop != null && !prop.isBlank()) {
            return Path.of(prop);
        }
        for (String var : new String[] {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"}) {
            String v = env.get(var);
            if (v != null && !v.isBlank()) {
                return Path.of(v);
            }
        }
        String home = env.get("HF_HOME");
        if (home != null && !home.isBlank()) {
            return Path.of(home, "hub");
        }
        String xdg = env.get("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("huggingface").resolve("hub");
    }

    /** Whether a string can name a hub repository (and so is looked up when it is no local path). */
    public static boolean isRepoId(String s) {
        return s != null && s.length() <= 96 && REPO_ID.matcher(s).matches() && !s.contains("--")
                && !s.contains("..") && !s.endsWith(".git");
    }

    /**
     * A model directory: {@code nameOrPath} itself when it is a local directory (or no repo id), else its snapshot in
     * the hub cache, downloaded first unless offline (see the class comment); offline and not cached:
     * {@code nameOrPath} unchanged (the caller reports it with {@link #missing}).
     */
    public static String resolveModel(String nameOrPath, String revision, String cacheDirKey) {
        return resolveModel(HubEnv.current(cacheDirKey), nameOrPath, revision, System.err::println);
    }

    public static String resolveModel(HubEnv env, String nameOrPath, String revision,
            java.util.function.Consumer<String> log) {
        if (nameOrPath == null || Files.isDirectory(Path.of(nameOrPath)) || !isRepoId(nameOrPath)) {
            return nameOrPath;
        }
        String rev = revision == null || revision.isBlank() ? "main" : revision;
        Path snap = snapshot(env.cache(), "model", nameOrPath, rev);
        boolean complete = snap != null && missingFiles(snap).isEmpty();
        if (!env.offline() && !(complete && COMMIT.matcher(rev).matches())) {
            // online: a branch or tag is re-resolved on the hub as transformers does; present files are not fetched
            snap = new HubDownload(env, log).snapshot("model", nameOrPath, rev, RepoListing.MODEL);
        }
        if (snap == null) {
            return nameOrPath;
        }
        List<String> gone = missingFiles(snap);
        if (!gone.isEmpty()) {
            throw new HubException("the cached snapshot " + snap + " of " + nameOrPath + " lacks " + gone
                    + (env.offline() ? ": HF_HUB_OFFLINE is set, so sft-native does not download them; unset it, or"
                    + " run `" + command(nameOrPath, "model", rev) + "` with the same HF_HOME / HF_HUB_CACHE"
                    : " (the hub's listing does not have them either)"));
        }
        return snap.toString();
    }

    /**
     * The files a cached model or adapter snapshot needs and does not have (a broken symlink counts as missing):
     * {@code config.json} or {@code adapter_config.json}, and every shard its safetensors index names.
     */
    public static List<String> missingFiles(Path snap) {
        List<String> out = new ArrayList<>();
        if (!Files.exists(snap.resolve("config.json")) && !Files.exists(snap.resolve("adapter_config.json"))) {
            out.add("config.json");
        }
        Path index = snap.resolve("model.safetensors.index.json");
        if (Files.exists(index)) {
            try {
                Set<String> shards = new TreeSet<>();
                new com.fasterxml.jackson.databind.ObjectMapper().readTree(Files.readString(index))
                        .path("weight_map").forEach(v -> shards.add(v.asText()));
                shards.stream().filter(f -> !Files.exists(snap.resolve(f))).forEach(out::add);
            } catch (IOException e) {
                out.add("model.safetensors.index.json (unreadable: " + e.getMessage() + ")");
            }
        }
        return out;
    }

    /**
     * A dataset repository's snapshot ({@code hf_hub_url}, revision main): the cached one offline, else downloaded
     * (every file, as {@code hf download --repo-type dataset}); null when offline and not cached.
     */
    public static Path resolveDataset(HubEnv env, String repoId, java.util.function.Consumer<String> log) {
        Path snap = snapshot(env.cache(), "dataset", repoId, "main");
        if (env.offline()) {
            return snap;
        }
        return new HubDownload(env, log).snapshot("dataset", repoId, "main", HubDownload.ALL);
    }

    /**
     * {@code <cache>/<type>s--Org--Name/snapshots/<commit>} for a revision (commit hash, or a name in refs/), or null
     * when the cache does not hold it.
     */
    public static Path snapshot(Path cache, String type, String repoId, String revision) {
        Path repo = cache.resolve(folder(type, repoId));
        String rev = revision == null || revision.isBlank() ? "main" : revision;
        String commit = rev;
        if (!COMMIT.matcher(rev).matches()) {
            Path ref = repo.resolve("refs").resolve(rev);
            if (!Files.isRegularFile(ref)) {
                return null;
            }
            try {
                commit = Files.readString(ref, StandardCharsets.UTF_8).strip();
            } catch (IOException e) {
                return null;
            }
        }
        Path snap = repo.resolve("snapshots").resolve(commit);
        return Files.isDirectory(snap) ? snap : null;
    }

    /** {@code models--Org--Name} / {@code datasets--Org--Name}. */
    public static String folder(String type, String repoId) {
        return type + "s--" + repoId.replace("/", "--");
    }

    /** The message for a repository neither local nor cached: where we looked, what to run. */
    public static String missing(String what, String repoId, String type, String revision, String cacheDirKey) {
        HubEnv env = HubEnv.current(cacheDirKey);
        String rev = revision == null || revision.isBlank() ? "main" : revision;
        return what + " '" + repoId + "' is " + (type.equals("dataset") ? "not downloaded" : "not a local directory")
                + ", and the Hugging Face cache " + env.cache()
                + " has no " + folder(type, repoId) + "/snapshots" + (revision == null ? "" : " for revision " + rev)
                + ". " + (env.offline() ? "HF_HUB_OFFLINE is set, so sft-native does not download it: unset"
                + " HF_HUB_OFFLINE to download it into that cache, or run `" : "Run `")
                + command(repoId, type, rev) + "` (or huggingface-cli download) with the same"
                + " HF_HOME / HF_HUB_CACHE, or set the key to a local directory";
    }

    private static String command(String repoId, String type, String rev) {
        return "hf download " + (type.equals("dataset") ? "--repo-type dataset " : "") + repoId
                + (rev.equals("main") ? "" : " --revision " + rev);
    }
}
