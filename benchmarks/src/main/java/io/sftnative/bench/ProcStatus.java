package io.sftnative.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Fields of {@code /proc/self/status} (Linux): VmHWM = peak resident set, VmRSS = current. */
final class ProcStatus {
    private ProcStatus() {}

    /** The value of {@code field} in kB, or -1 where there is no /proc (not Linux). */
    static long kb(String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(field + ":")) {
                    return Long.parseLong(line.substring(field.length() + 1).replace("kB", "").trim());
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux
        }
        return -1;
    }
}
