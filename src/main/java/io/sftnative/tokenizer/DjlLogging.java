package io.sftnative.tokenizer;

import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * DJL logs its platform and GPU probing on every tokenizer load (through SLF4J to java.util.logging); users should
 * only see its real warnings.
 */
final class DjlLogging {
    // JUL holds loggers weakly: keep a reference or the level is forgotten
    private static final Logger DJL = Logger.getLogger("ai.djl");
    // DJL probes CUDA to pick native builds; tokenizers run on the CPU, so a failed probe is not worth a warning
    private static final Logger CUDA = Logger.getLogger("ai.djl.util.cuda");

    private DjlLogging() {}

    static void quiet() {
        if (DJL.getLevel() == null) {
            DJL.setLevel(Level.WARNING);
        }
        if (CUDA.getLevel() == null) {
            CUDA.setLevel(Level.SEVERE);
        }
    }
}
