package io.sftnative.hub;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

/**
 * A loopback HTTP server that answers as the Hugging Face hub does (as huggingface_hub's tests and the hub's public
 * behaviour show): {@code HEAD /{repo}/resolve/{rev}/{file}} with {@code X-Repo-Commit} and {@code ETag} (a regular
 * file: its git blob sha1, served directly) or, for an LFS file, a 302 to a CDN URL on another host name
 * ({@code 127.0.0.1} instead of {@code localhost}) with {@code X-Linked-Etag} (its sha256) and {@code X-Linked-Size};
 * {@code GET} with {@code Range} (206 + {@code Content-Range}); {@code /api/{type}s/{repo}/revision/{rev}}; a
 * renamed repository as a relative 307; 401 + {@code X-Error-Code: RepoNotFound} for a private repo without its
 * token. Faults on demand: a transfer cut off half-way, wrong content for a checksum.
 */
final class FakeHub implements AutoCloseable {
    static final String COMMIT = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";

    /** One file of a repository: content, LFS or not, and the content served in its place (for faults). */
    record File(byte[] content, boolean lfs, byte[] served) {}

    final HttpServer server;
    final Map<String, Map<String, File>> repos = new LinkedHashMap<>(); // "models/org/name" -> files
    final Map<String, String> renamed = new LinkedHashMap<>(); // old "org/name" -> new
    final List<String> requests = new CopyOnWriteArrayList<>(); // "METHOD path [Range] [auth]"
    volatile String privateToken; // when set, every repo needs "Bearer <token>"
    volatile int cutOffGets; // this many CDN GETs without Range stop half-way

