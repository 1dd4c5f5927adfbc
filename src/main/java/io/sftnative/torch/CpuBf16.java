package io.sftnative.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Whether this CPU has bf16 arithmetic (AVX512-BF16's dot-product instructions, or AMX-BF16 tiles). Without them
 * oneDNN's bf16 matrix products convert to fp32 in software and {@code bf16: true} gains little or loses time against
 * fp32 on the CPU (benchmarks/RESULTS.md, "bf16 vs fp32 training steps").
 */
public final class CpuBf16 {
    private CpuBf16() {}

    /** The answer for this machine: true, false, or null when it cannot be told (no /proc/cpuinfo). */
    public static Boolean hardware() {
        try {
            return fromCpuinfo(Files.readString(Path.of("/proc/cpuinfo")));
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** From the text of /proc/cpuinfo: the x86 flags avx512_bf16 or amx_bf16, or the ARM feature bf16. */
    static Boolean fromCpuinfo(String cpuinfo) {
        for (String line : cpuinfo.split("\n")) {
            String l = line.toLowerCase(Locale.ROOT);
            if (l.startsWith("flags") || l.startsWith("features")) {
                String flags = " " + l.substring(l.indexOf(':') + 1).trim() + " ";
                return flags.contains(" avx512_bf16 ") || flags.contains(" amx_bf16 ") || flags.contains(" bf16 ");
            }
        }
        return null;
    }

    /** The one-line warning for a bf16 run on this CPU, or null when it has bf16 hardware (or cannot tell). */
    public static String warning() {
        return Boolean.FALSE.equals(hardware()) ? "warning: bf16: true on a CPU without bf16 arithmetic (neither"
                + " AVX512-BF16 nor AMX in /proc/cpuinfo): bf16 matrix products are emulated, so this run may be slower"
                + " than with bf16: false (bf16 still halves the memory of a frozen LoRA base)"
                : null;
    }
}
