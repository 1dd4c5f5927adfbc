package io.sftnative.train.log;

import java.util.LinkedHashMap;
import java.util.Map;

import io.sftnative.json.PyJson;

/**
 * Entries of HF Trainer's {@code log_history} (in {@code trainer_state.json}), with HF's keys and rounding, so that
 * LLaMA-Factory's plots and users' scripts find what they expect. Each returns a new ordered map.
 */
public final class LogHistory {
    private LogHistory() {}

    /**
     * A training logging step: {@code loss} is the mean loss since the previous log, rounded to 4 decimals as HF
     * does; {@code gradNorm} may be null when clipping is off.
     */
    public static Map<String, Object> train(long step, double epoch, double loss, Double gradNorm, double lr,
            Long inputTokensSeen) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("epoch", epoch);
        if (gradNorm != null) {
            m.put("grad_norm", gradNorm);
        }
        m.put("learning_rate", lr);
        m.put("loss", PyJson.round(loss, 4));
        if (inputTokensSeen != null) {
            m.put("num_input_tokens_seen", inputTokensSeen);
        }
        m.put("step", step);
        return m;
    }

    /**
     * An evaluation ({@code prefix} "eval") or prediction ("predict"): {@code metrics} keys get the prefix
     * ({@code loss} becomes {@code eval_loss}), plus HF's speed metrics.
     */
    public static Map<String, Object> eval(String prefix, long step, double epoch, Map<String, Double> metrics,
            double runtimeSeconds, long samples, long batches) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("epoch", epoch);
        metrics.forEach((k, v) -> m.put(k.startsWith(prefix + "_") ? k : prefix + "_" + k, v));
        m.putAll(speed(prefix, runtimeSeconds, samples, batches));
        m.put("step", step);
        return m;
    }

    /** The last entry of a training run ({@code train_loss} is the mean loss over all steps of the run). */
    public static Map<String, Object> trainSummary(long step, double epoch, double trainLoss, double totalFlos,
            double runtimeSeconds, long samples, long steps) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("epoch", epoch);
        m.put("step", step);
        m.put("total_flos", totalFlos);
        m.put("train_loss", trainLoss);
        m.putAll(speed("train", runtimeSeconds, samples, steps));
        return m;
    }

    /** HF's {@code speed_metrics}: runtime rounded to 4 decimals, rates to 3. */
    public static Map<String, Object> speed(String prefix, double runtimeSeconds, long samples, long steps) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put(prefix + "_runtime", PyJson.round(runtimeSeconds, 4));
        if (runtimeSeconds > 0) {
            m.put(prefix + "_samples_per_second", PyJson.round(samples / runtimeSeconds, 3));
            m.put(prefix + "_steps_per_second", PyJson.round(steps / runtimeSeconds, 3));
        }
        return m;
    }
}
