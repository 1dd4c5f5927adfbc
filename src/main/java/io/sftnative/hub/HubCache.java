package io.sftnative.hub;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Finds a Hugging Face Hub repository in the local hub cache the way huggingface_hub / transformers do offline: the
 * cache directory is {@code cache_dir}, else {@code HF_HUB_CACHE} (or the older {@code HUGGINGFACE_HUB_CACHE}), else
 * {@code HF_HOME/hub}, else {@code XDG_CACHE_HOME/huggingface/hub}, else {@code ~/.cache/huggingface/hub}; a repo
 * {@code Org/Name} of type model lives in {@code models--Org--Name}, a dataset in {@code datasets--Org--Name}; the
 * revision (default {@code main}) is a commit hash or a name whose commit is in {@code refs/<revision>}; the files
 * are in {@code snapshots/<commit>/}.
 *
 * <p>sft-native never downloads: a repository that is not in the cache is reported with the command that fetches
 * it, so {@code HF_HUB_OFFLINE=1} holds by construction.
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
     * the hub cache when there is one, else {@code nameOrPath} unchanged (the caller reports it with {@link #missing}).
     */
    public static String resolveModel(String nameOrPath, String revision, String cacheDirKey) {
        if (nameOrPath == null || Files.isDirectory(Path.of(nameOrPath)) || !isRepoId(nameOrPath)) {
            return nameOrPath;
        }
        Path snap = snapshot(cacheDir(cacheDirKey, System.getenv()), "model", nameOrPath, revision);
        return snap == null ? nameOrPath : snap.toString();
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

    /** The message for a repository that is neither a local directory nor in the cache: where we looked, what to run. */
    public static String missing(String what, String repoId, String type, String revision, String cacheDirKey) {
        Path cache = cacheDir(cacheDirKey, System.getenv());
        String rev = revision == null || revision.isBlank() ? "main" : revision;
        return what + " '" + repoId + "' is " + (type.equals("dataset") ? "not downloaded" : "not a local directory")
                + ", and the Hugging Face cache " + cache
                + " has no " + folder(type, repoId) + "/snapshots" + (revision == null ? "" : " for revision " + rev)
                + ". sft-native does not"
                + " download (online download is not implemented in sft-native): run `hf download "
                + (type.equals("dataset") ? "--repo-type dataset " : "") + repoId
                + (rev.equals("main") ? "" : " --revision " + rev) + "` (or huggingface-cli download) with the same"
                + " HF_HOME / HF_HUB_CACHE, or set the key to a local directory";
    }
}
