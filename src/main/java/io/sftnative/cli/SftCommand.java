package io.sftnative.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The root command: lists the sub-commands. Each sub-command is a thin layer over the public API. */
@Command(name = "sft-native",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        footerHeading = "%nExample:%n",
        footer = {
                "  java -jar sft-native.jar train   (the built-in demo: a tiny model learns 133 facts, ~1 minute)",
                "  java -jar sft-native.jar train examples/qwen2_5_lora_sft.yaml   (then `COMMAND --help`)"},
        description = "Supervised fine-tuning of LLMs on the JVM (libtorch + native 4/8-bit and fused CE kernels).",
        subcommands = {
                CommandLine.HelpCommand.class,
                InfoCommand.class, GenerateCommand.class, PreflightCommand.class, NativeInfoCommand.class,
                ExportCommand.class, ChatCommand.class,
                TrainCommand.class, EvalCommand.class,
        })
public final class SftCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new SftCommand());
        cl.setExecutionExceptionHandler(new ErrorHandler());
        // llamafactory-cli's `--key value` spelling: options no command declares reach ConfigArgs as arguments
        for (String name : new String[] {"train", "eval", "export", "preflight", "chat"}) {
            cl.getSubcommands().get(name).setUnmatchedOptionsArePositionalParams(true);
        }
        return cl;
    }

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }
}
