package io.sftnative.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import io.sftnative.config.SftConfig;
import picocli.CommandLine.Parameters;

/**
 * The {@code [CONFIG] [KEY=VALUE ...]} arguments of train, eval, export and preflight (a picocli mixin). As with
 * {@code llamafactory-cli}, {@code --key value} and {@code --key=value} work wherever {@code key=value} does (HF's
 * argument parser spelling; a {@code --flag} followed by another option or nothing means {@code flag=true}).
 */
final class ConfigArgs {
    @Parameters(arity = "0..*", paramLabel = "CONFIG|KEY=VALUE",
            description = "A YAML config (LLaMA-Factory keys), then key=value (or --key value, --key=value) overrides.")
    List<String> args = new ArrayList<>();

    /** The YAML config: the first argument when it has no '=' (and is no --option); null when there is none. */
    Path yaml() {
        List<String> a = normalized(args);
        return a.isEmpty() || a.get(0).contains("=") ? null : Path.of(a.get(0));
    }

    /** Every argument after the YAML config (a later argument without '=' is left for the config to reject). */
    List<String> overrides() {
        List<String> a = normalized(args);
        return new ArrayList<>(yaml() == null ? a : a.subList(1, a.size()));
    }

    /** The config the arguments name, with the YAML's and the overrides' warnings on stderr. */
    SftConfig load() {
        return SftConfig.load(yaml(), overrides(), w -> System.err.println("warning: " + w));
    }

    /** {@code --key value}, {@code --key=value} and {@code --flag} rewritten as {@code key=value}. */
    static List<String> normalized(List<String> args) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (!a.startsWith("--") || a.length() == 2) {
                out.add(a);
                continue;
            }
            String body = a.substring(2);
            if (body.contains("=")) {
                out.add(body);
            } else if (i + 1 < args.size() && !args.get(i + 1).startsWith("--")) {
                out.add(body + "=" + args.get(++i));
            } else {
                out.add(body + "=true");
            }
        }
        return out;
    }

    /** Whether an argument names a config file (.yaml, .yml or .json) rather than a model directory. */
    static boolean isConfigFile(String arg) {
        String a = arg.toLowerCase(Locale.ROOT);
        return !arg.contains("=") && (a.endsWith(".yaml") || a.endsWith(".yml") || a.endsWith(".json"));
    }
}
