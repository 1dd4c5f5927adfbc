package io.sftnative.hub;

import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Objects;

/**
 * The hub's HTTP protocol as huggingface_hub speaks it: {@code resolve} URLs, HEAD for a file's metadata (following
 * only relative redirects, so an LFS file's CDN location is read from {@code Location}), GET with {@code Range},
 * the bearer token dropped when a redirect leaves the hub's host, and the hub's errors ({@code X-Error-Code})
 * turned into messages that say what to do. JDK {@link HttpClient}; redirects are followed here, not by the client.
 */
final class HubHttp {
    static final String USER_AGENT = "sft-native/0.1 (huggingface_hub-compatible)";
    private static final int MAX_REDIRECTS = 10;

    private final HubEnv env;
    private final HttpClient client;

    HubHttp(HubEnv env) {
        this.env = env;
        this.client = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER)
                .connectTimeout(Duration.ofSeconds(env.timeoutSeconds())).build();
    }

    /** A file's metadata from HEAD on its resolve URL (huggingface_hub's HfFileMetadata). */
    record FileMetadata(String commit, String etag, String location, long size) {}

    /** No connection to the hub (not an HTTP error): the caller may fall back to the cache. */
    static final class Unreachable extends HubException {
        Unreachable(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** huggingface_hub's hf_hub_url: {@code {endpoint}/[datasets/]{repo}/resolve/{revision}/{file}}. */
    String resolveUrl(String type, String repo, String revision, String filename) {
        return env.endpoint() + "/" + (type.equals("dataset") ? "datasets/" : "") + repo + "/resolve/"
                + quote(revision, false) + "/" + quote(filename, true);
    }

    /** The repository-info API for one revision: {@code /api/models/{repo}/revision/{rev}}. */
    String revisionApiUrl(String type, String repo, String revision) {
        return env.endpoint() + "/api/" + type + "s/" + repo + "/revision/" + quote(revision, false);
    }

    /** HEAD {@code url}: X-Repo-Commit, X-Linked-Etag or ETag, X-Linked-Size or Content-Length, Location. */
    FileMetadata head(String url, String what) {
        String current = url;
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            HttpRequest.Builder b = request(current, true).method("HEAD", HttpRequest.BodyPublishers.noBody())
                    .header("Accept-Encoding", "identity");
            HttpResponse<Void> r = send(b.build(), HttpResponse.BodyHandlers.discarding(), what);
            String loc = r.headers().firstValue("Location").orElse(null);
            if (r.statusCode() >= 300 && r.statusCode() < 400 && loc != null && URI.create(loc).getHost() == null) {
                current = URI.create(current).resolve(loc).toString(); // a renamed repo: follow on the hub
                continue;
            }
            if (r.statusCode() >= 400) {
                throw error(r.statusCode(), r.headers().firstValue("X-Error-Code").orElse(null),
                        r.headers().firstValue("X-Error-Message").orElse(null), current, what);
            }
            String commit = r.headers().firstValue("X-Repo-Commit").orElse(null);
            String etag = r.headers().firstValue("X-Linked-Etag").or(() -> r.headers().firstValue("ETag"))
                    .map(HubHttp::normalizeEtag).orElse(null);
            long size = r.headers().firstValue("X-Linked-Size").or(() -> r.headers().firstValue("Content-Length"))
                    .map(Long::parseLong).orElse(-1L);
            if (commit == null || etag == null || size < 0) {
                throw new HubException(what + ": " + current + " answered without " + (commit == null
                        ? "X-Repo-Commit" : etag == null ? "an ETag" : "a Content-Length") + ": it does not look"
                        + " like a Hugging Face hub (check HF_ENDPOINT, a proxy or a firewall)");
            }
            return new FileMetadata(commit, etag, loc != null ? loc : current, size);
        }
        throw new HubException(what + ": more than " + MAX_REDIRECTS + " redirects from " + url);
    }

    /** GET a small JSON document (the revision API) as text. */
    String getText(String url, String what) {
        HttpResponse<InputStream> r = get(url, -1, what);
        try (InputStream in = r.body()) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new Unreachable(what + ": reading " + url + " failed: " + e.getMessage(), e);
        }
    }

    /**
     * GET {@code url} from byte {@code from} on (no Range when negative or 0), following redirects; the token goes
     * only to the hub's own host (HF_ENDPOINT), never to the CDN an LFS file redirects to. The caller closes the body.
     */
    HttpResponse<InputStream> get(String url, long from, String what) {
        String host = URI.create(env.endpoint()).getHost();
        String current = url;
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            boolean sameHost = Objects.equals(URI.create(current).getHost(), host);
            HttpRequest.Builder b = request(current, sameHost).GET();
            if (from > 0) {
                b.header("Range", "bytes=" + from + "-");
            }
            HttpResponse<InputStream> r = send(b.build(), HttpResponse.BodyHandlers.ofInputStream(), what);
            String loc = r.headers().firstValue("Location").orElse(null);
            if (r.statusCode() >= 300 && r.statusCode() < 400 && loc != null) {
                close(r);
                current = URI.create(current).resolve(loc).toString();
                continue;
            }
            if (r.statusCode() >= 400) {
                close(r);
                throw error(r.statusCode(), r.headers().firstValue("X-Error-Code").orElse(null),
                        r.headers().firstValue("X-Error-Message").orElse(null), current, what);
            }
            return r;
        }
        throw new HubException(what + ": more than " + MAX_REDIRECTS + " redirects from " + url);
    }

    private HttpRequest.Builder request(String url, boolean withToken) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(
                env.timeoutSeconds())).header("User-Agent", USER_AGENT);
        if (withToken && env.token() != null) {
            b.header("Authorization", "Bearer " + env.token());
        }
        return b;
    }

    private <T> HttpResponse<T> send(HttpRequest req, HttpResponse.BodyHandler<T> handler, String what) {
        try {
            return client.send(req, handler);
        } catch (HttpConnectTimeoutException | ConnectException e) {
            throw new Unreachable(what + ": cannot connect to " + req.uri().getHost() + " (" + e + ")", e);
        } catch (HttpTimeoutException e) {
            throw new Unreachable(what + ": " + req.uri() + " did not answer within " + env.timeoutSeconds()
                    + " s (HF_HUB_DOWNLOAD_TIMEOUT)", e);
        } catch (IOException e) {
            throw new Unreachable(what + ": request to " + req.uri() + " failed: " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HubException(what + ": interrupted", e);
        }
    }

    private static void close(HttpResponse<InputStream> r) {
        try {
            r.body().close();
        } catch (IOException ignored) {
            // the response is abandoned anyway
        }
    }

    /** huggingface_hub's hf_raise_for_status, as messages that say what to do. */
    private HubException error(int status, String code, String hubMessage, String url, String what) {
        String token = env.token() != null ? "the token in HF_TOKEN was sent" : "no token was sent (HF_TOKEN is not"
                + " set and there is no token file)";
        String detail = hubMessage != null ? " The hub says: " + hubMessage + "." : "";
        if ("RepoNotFound".equals(code) || status == 401) {
            return new HubException(what + ": repository not found or not accessible (HTTP " + status + ", " + url
                    + "); " + token + ". Check the id (and repo type); for a private or gated repository set"
                    + " HF_TOKEN to a token that can read it." + detail);
        }
        if ("GatedRepo".equals(code)) {
            return new HubException(what + ": the repository is gated (HTTP " + status + ", " + url + "); " + token
                    + ". Accept its conditions on the repository's page with your account and set HF_TOKEN to that"
                    + " account's token." + detail);
        }
        if ("RevisionNotFound".equals(code)) {
            return new HubException(what + ": revision not found (" + url + "): check model_revision / the"
                    + " revision name." + detail);
        }
        if ("EntryNotFound".equals(code) || status == 404) {
            return new HubException(what + ": not found on the hub (HTTP " + status + ", " + url + ")." + detail);
        }
        if (status == 403) {
            return new HubException(what + ": access denied (HTTP 403, " + url + "); " + token + ". The token may"
                    + " lack read permission for this repository." + detail);
        }
        if (status == 416) {
            return new HubException(what + ": the hub refused the resume range (HTTP 416, " + url + ")");
        }
        return new Unreachable(what + ": HTTP " + status + " from " + url + " (the hub may be down; try again)."
                + detail, null);
    }

    /** huggingface_hub's _normalize_etag: drop a weak-validator prefix and the quotes. */
    static String normalizeEtag(String etag) {
        String e = etag.strip();
        if (e.startsWith("W/")) {
            e = e.substring(2);
        }
        return e.replace("\"", "");
    }

    /** Python's urllib.parse.quote: unreserved characters kept, '/' kept only when {@code keepSlash}. */
    static String quote(String s, boolean keepSlash) {
        StringBuilder out = new StringBuilder();
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            char c = (char) (b & 0xff);
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.'
                    || c == '-' || c == '~' || (keepSlash && c == '/')) {
                out.append(c);
            } else {
                out.append('%').append(String.format("%02X", b & 0xff));
            }
        }
        return out.toString();
    }
}
