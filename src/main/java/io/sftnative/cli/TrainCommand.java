package io.sftnative.cli;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

import io.sftnative.api.SftTrainer;
import io.sftnative.api.TrainResult;
import io.sftnative.api.TrainingRun;
import io.sftnative.config.ConfigException;
import io.sftnative.config.ConfigLoader;
import io.sftnative.config.SftConfig;
import io.sftnative.distributed.DataParallel;
import io.sftnative.distributed.LocalLauncher;
import io.sftnative.train.Demo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code train [config.yaml] [key=value ...]}; without arguments the built-in demo. */
@Command(name = "train", mixinStandardHelpOptions = true,
        footerHeading = "%nExample:%n",
        footer = {
                "  java -jar sft-native.jar train examples/qwen2_5_lora_sft.yaml learning_rate=2e-4"
                        + " output_dir=saves/run2",
                "  java -jar sft-native.jar train --demo num_train_epochs=30   (the built-in demo with one"
                        + " setting changed)"},
        description = {"Fine-tune (stage sft) or pretrain (stage pt) a model as LLaMA-Factory's train does: a YAML"
                + " config with LLaMA-Factory's keys, then key=value overrides.",
                "Without arguments (or with --demo) runs the built-in demo: a tiny model, the demo tokenizer and"
                        + " dataset from the jar, LoRA SFT with the qwen template; nothing is downloaded.",
                "Ctrl-C stops after the current step and saves a checkpoint; run again to resume."})
final class TrainCommand implements Callable<Integer> {
    @Mixin
    ConfigArgs config;

    @Option(names = "--demo", description = "Run the built-in demo (key=value overrides apply to it).")
    boolean demo;

    @Mixin
    LaunchArgs launch;

    @Override
    public Integer call() throws Exception {
        Path yaml = config.yaml();
        List<String> overrides = config.overrides();
        LocalLauncher.Job job = launch.job(System.getenv());
        if (job != null) {
            return launchRanks(job, yaml, overrides);
        }
        if (yaml == null && (demo || overrides.isEmpty())) {
            return runDemo(overrides);
        }
        if (yaml == null && !ConfigLoader.load(null, overrides).values().containsKey("model_name_or_path")) {
            // Not the demo: key=value alone usually means a forgotten config or model, and training the demo
            // model on the user's settings (their dataset, say) would do something they did not ask for.
            throw new ConfigException("train got key=value settings but no config file and no"
                    + " model_name_or_path. To run the built-in demo with these settings: java -jar sft-native.jar"
                    + " train --demo " + String.join(" ", overrides) + "   To train your own model: java -jar"
                    + " sft-native.jar train CONFIG.yaml [key=value ...] or add model_name_or_path=DIR.");
        }
        SftTrainer trainer = SftTrainer.builder().config(yaml).overrides(overrides).console(true).build();
        return report(runInterruptibly(trainer));
    }

    /** Starts this machine's ranks of a data-parallel job (child JVMs) and waits for them. */
    private int launchRanks(LocalLauncher.Job job, Path yaml, List<String> overrides) throws Exception {
        if (yaml == null && (demo || overrides.isEmpty())) {
            throw new IllegalArgumentException("--nproc-per-node trains a config: give CONFIG [key=value ...] (the"
                    + " demo runs in one process)");
        }
        // a bad config fails here once, not once per rank
        SftConfig cfg = SftConfig.load(yaml, overrides, w -> { });
        DataParallel.checkSupported(cfg.distributed(), job.worldSize());
        DataParallel.checkOptimizer(cfg.distributed(), cfg.training().optim(), job.worldSize());
        DataParallel.checkStage3(cfg.distributed(), job.worldSize(), cfg.training().gradientCheckpointing(),
                cfg.model().quantizationBit());
        System.out.println("launching ranks " + job.nodeRank() * job.nprocPerNode() + ".."
                + ((job.nodeRank() + 1) * job.nprocPerNode() - 1) + " of " + job.worldSize() + " on this machine");
        return LocalLauncher.run(job, LaunchArgs.rankCommand(config.args), Map.of(Relauncher.MARKER, "1",
                "OMP_WAIT_POLICY", "PASSIVE", "OPT_OUT_TRACKING", "true"), System.err);
    }

