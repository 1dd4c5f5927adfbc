package io.sftnative.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

import io.sftnative.testing.Cli;

/** The command line points the way: every --help ends with a complete example; misuse says what to type. */
class CliGuidanceTest {
    private static final List<String> COMMANDS = List.of("train", "eval", "export", "chat", "generate", "info",
            "native-info", "preflight");

    @Test
    void everyHelpShowsACompleteExample() {
        Cli.Run root = Cli.run("--help");
        assertEquals(0, root.code());
        assertTrue(root.out().contains("Example:\n  java -jar sft-native.jar train"), root.out());
        for (String command : COMMANDS) {
            Cli.Run r = Cli.run(command, "--help");
            assertEquals(0, r.code(), command);
            String example = r.out().substring(r.out().indexOf("Example:") + "Example:".length()).strip();
            assertTrue(r.out().contains("Example:"), command + " --help has no example:\n" + r.out());
            assertTrue(example.startsWith("java -jar sft-native.jar " + command + " "), command + ": " + example);
        }
    }

    @Test
    void keyValueWithoutAConfigOrModelPointsToTheDemo() {
        Cli.Run r = Cli.run("train", "output_dir=x", "num_train_epochs=2");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("no config file and no model_name_or_path"), r.err());
        assertTrue(r.err().contains("train --demo output_dir=x num_train_epochs=2"), r.err());
        assertTrue(r.out().isEmpty(), "nothing trained or written: " + r.out());
    }
}
