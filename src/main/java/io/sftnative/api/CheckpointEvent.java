package io.sftnative.api;

import java.nio.file.Path;

/** A complete checkpoint was published ({@code checkpoint-<step>}); resumable from now on. */
public record CheckpointEvent(long step, Path directory) {}