    FakeHub() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.setExecutor(Executors.newFixedThreadPool(2));
        server.createContext("/", this::handle);
        server.start();
    }

    /** http://localhost:PORT — the CDN answers on http://127.0.0.1:PORT, another host for the token rule. */
    String endpoint() {
        return "http://localhost:" + server.getAddress().getPort();
    }

    void put(String type, String repo, String name, byte[] content, boolean lfs) {
        repos.computeIfAbsent(type + "s/" + repo, k -> new LinkedHashMap<>()).put(name, new File(content, lfs,
                content));
    }

    /** Serve {@code served} for {@code name} while announcing the checksum of its real content. */
    void corrupt(String type, String repo, String name, byte[] served) {
        File f = repos.get(type + "s/" + repo).get(name);
        repos.get(type + "s/" + repo).put(name, new File(f.content(), f.lfs(), served));
    }

    @Override
    public void close() {
        server.stop(0);
        ((java.util.concurrent.ExecutorService) server.getExecutor()).shutdownNow();
    }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** git's blob id: sha1("blob <size>\0" + content), the hub's ETag of a regular file. */
    static String gitSha1(byte[] b) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-1");
            md.update(("blob " + b.length + "\0").getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(md.digest(b));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private void handle(HttpExchange x) throws IOException {
        String path = x.getRequestURI().getRawPath();
        String range = x.getRequestHeaders().getFirst("Range");
        String auth = x.getRequestHeaders().getFirst("Authorization");
        requests.add(x.getRequestMethod() + " " + x.getRequestHeaders().getFirst("Host").replaceAll(":\\d+$", "")
                + path + (range != null ? " " + range : "") + (auth != null ? " auth" : ""));
        try (x) {
            if (path.startsWith("/cdn/")) {
                cdn(x, path.substring(5), range);
            } else if (path.startsWith("/api/")) {
                api(x, path.substring(5), auth);
            } else {
                resolve(x, path.substring(1), auth);
            }
        }
    }

    private boolean denied(HttpExchange x, String auth) throws IOException {
        if (privateToken != null && !("Bearer " + privateToken).equals(auth)) {
            x.getResponseHeaders().set("X-Error-Code", "RepoNotFound");
            x.getResponseHeaders().set("X-Error-Message", "Invalid username or password.");
            x.sendResponseHeaders(401, -1);
            return true;
        }
        return false;
    }

    /** {type}s/{org}/{name}/revision/{rev} */
    private void api(HttpExchange x, String rest, String auth) throws IOException {
        String[] p = rest.split("/");
        String key = p[0] + "/" + p[1] + "/" + p[2];
        if (renamed.containsKey(p[1] + "/" + p[2])) {
            redirect(x, "/api/" + p[0] + "/" + renamed.get(p[1] + "/" + p[2]) + "/revision/" + p[4]);
            return;
        }
        if (denied(x, auth)) {
            return;
        }
        Map<String, File> files = repos.get(key);
        if (files == null) {
            x.getResponseHeaders().set("X-Error-Code", "RepoNotFound");
            x.sendResponseHeaders(404, -1);
            return;
        }
        List<String> siblings = new ArrayList<>();
        files.keySet().forEach(f -> siblings.add("{\"rfilename\": \"" + f + "\"}"));
        byte[] body = ("{\"id\": \"" + p[1] + "/" + p[2] + "\", \"sha\": \"" + COMMIT + "\", \"siblings\": ["
                + String.join(", ", siblings) + "]}").getBytes(StandardCharsets.UTF_8);
        x.getResponseHeaders().set("Content-Type", "application/json");
        x.sendResponseHeaders(200, body.length);
        x.getResponseBody().write(body);
    }

    /** [datasets/]{org}/{name}/resolve/{rev}/{file...} */
    private void resolve(HttpExchange x, String rest, String auth) throws IOException {
        String type = "model";
        if (rest.startsWith("datasets/")) {
            type = "dataset";
            rest = rest.substring("datasets/".length());
        }
        String[] p = rest.split("/", 5);
        String repo = p[0] + "/" + p[1];
        if (renamed.containsKey(repo)) {
            redirect(x, "/" + (type.equals("dataset") ? "datasets/" : "") + renamed.get(repo) + "/resolve/" + p[3]
                    + "/" + p[4]);
            return;
        }
        if (denied(x, auth)) {
            return;
        }
        Map<String, File> files = repos.get(type + "s/" + repo);
        File f = files == null ? null : files.get(java.net.URLDecoder.decode(p[4], StandardCharsets.UTF_8));
        x.getResponseHeaders().set("X-Repo-Commit", COMMIT);
        if (f == null) {
            x.getResponseHeaders().set("X-Error-Code", files == null ? "RepoNotFound" : "EntryNotFound");
            x.sendResponseHeaders(404, -1);
            return;
        }
        boolean head = x.getRequestMethod().equals("HEAD");
        if (f.lfs()) {
            String sha = sha256(f.content());
            x.getResponseHeaders().set("X-Linked-Etag", "\"" + sha + "\"");
            x.getResponseHeaders().set("X-Linked-Size", Long.toString(f.content().length));
            x.getResponseHeaders().set("ETag", "\"" + gitSha1(("pointer " + sha).getBytes()) + "\"");
            x.getResponseHeaders().set("Location", "http://127.0.0.1:" + server.getAddress().getPort() + "/cdn/"
                    + type + "s/" + repo + "/" + p[4]);
            x.sendResponseHeaders(302, -1);
            return;
        }
        x.getResponseHeaders().set("ETag", "\"" + gitSha1(f.content()) + "\"");
        if (head) {
            x.getResponseHeaders().set("Content-Length", Integer.toString(f.content().length));
            x.sendResponseHeaders(200, -1);
        } else {
            x.sendResponseHeaders(200, f.served().length);
            x.getResponseBody().write(f.served());
        }
    }

    /** The CDN: {type}s/{org}/{name}/{file}; honours Range; may cut a transfer off half-way. */
    private void cdn(HttpExchange x, String rest, String range) throws IOException {
        String[] p = rest.split("/", 4);
        File f = repos.get(p[0] + "/" + p[1] + "/" + p[2]).get(p[3]);
        byte[] body = f.served();
        int from = 0;
        if (range != null) {
            from = Integer.parseInt(range.replaceAll("bytes=(\\d+)-", "$1"));
            x.getResponseHeaders().set("Content-Range", "bytes " + from + "-" + (body.length - 1) + "/"
                    + body.length);
            x.sendResponseHeaders(206, body.length - from);
        } else {
            x.sendResponseHeaders(200, body.length);
        }
        OutputStream out = x.getResponseBody();
        if (range == null && cutOffGets > 0) {
            cutOffGets--;
            out.write(body, 0, body.length / 2);
            out.flush();
            throw new IOException("cut off on purpose"); // the server drops the connection mid-body
        }
        out.write(body, from, body.length - from);
    }

    private static void redirect(HttpExchange x, String relative) throws IOException {
        x.getResponseHeaders().set("Location", relative);
        x.sendResponseHeaders(307, -1);
    }
}
