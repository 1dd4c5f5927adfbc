package io.sftnative.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Process resident-memory peak (VmHWM) with a reset ({@code echo 5 > /proc/self/clear_refs}, Linux >= 4.0), so a
 * benchmark can measure the peak extra memory of one operation: reset, run, read VmHWM minus the RSS before.
 */
final class PeakRss {
    private PeakRss() {}

    static boolean resettable() {
        try {
            reset();
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    static void reset() throws IOException {
        Files.writeString(Path.of("/proc/self/clear_refs"), "5");
    }

    /** kB field of /proc/self/status, e.g. VmRSS or VmHWM. */
    static long kb(String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(field + ":")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", ""));
                }
            }
        } catch (IOException e) {
            return -1;
        }
        return -1;
    }
}
