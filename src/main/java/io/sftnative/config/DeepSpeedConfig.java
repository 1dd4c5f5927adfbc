package io.sftnative.config;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * The parts of a DeepSpeed JSON config ({@code deepspeed: ds_z3_config.json}, as LLaMA-Factory ships them) and of
 * HF's {@code fsdp} key that decide what a run computes: the ZeRO stage, and the batch, clipping and precision
 * values, whose {@code "auto"} is resolved from the YAML keys as HF's DeepSpeed integration does (and a number that
 * contradicts the YAML is an error, as there). Options that change the computation in ways sft-native does not
 * implement (offloading, fp16, fp8, DeepSpeed's own optimizer or scheduler, quantized ZeRO) stop the run naming
 * the key. Pure performance knobs (bucket sizes, overlap_comm, stage3_* limits, monitors) are accepted and have no
 * effect.
 *
 * @param stage  ZeRO stage 0..3 (0 = plain data parallel)
 * @param origin where it came from, for messages ({@code deepspeed file x.json}, {@code fsdp: full_shard})
 */
public record DeepSpeedConfig(int stage, String origin) {

    public static final DeepSpeedConfig NONE = new DeepSpeedConfig(0, null);

    /** From the {@code deepspeed} and {@code fsdp} keys (at most one of them), checked against {@code t}. */
    static DeepSpeedConfig from(RawConfig c, TrainingArgs t) {
        String file = c.string("deepspeed", null);
        List<String> fsdp = c.list("fsdp");
        c.has("fsdp_config"); // read: its wrapping policy has no meaning here (the unit is the decoder layer)
        boolean fsdpOn = !fsdp.isEmpty() && !(fsdp.size() == 1 && fsdp.get(0).equalsIgnoreCase("false"));
        if (file != null && fsdpOn) {
            throw new ConfigException("both deepspeed (" + c.origin("deepspeed") + ") and fsdp (" + c.origin("fsdp")
                    + ") are set: choose one way to shard");
        }
        if (fsdpOn) {
            return fsdp(fsdp);
        }
        return file == null ? NONE : read(Path.of(file), c.origin("deepspeed"), t);
    }

    private static DeepSpeedConfig fsdp(List<String> options) {
        int stage = -1;
        for (String raw : options) {
            for (String o : raw.trim().split("\\s+")) {
                switch (o.toLowerCase(Locale.ROOT)) {
                    case "full_shard", "true" -> stage = 3;
                    case "shard_grad_op" -> stage = 2;
                    case "no_shard" -> stage = 0;
                    case "auto_wrap" -> { }
                    case "offload" -> throw new ConfigException("fsdp: offload (parameters and gradients on the CPU)"
                            + " is not implemented; remove it");
                    default -> throw new ConfigException("fsdp: " + o + " is not supported: use full_shard (ZeRO-3),"
                            + " shard_grad_op (ZeRO-2) or no_shard (plain data parallel), with auto_wrap");
                }
            }
        }
        if (stage < 0) {
            throw new ConfigException("fsdp " + options + " names no sharding strategy: add full_shard, shard_grad_op"
                    + " or no_shard");
        }
        return new DeepSpeedConfig(stage, "fsdp: " + String.join(" ", options));
    }

    static DeepSpeedConfig read(Path file, String keyOrigin, TrainingArgs t) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(file));
        } catch (IOException e) {
            throw new ConfigException("deepspeed (" + keyOrigin + "): cannot read " + file + ": " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new ConfigException("deepspeed: " + file + " is not a JSON object");
        }
        String where = "deepspeed config " + file;
        for (String key : List.of("optimizer", "scheduler")) {
            if (root.has(key)) {
                throw new ConfigException(where + ": the '" + key + "' section is not supported: the optimizer and"
                        + " the schedule come from the YAML keys (optim, learning_rate, lr_scheduler_type, ...);"
                        + " remove it");
            }
        }
        requireOff(root, "fp16", where, "fp16 training is not implemented (use bf16)");
        requireOff(root, "fp8", where, "fp8 training is not implemented");
        requireOff(root, "amp", where, "apex AMP is not implemented (use bf16)");
        matches(root, "train_micro_batch_size_per_gpu", t.perDeviceTrainBatchSize(), "per_device_train_batch_size",
                where);
        matches(root, "gradient_accumulation_steps", t.gradientAccumulationSteps(), "gradient_accumulation_steps",
                where);
        matches(root, "gradient_clipping", t.maxGradNorm(), "max_grad_norm", where);
        JsonNode bf16 = root.path("bf16").path("enabled");
        if (bf16.isBoolean() && bf16.asBoolean() != t.bf16()) {
            throw new ConfigException(where + ": bf16.enabled is " + bf16.asBoolean() + " but the YAML's bf16 is "
                    + t.bf16() + ": make them agree (or write \"auto\")");
        }
        JsonNode zero = root.path("zero_optimization");
        int stage = zero.path("stage").isMissingNode() ? 0 : zero.path("stage").asInt(-1);
        if (stage < 0 || stage > 3) {
            throw new ConfigException(where + ": zero_optimization.stage must be 0, 1, 2 or 3, got "
                    + zero.path("stage"));
        }
        List<String> refused = new ArrayList<>();
        for (String key : List.of("offload_optimizer", "offload_param")) {
            JsonNode device = zero.path(key).path("device");
            if (zero.has(key) && !(device.isTextual() && device.asText().equalsIgnoreCase("none"))) {
                refused.add("zero_optimization." + key);
            }
        }
        for (String key : List.of("zero_quantized_weights", "zero_quantized_gradients", "zero_hpz_partition_size")) {
            JsonNode v = zero.path(key);
            if ((v.isBoolean() && v.asBoolean()) || (v.isNumber() && v.asInt() > 1)) {
                refused.add("zero_optimization." + key);
            }
        }
        if (!refused.isEmpty()) {
            throw new ConfigException(where + ": " + String.join(", ", refused) + " not implemented: remove "
                    + (refused.size() == 1 ? "it" : "them") + " (LLaMA-Factory's ds_z" + stage
                    + "_config.json has none)");
        }
        return new DeepSpeedConfig(stage, where);
    }

    private static void requireOff(JsonNode root, String section, String where, String why) {
        JsonNode enabled = root.path(section).path("enabled");
        boolean on = enabled.isBoolean() ? enabled.asBoolean()
                : root.has(section) && !enabled.isTextual() && !enabled.isMissingNode();
        if (on) {
            throw new ConfigException(where + ": " + section + ".enabled: " + why);
        }
    }

    /** A number must equal the YAML's value; "auto" (or absent) takes it. */
    private static void matches(JsonNode root, String key, double ours, String yamlKey, String where) {
        JsonNode v = root.path(key);
        if (v.isMissingNode() || (v.isTextual() && v.asText().equalsIgnoreCase("auto"))) {
            return;
        }
        if (!v.isNumber() || v.asDouble() != ours) {
            throw new ConfigException(where + ": " + key + " is " + v + " but the YAML's " + yamlKey + " is "
                    + (ours == Math.rint(ours) ? String.valueOf((long) ours) : String.valueOf(ours))
                    + ": make them agree, or write \"auto\" to take the YAML's");
        }
    }
}
