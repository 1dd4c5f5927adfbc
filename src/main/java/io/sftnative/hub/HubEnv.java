package io.sftnative.hub;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Where and how the hub is reached, read from the environment as huggingface_hub's {@code constants.py} reads it:
 * {@code HF_ENDPOINT} (default https://huggingface.co), {@code HF_TOKEN} (else the file {@code HF_TOKEN_PATH}, else
 * {@code $HF_HOME/token} that {@code hf auth login} writes), {@code HF_HUB_OFFLINE} (or transformers' older
 * {@code TRANSFORMERS_OFFLINE}), {@code HF_HUB_DOWNLOAD_TIMEOUT} (seconds, default 10), and the cache directory of
 * {@link HubCache#cacheDir}.
 *
 * @param endpoint the hub's base URL, without a trailing slash
 * @param token the bearer token, or null for anonymous requests
 * @param offline true when no request may be made
 * @param cache the hub cache directory
 * @param timeoutSeconds connect / response-header timeout
 */
public record HubEnv(String endpoint, String token, boolean offline, Path cache, int timeoutSeconds) {
    public static final String DEFAULT_ENDPOINT = "https://huggingface.co";
    // huggingface_hub's _is_true: "1", "ON", "YES", "TRUE" (any case)
    private static final Set<String> TRUE = Set.of("1", "on", "yes", "true");

    /** The environment of this process, with the {@code cache_dir} key (may be null). */
    public static HubEnv current(String cacheDirKey) {
        return from(System.getenv(), cacheDirKey);
    }

    public static HubEnv from(Map<String, String> env, String cacheDirKey) {
        String endpoint = env.getOrDefault("HF_ENDPOINT", "").strip();
        if (endpoint.isEmpty()) {
            endpoint = DEFAULT_ENDPOINT;
        }
        while (endpoint.endsWith("/")) {
            endpoint = endpoint.substring(0, endpoint.length() - 1);
        }
        boolean offline = isTrue(env.get("HF_HUB_OFFLINE")) || isTrue(env.get("TRANSFORMERS_OFFLINE"));
        int timeout = 10;
        String t = env.get("HF_HUB_DOWNLOAD_TIMEOUT");
        if (t != null && !t.isBlank()) {
            try {
                timeout = Math.max(1, (int) Math.ceil(Double.parseDouble(t.strip())));
            } catch (NumberFormatException e) {
                throw new HubException("HF_HUB_DOWNLOAD_TIMEOUT must be a number of seconds, got '" + t + "'");
            }
        }
        return new HubEnv(endpoint, token(env), offline, HubCache.cacheDir(cacheDirKey, env), timeout);
    }

    static boolean isTrue(String v) {
        return v != null && TRUE.contains(v.strip().toLowerCase(Locale.ROOT));
    }

    /** HF_TOKEN, else the older HUGGING_FACE_HUB_TOKEN, else the token file; blank means none. */
    private static String token(Map<String, String> env) {
        for (String var : new String[] {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}) {
            String v = env.get(var);
            if (v != null && !v.isBlank()) {
                return v.strip();
            }
        }
        String path = env.get("HF_TOKEN_PATH");
        Path file;
        if (path != null && !path.isBlank()) {
            file = Path.of(path);
        } else {
            String home = env.get("HF_HOME");
            String xdg = env.get("XDG_CACHE_HOME");
            file = home != null && !home.isBlank() ? Path.of(home, "token")
                    : (xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"),
                            ".cache")).resolve("huggingface").resolve("token");
        }
        try {
            if (Files.isRegularFile(file)) {
                String v = Files.readString(file, StandardCharsets.UTF_8).strip();
                return v.isEmpty() ? null : v;
            }
        } catch (IOException e) {
            return null; // an unreadable token file is as good as none: the hub's 401 says what to do
        }
        return null;
    }

    /** This environment with another cache directory (the {@code cache_dir} key). */
    public HubEnv withCache(Path dir) {
        return new HubEnv(endpoint, token, offline, dir, timeoutSeconds);
    }
}
