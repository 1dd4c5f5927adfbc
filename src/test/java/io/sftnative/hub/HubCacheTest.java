package io.sftnative.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.config.ModelArgs;
import io.sftnative.config.RawConfig;

/** Hub ids resolve from the local cache as huggingface_hub lays it out; a missing one says how to get it. */
class HubCacheTest {
    static final String MAIN = "0123456789abcdef0123456789abcdef01234567";
    static final String V1 = "fedcba9876543210fedcba9876543210fedcba98";

    @TempDir
    Path cache;

    private Path snapshot(String commit) throws Exception {
        Path snap = cache.resolve("models--Qwen--Qwen3-4B-Instruct-2507/snapshots/" + commit);
        Files.createDirectories(snap);
        Files.writeString(snap.resolve("config.json"), "{}");
        return snap;
    }

    @Test
    void cacheDirFollowsHuggingfaceHubsOrder() {
        assertEquals(Path.of("/k"), HubCache.cacheDir("/k", Map.of("HF_HUB_CACHE", "/a")));
        assertEquals(Path.of("/a"), HubCache.cacheDir(null, Map.of("HF_HUB_CACHE", "/a", "HF_HOME", "/h")));
        assertEquals(Path.of("/o"), HubCache.cacheDir(null, Map.of("HUGGINGFACE_HUB_CACHE", "/o", "HF_HOME", "/h")));
        assertEquals(Path.of("/h/hub"), HubCache.cacheDir(null, Map.of("HF_HOME", "/h", "XDG_CACHE_HOME", "/x")));
        assertEquals(Path.of("/x/huggingface/hub"), HubCache.cacheDir(null, Map.of("XDG_CACHE_HOME", "/x")));
        assertEquals(Path.of(System.getProperty("user.home"), ".cache/huggingface/hub"),
                HubCache.cacheDir(null, Map.of()));
    }

    @Test
    void modelNameOrPathResolvesRefsAndRevisions() throws Exception {
        Path main = snapshot(MAIN);
        Path v1 = snapshot(V1);
        Files.createDirectories(cache.resolve("models--Qwen--Qwen3-4B-Instruct-2507/refs"));
        Files.writeString(cache.resolve("models--Qwen--Qwen3-4B-Instruct-2507/refs/main"), MAIN);
        Files.writeString(cache.resolve("models--Qwen--Qwen3-4B-Instruct-2507/refs/v1"), V1 + "\n");
        String id = "Qwen/Qwen3-4B-Instruct-2507";
        assertEquals(main.toString(), model(Map.of("model_name_or_path", id, "cache_dir", cache.toString())));
        assertEquals(v1.toString(), model(Map.of("model_name_or_path", id, "cache_dir", cache.toString(),
                "model_revision", "v1")));
        assertEquals(v1.toString(), model(Map.of("model_name_or_path", id, "cache_dir", cache.toString(),
                "model_revision", V1)));
        assertEquals("Qwen/Other", model(Map.of("model_name_or_path", "Qwen/Other", "cache_dir",
                cache.toString())), "not cached: left for the loader to report");
        assertEquals(cache.toString(), model(Map.of("model_name_or_path", cache.toString())), "a local directory");
    }

    @Test
    void aMissingRepoSaysWhereItLookedAndWhatToRun() {
        assertTrue(HubCache.isRepoId("Qwen/Qwen3-4B"));
        assertFalse(HubCache.isRepoId("/models/qwen"));
        assertFalse(HubCache.isRepoId("a/b/c"));
        String m = HubCache.missing("model_name_or_path", "Qwen/Qwen3-4B", "model", "v2", cache.toString());
        assertTrue(m.contains(cache + " has no models--Qwen--Qwen3-4B/snapshots for revision v2")
                && m.contains("`hf download Qwen/Qwen3-4B --revision v2`"), m);
        String d = HubCache.missing("hf_hub_url", "llamafactory/demo", "dataset", null, cache.toString());
        assertTrue(d.contains("datasets--llamafactory--demo") && d.contains("--repo-type dataset"), d);
    }

    @Test
    void hfHubUrlDatasetsReadTheCachedSnapshotsTrainFiles() throws Exception {
        Path snap = cache.resolve("datasets--llamafactory--demo_data/snapshots/" + MAIN);
        Files.createDirectories(snap.resolve("data"));
        Files.createDirectories(cache.resolve("datasets--llamafactory--demo_data/refs"));
        Files.writeString(cache.resolve("datasets--llamafactory--demo_data/refs/main"), MAIN);
        Files.writeString(snap.resolve("data/train-00000.jsonl"), "{\"instruction\": \"a\", \"output\": \"b\"}\n");
        Files.writeString(snap.resolve("data/test-00000.jsonl"), "{\"instruction\": \"c\", \"output\": \"d\"}\n");
        Files.writeString(snap.resolve("README.md"), "# demo\n");
        Path info = cache.resolve("info");
        Files.createDirectories(info);
        Files.writeString(info.resolve("dataset_info.json"), """
                {"hub": {"hf_hub_url": "llamafactory/demo_data"},
                 "sub": {"hf_hub_url": "llamafactory/demo_data", "subset": "en"},
                 "gone": {"hf_hub_url": "llamafactory/not_cached"}}
                """);
        String before = System.getProperty("sft.hf.hub.cache");
        System.setProperty("sft.hf.hub.cache", cache.toString());
        try {
            var spec = io.sftnative.data.DatasetSpec.resolve("hub", info);
            assertEquals(java.util.List.of(snap.resolve("data/train-00000.jsonl")), spec.files());
            var sub = org.junit.jupiter.api.Assertions.assertThrows(io.sftnative.data.DataException.class,
                    () -> io.sftnative.data.DatasetSpec.resolve("sub", info));
            assertTrue(sub.getMessage().contains("not implemented in sft-native: hub dataset configurations"),
                    sub.getMessage());
            var gone = org.junit.jupiter.api.Assertions.assertThrows(io.sftnative.data.DataException.class,
                    () -> io.sftnative.data.DatasetSpec.resolve("gone", info));
            assertTrue(gone.getMessage().contains("hf download --repo-type dataset llamafactory/not_cached"),
                    gone.getMessage());
        } finally {
            if (before == null) {
                System.clearProperty("sft.hf.hub.cache");
            } else {
                System.setProperty("sft.hf.hub.cache", before);
            }
        }
    }

    private static String model(Map<String, ?> keys) {
        return ModelArgs.from(RawConfig.of(keys)).modelNameOrPath();
    }
}
