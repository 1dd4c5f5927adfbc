package io.sftnative.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The project's shared test material ({@code ../shared}: real tokenizers, LLaMA-Factory demo data, bitsandbytes
 * golden vectors). It exists in CI and on developer machines, not in a user's fresh clone: tests that need it
 * call {@link #require} and are skipped with a message when it is absent.
 */
public final class Shared {
    private Shared() {}

    public static Path dir() {
        String prop = System.getProperty("sft.shared.dir");
        return Path.of(prop != null ? prop : "../shared").toAbsolutePath().normalize();
    }

    /** The path under ../shared, or skips the calling test when it is absent. */
    public static Path require(String relative) {
        Path p = dir().resolve(relative);
        assumeTrue(Files.exists(p), "skipped: " + p + " is absent (../shared is provided in CI and to developers,"
                + " not in a user's clone)");
        return p;
    }
}