    /** Runs on the training thread; Ctrl-C (SIGINT/SIGTERM) cancels it so it saves a checkpoint first. */
    static TrainResult runInterruptibly(SftTrainer trainer) throws InterruptedException {
        TrainingRun run = trainer.start();
        Thread hook = new Thread(() -> {
            run.cancel();
            try {
                run.close();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "sft-native-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            return run.await(); // a failure arrives as TrainingFailedException carrying the cause's message
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running: it waits for the run
            }
        }
    }

    private static int report(TrainResult r) {
        if (r.status() == TrainResult.Status.CANCELLED) {
            System.out.println("stopped at step " + r.globalStep() + " of " + r.totalSteps() + "; checkpoint "
                    + r.lastCheckpoint() + " (run the same command again to resume)");
            return 130;
        }
        return 0;
    }

    private int runDemo(List<String> overrides) throws Exception {
        // parsed before anything is written: a malformed override fails with the usual message
        Map<String, Object> user = ConfigLoader.load(null, overrides).values();
        Path out = user.get("output_dir") != null ? Path.of(String.valueOf(user.get("output_dir")))
                : Path.of("saves", "demo");
        Map<String, Object> keys = Demo.config(out);
        long seed = ((Number) keys.get("seed")).longValue();
        System.out.println("sft-native demo: a tiny Qwen2-shaped model (random weights) learns 133 templated facts with"
                + " LoRA; nothing is downloaded.");
        Path model = Demo.writeAssets(out, seed);
        System.out.println("demo model and tokenizer written to " + model + ", data to " + out.resolve("data"));
        keys.putAll(user); // the command line wins over the demo's settings
        SftTrainer.Builder b = SftTrainer.builder().console(true);
        keys.forEach(b::set);
        SftTrainer trainer = b.build();
        List<String> before = Demo.answer(model, null, Demo.PROMPTS, 24);
        TrainResult r = runInterruptibly(trainer);
        if (r.status() != TrainResult.Status.COMPLETED) {
            System.out.println("demo stopped at step " + r.globalStep() + " of " + r.totalSteps() + " (checkpoint "
                    + r.lastCheckpoint() + "); `train --demo` starts over, `train --demo overwrite_output_dir=false`"
                    + " resumes it");
            return 130;
        }
        Path adapter = "lora".equals(trainer.config().finetuning().finetuningType()) ? out : null;
        List<String> after = Demo.answer(adapter == null ? out : model, adapter, Demo.PROMPTS, 24);
        System.out.println();
        System.out.println("Generations (greedy) for prompts from the training set, before -> after training:");
        for (int i = 0; i < Demo.PROMPTS.size(); i++) {
            System.out.println("  Q: " + Demo.PROMPTS.get(i).replace("\n", " / "));
            System.out.println("     before: " + oneLine(before.get(i)));
            System.out.println("     after:  " + oneLine(after.get(i)));
        }
        System.out.println();
        System.out.printf(Locale.ROOT, "training loss %.3f (mean over the run); results in %s%n", r.trainLoss(),
                out.toAbsolutePath());
        System.out.println("  " + (adapter != null ? "adapter: " + out.resolve("adapter_model.safetensors")
                : "model: " + out.resolve("model.safetensors")) + " (base model: " + model + ")");
        if (trainer.config().finetuning().plotLoss()) {
            System.out.println("  loss plot: " + out.resolve("training_loss.png"));
        }
        System.out.println("  log: " + out.resolve("trainer_log.jsonl"));
        return 0;
    }

    private static String oneLine(String s) {
        StringBuilder sb = new StringBuilder();
        s.codePoints().forEach(c -> sb.appendCodePoint(Character.isISOControl(c) ? ' ' : c));
        String t = sb.toString().strip();
        return t.isEmpty() ? "(nothing visible)" : t;
    }
}
