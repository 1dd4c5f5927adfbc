package io.sftnative.cli;

import picocli.CommandLine;

/** Entry point of {@code java -jar sft-native.jar}. */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        if (Relauncher.needed()) {
            int code = Relauncher.relaunch(Main.class, args);
            if (code >= 0) {
                System.exit(code);
            }
        }
        ParentWatch.startIfChild(); // a relaunched child stops when its launcher is killed (even by kill -9)
        System.exit(run(args));
    }

    /** Runs the CLI in this JVM and returns the exit code (tests call this). */
    public static int run(String... args) {
        return SftCommand.commandLine().execute(args);
    }
}
