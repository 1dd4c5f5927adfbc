package io.sftnative.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.sftnative.config.SftConfig;
import picocli.CommandLine.Parameters;

/** The {@code [CONFIG] [KEY=VALUE ...]} arguments of train, eval, export and preflight (a picocli mixin). */
final class ConfigArgs {
    @Parameters(arity = "0..*", paramLabel = "CONFIG|KEY=VALUE",
            description = "A YAML config (LLaMA-Factory keys), then key=value overrides.")
    List<String> args = new ArrayList<>();

    /** The YAML config: the first argument when it has no '='; null when there is none. */
    Path yaml() {
        return args.isEmpty() || args.get(0).contains("=") ? null : Path.of(args.get(0));
    }

    /** Every argument after the YAML config (a later argument without '=' is left for the config to reject). */
    List<String> overrides() {
        return new ArrayList<>(yaml() == null ? args : args.subList(1, args.size()));
    }

    /** The config the arguments name, with the YAML's and the overrides' warnings on stderr. */
    SftConfig load() {
        return SftConfig.load(yaml(), overrides(), w -> System.err.println("warning: " + w));
    }
}
