package io.sftnative.data;

import java.nio.file.Path;

/**
 * Bad data or a bad dataset reference; names the file, line and key where there is one, and what to do.
 *
 * @see PreprocessReport for examples that are dropped (and counted) rather than failing the whole run
 */
public final class DataException extends RuntimeException {
    private final Path file;
    private final long line;
    private final String key;

    public DataException(String message) {
        this(message, null, -1, null);
    }

    public DataException(String message, Path file, long line, String key) {
        super(message);
        this.file = file;
        this.line = line;
        this.key = key;
    }

    /** The data file concerned, or null. */
    public Path file() {
        return file;
    }

    /** The 1-based line in {@link #file()}, or -1. */
    public long line() {
        return line;
    }

    /** The dataset name, column or dataset_info.json key concerned, or null. */
    public String key() {
        return key;
    }
}
