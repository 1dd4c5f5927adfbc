package io.sftnative.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * {@code @ExtendWith(TempDatasetCache.class)}: each test gets its own empty tokenized-dataset cache
 * ({@code -Dsft.cache.dir}, read by DatasetLoader) in a fresh temporary directory, so no test reads another's cache
 * or the user's {@code ~/.cache/sft-native}. After the test the property is cleared and the directory deleted.
 */
public final class TempDatasetCache implements BeforeEachCallback, AfterEachCallback {
    private static final String PROPERTY = "sft.cache.dir";
    private static final ExtensionContext.Namespace NS = ExtensionContext.Namespace.create(TempDatasetCache.class);

    @Override
    public void beforeEach(ExtensionContext context) throws IOException {
        Path dir = Files.createTempDirectory("sft-dataset-cache");
        context.getStore(NS).put(PROPERTY, dir);
        System.setProperty(PROPERTY, dir.resolve("cache").toString());
    }

    @Override
    public void afterEach(ExtensionContext context) throws IOException {
        System.clearProperty(PROPERTY);
        Path dir = context.getStore(NS).remove(PROPERTY, Path.class);
        if (dir != null) {
            try (Stream<Path> all = Files.walk(dir)) {
                for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }
}
