package io.sftnative.hub;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Online download into huggingface_hub's cache layout, against {@link FakeHub} on the loopback interface (no test
 * reaches the internet): blobs/refs/snapshots as huggingface_hub writes them, the CDN redirect without the token,
 * resume after a cut-off transfer and from a previous run's {@code .incomplete}, checksum mismatch, 401, renamed
 * repositories, offline mode.
 */
class HubDownloadTest {
    static final String REPO = "org/tiny";
    static final byte[] CONFIG = "{\"model_type\": \"qwen3\"}".getBytes(StandardCharsets.UTF_8);
    static final byte[] TOKENIZER = "{\"model\": {}}".getBytes(StandardCharsets.UTF_8);

    @TempDir
    Path cache;

    FakeHub hub;
    byte[] weights;
    final List<String> log = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        hub = new FakeHub();
        weights = new byte[300_000];
        new Random(7).nextBytes(weights);
        hub.put("model", REPO, ".gitattributes", "*.safetensors filter=lfs".getBytes(), false);
        hub.put("model", REPO, "README.md", "# tiny".getBytes(), false);
        hub.put("model", REPO, "config.json", CONFIG, false);
        hub.put("model", REPO, "tokenizer.json", TOKENIZER, false);
        hub.put("model", REPO, "model.safetensors", weights, true);
        hub.put("model", REPO, "pytorch_model.bin", new byte[10], true);
    }

    @AfterEach
    void stop() {
        hub.close();
    }

    HubEnv env(String token, boolean offline) {
        return new HubEnv(hub.endpoint(), token, offline, cache, 10);
    }

    Path storage() {
        return cache.resolve("models--org--tiny");
    }

    @Test
    void aModelLandsInTheCacheAsHuggingfaceHubLaysItOut() throws Exception {
        String snap = HubCache.resolveModel(env("secret", false), REPO, "main", log::add);
        Path s = storage().resolve("snapshots").resolve(FakeHub.COMMIT);
        assertEquals(s.toString(), snap);
        assertEquals(FakeHub.COMMIT, Files.readString(storage().resolve("refs/main")), "refs/main: the commit, no"
                + " newline");
        String sha = FakeHub.sha256(weights);
        assertEquals(Path.of("../../blobs/" + sha), Files.readSymbolicLink(s.resolve("model.safetensors")));
        assertEquals(Path.of("../../blobs/" + FakeHub.gitSha1(CONFIG)), Files.readSymbolicLink(s.resolve(
                "config.json")), "a regular file's blob is named by its git hash (the hub's ETag)");
        assertArrayEquals(weights, Files.readAllBytes(s.resolve("model.safetensors")));
        assertArrayEquals(TOKENIZER, Files.readAllBytes(s.resolve("tokenizer.json")));
        try (Stream<Path> files = Files.list(s)) {
            assertEquals(List.of("config.json", "model.safetensors", "tokenizer.json"), files.map(p -> p.getFileName()
                    .toString()).sorted().toList(), "README, .gitattributes and .bin weights are not fetched");
        }
        try (Stream<Path> blobs = Files.list(storage().resolve("blobs"))) {
            assertTrue(blobs.noneMatch(p -> p.toString().endsWith(".incomplete")));
        }
        // the token goes to the hub, never to the CDN host the LFS file redirects to
        assertTrue(hub.requests.contains("HEAD localhost/org/tiny/resolve/" + FakeHub.COMMIT
                + "/model.safetensors auth"), hub.requests.toString());
        assertTrue(hub.requests.contains("GET 127.0.0.1/cdn/models/org/tiny/model.safetensors"),
                hub.requests.toString());
        assertTrue(log.stream().anyMatch(l -> l.startsWith("downloading org/tiny file model.safetensors (300.0 KB)")),
                log.toString());

        // a second run: the branch is re-resolved (one API call), nothing is downloaded again
        hub.requests.clear();
        assertEquals(snap, HubCache.resolveModel(env("secret", false), REPO, "main", log::add));
        assertEquals(1, hub.requests.size(), hub.requests.toString());
        // offline: the cache alone, no request at all
        hub.requests.clear();
        assertEquals(snap, HubCache.resolveModel(env(null, true), REPO, "main", log::add));
        assertEquals(snap, HubCache.resolveModel(env(null, false), REPO, FakeHub.COMMIT, log::add),
                "a cached commit needs no request");
        assertEquals(List.of(), hub.requests);
    }

    @Test
    void aCutOffTransferResumesWithRange() throws Exception {
        hub.cutOffGets = 1;
        Path p = new HubDownload(env(null, false), log::add).file("model", REPO, "main", "model.safetensors");
        assertArrayEquals(weights, Files.readAllBytes(p));
        List<String> gets = hub.requests.stream().filter(r -> r.startsWith("GET 127.0.0.1")).toList();
        assertEquals(2, gets.size(), gets.toString());
        // resumed from what arrived before the connection dropped (at most the half the server wrote)
        java.util.regex.Matcher m = java.util.regex.Pattern.compile(" bytes=(\\d+)-$").matcher(gets.get(1));
        assertTrue(m.find(), gets.toString());
        long from = Long.parseLong(m.group(1));
        assertTrue(from > 0 && from <= weights.length / 2, gets.toString());
        assertTrue(log.stream().anyMatch(l -> l.contains("transfer interrupted at byte " + from)), log.toString());
    }

    @Test
    void aPreviousRunsIncompleteFileIsResumed() throws Exception {
        Path part = storage().resolve("blobs").resolve(FakeHub.sha256(weights) + ".incomplete");
        Files.createDirectories(part.getParent());
        Files.write(part, java.util.Arrays.copyOf(weights, 1000));
        Path p = new HubDownload(env(null, false), log::add).file("model", REPO, "main", "model.safetensors");
        assertArrayEquals(weights, Files.readAllBytes(p));
        assertTrue(hub.requests.contains("GET 127.0.0.1/cdn/models/org/tiny/model.safetensors bytes=1000-"),
                hub.requests.toString());
        assertFalse(Files.exists(part));
    }

    @Test
    void aChecksumMismatchLeavesNothingInTheCache() throws Exception {
        byte[] bad = weights.clone();
        bad[12345] ^= 1;
        hub.corrupt("model", REPO, "model.safetensors", bad);
        HubException e = assertThrows(HubException.class,
                () -> HubCache.resolveModel(env(null, false), REPO, "main", log::add));
        assertTrue(e.getMessage().contains("org/tiny file model.safetensors: checksum mismatch")
                && e.getMessage().contains("sha256 " + FakeHub.sha256(bad))
                && e.getMessage().contains("is " + FakeHub.sha256(weights)), e.getMessage());
        Path snap = storage().resolve("snapshots").resolve(FakeHub.COMMIT);
        assertFalse(Files.exists(snap.resolve("model.safetensors")));
        try (Stream<Path> blobs = Files.list(storage().resolve("blobs"))) {
            assertEquals(List.of(), blobs.filter(b -> b.getFileName().toString().startsWith(FakeHub.sha256(weights)))
                    .toList(), "no blob, no .incomplete");
        }
        assertFalse(Files.exists(storage().resolve("refs/main")), "the revision is recorded only once complete");
    }

    @Test
    void aPrivateRepoWithoutTokenSaysSetHfToken() {
        hub.privateToken = "secret";
        HubException e = assertThrows(HubException.class,
                () -> HubCache.resolveModel(env(null, false), REPO, "main", log::add));
        assertTrue(e.getMessage().contains("HTTP 401") && e.getMessage().contains("no token was sent")
                && e.getMessage().contains("set HF_TOKEN"), e.getMessage());
        e = assertThrows(HubException.class, () -> HubCache.resolveModel(env("wrong", false), REPO, "main", log::add));
        assertTrue(e.getMessage().contains("the token in HF_TOKEN was sent"), e.getMessage());
        assertFalse(Files.exists(storage().resolve("snapshots")));
        HubCache.resolveModel(env("secret", false), REPO, "main", log::add);
        assertTrue(Files.exists(storage().resolve("snapshots").resolve(FakeHub.COMMIT).resolve("config.json")));
    }

    @Test
    void aRenamedRepoIsFollowedOnTheHub() throws Exception {
        hub.renamed.put("old-org/tiny", REPO);
        Path p = new HubDownload(env(null, false), log::add).file("model", "old-org/tiny", "main", "config.json");
        assertArrayEquals(CONFIG, Files.readAllBytes(p));
        assertEquals(cache.resolve("models--old-org--tiny/snapshots/" + FakeHub.COMMIT + "/config.json"), p,
                "cached under the name asked for, as huggingface_hub does");
    }

    @Test
    void aMissingFileOrRepoIsNamed() {
        HubException e = assertThrows(HubException.class, () -> new HubDownload(env(null, false), log::add)
                .file("model", REPO, "main", "generation_config.json"));
        assertTrue(e.getMessage().contains("org/tiny file generation_config.json: not found on the hub (HTTP 404"),
                e.getMessage());
        e = assertThrows(HubException.class, () -> HubCache.resolveModel(env(null, false), "org/none", "main",
                log::add));
        assertTrue(e.getMessage().contains("repository not found"), e.getMessage());
    }

    @Test
    void offlineNothingTouchesTheNetworkAndAMissingShardIsNamed() throws Exception {
        assertEquals(REPO, HubCache.resolveModel(env(null, true), REPO, "main", log::add),
                "not cached: left to the loader's missing-model message");
        Path snap = storage().resolve("snapshots").resolve(FakeHub.COMMIT);
        Files.createDirectories(snap);
        Files.createDirectories(storage().resolve("refs"));
        Files.writeString(storage().resolve("refs/main"), FakeHub.COMMIT);
        Files.writeString(snap.resolve("config.json"), "{}");
        Files.writeString(snap.resolve("model.safetensors.index.json"), "{\"weight_map\": {\"a\":"
                + " \"model-00001-of-00002.safetensors\", \"b\": \"model-00002-of-00002.safetensors\"}}");
        Files.writeString(snap.resolve("model-00001-of-00002.safetensors"), "x");
        HubException e = assertThrows(HubException.class, () -> HubCache.resolveModel(env(null, true), REPO, "main",
                log::add));
        assertTrue(e.getMessage().contains("lacks [model-00002-of-00002.safetensors]")
                && e.getMessage().contains("HF_HUB_OFFLINE is set") && e.getMessage().contains("`hf download "
                + REPO + "`"), e.getMessage());
        assertEquals(List.of(), hub.requests, "offline: no request");
        assertThrows(IllegalStateException.class, () -> new HubDownload(env(null, true), log::add));
    }

    @Test
    void aDatasetRepoIsDownloadedWhole() throws Exception {
        byte[] rows = "{\"instruction\": \"hi\", \"output\": \"yo\"}\n".getBytes(StandardCharsets.UTF_8);
        hub.put("dataset", "org/data", "README.md", "# data".getBytes(), false);
        hub.put("dataset", "org/data", "data/train.jsonl", rows, true);
        Path snap = HubCache.resolveDataset(env(null, false), "org/data", log::add);
        assertEquals(cache.resolve("datasets--org--data/snapshots/" + FakeHub.COMMIT), snap);
        assertArrayEquals(rows, Files.readAllBytes(snap.resolve("data/train.jsonl")));
        assertEquals(Path.of("../../../blobs/" + FakeHub.sha256(rows)), Files.readSymbolicLink(snap.resolve(
                "data/train.jsonl")), "nested files link three levels up, as huggingface_hub's relpath");
        assertTrue(hub.requests.contains("GET localhost/api/datasets/org/data/revision/main"), hub.requests.toString());
        assertTrue(hub.requests.stream().anyMatch(r -> r.startsWith("HEAD localhost/datasets/org/data/resolve/")),
                hub.requests.toString());
        assertEquals(snap, HubCache.resolveDataset(env(null, true), "org/data", log::add), "offline: the cache");
    }

    @Test
    void environmentFollowsHuggingfaceHub(@TempDir Path home) throws Exception {
        HubEnv e = HubEnv.from(java.util.Map.of("HF_ENDPOINT", "https://mirror.example/", "HF_HUB_OFFLINE", "ON",
                "HF_HOME", home.toString()), null);
        assertEquals("https://mirror.example", e.endpoint());
        assertTrue(e.offline());
        assertEquals(home.resolve("hub"), e.cache());
        assertEquals(null, e.token());
        Files.writeString(home.resolve("token"), "hf_file\n");
        assertEquals("hf_file", HubEnv.from(java.util.Map.of("HF_HOME", home.toString()), null).token());
        assertEquals("hf_env", HubEnv.from(java.util.Map.of("HF_HOME", home.toString(), "HF_TOKEN", "hf_env"), null)
                .token());
        HubEnv d = HubEnv.from(java.util.Map.of("TRANSFORMERS_OFFLINE", "0"), null);
        assertEquals(HubEnv.DEFAULT_ENDPOINT, d.endpoint());
        assertFalse(d.offline());
        assertEquals("https://huggingface.co/datasets/o/d/resolve/refs%2Fpr%2F1/a%20b/c.json",
                new HubHttp(HubEnv.from(java.util.Map.of(), null)).resolveUrl("dataset", "o/d", "refs/pr/1",
                        "a b/c.json"));
    }
}
