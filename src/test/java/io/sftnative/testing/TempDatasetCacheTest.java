package io.sftnative.testing;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(TempDatasetCache.class)
class TempDatasetCacheTest {
    @Test
    void theCachePointsIntoAFreshTemporaryDirectory() {
        String cache = System.getProperty("sft.cache.dir");
        assertNotNull(cache);
        assertFalse(Files.exists(Path.of(cache)), cache); // nothing cached yet
        assertTrue(Files.isDirectory(Path.of(cache).getParent()), cache);
    }
}
