package io.sftnative.config;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** HF's {@code report_to}: which experiment trackers receive the logged metrics. */
public final class Tracking {
    /** Integrations HF knows that need a network service or a package we do not have. */
    static final Set<String> REMOTE = Set.of("wandb", "mlflow", "swanlab", "comet_ml", "clearml", "neptune",
            "dagshub", "dvclive", "flyte", "codecarbon", "azure_ml", "trackio");

    private Tracking() {}

    /**
     * The report_to list, lower-cased: {@code none} (default, as transformers 5) → empty; {@code all} →
     * {@code tensorboard} (the one integration this build writes). Unknown names fail.
     */
    static List<String> reportTo(RawConfig c) {
        List<String> raw = c.list("report_to");
        List<String> out = new ArrayList<>();
        for (String r : raw) {
            String v = r.toLowerCase(Locale.ROOT);
            if (v.equals("none") || v.equals("null")) {
                continue;
            }
            if (v.equals("all")) {
                v = "tensorboard";
            }
            if (!v.equals("tensorboard") && !REMOTE.contains(v)) {
                throw new ConfigException("key 'report_to' (" + c.origin("report_to") + ") has '" + r + "'; use"
                        + " none, all, tensorboard (or wandb, mlflow, swanlab, ...: warned about, not sent)");
            }
            if (!out.contains(v)) {
                out.add(v);
            }
        }
        if (raw.size() > 1 && raw.stream().anyMatch(x -> x.equalsIgnoreCase("none"))) {
            throw new ConfigException("key 'report_to' (" + c.origin("report_to") + ") lists none together with"
                    + " other integrations: keep one");
        }
        return List.copyOf(out);
    }

    /** The warning for each requested integration that this build does not send to, or null when none. */
    public static String unsupportedWarning(List<String> reportTo) {
        List<String> remote = reportTo.stream().filter(REMOTE::contains).toList();
        if (remote.isEmpty()) {
            return null;
        }
        return "warning: report_to " + String.join(", ", remote) + " needs a network service that sft-native does"
                + " not talk to; the metrics go to trainer_log.jsonl in output_dir"
                + (reportTo.contains("tensorboard") ? " and the TensorBoard files in logging_dir"
                        : " (add tensorboard to report_to for TensorBoard event files)");
    }
}
