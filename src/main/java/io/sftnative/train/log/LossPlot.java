package io.sftnative.train.log;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import io.sftnative.files.AtomicFiles;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * LLaMA-Factory's {@code plot_loss}: for each key ({@code loss}, {@code eval_loss}, {@code eval_accuracy}) found in
 * the log history, a 640x480 PNG {@code training_<key>.png} with the raw values (light) and the TensorBoard-style
 * EMA {@link #smooth} (solid) against the step. Drawn with XChart off-screen: works with
 * {@code java.awt.headless=true}. Beyond LLaMA-Factory, {@code training_loss.png} also carries the eval loss (when
 * evaluated) as a third series, so train and eval loss can be compared in one picture.
 */
public final class LossPlot {
    /** The keys LLaMA-Factory plots after SFT (plot_loss: true). */
    public static final List<String> SFT_KEYS = List.of("loss", "eval_loss", "eval_accuracy");
    private static final Color BLUE = new Color(0x1f, 0x77, 0xb4);
    private static final Color LIGHT_BLUE = new Color(0x1f, 0x77, 0xb4, 102); // alpha 0.4
    private static final Color ORANGE = new Color(0xff, 0x7f, 0x0e);

    private LossPlot() {}

    /**
     * Writes {@code training_<key>.png} into {@code outputDir} for every key of {@code keys} present in
     * {@code logHistory}; returns the files written (keys without values are skipped, as LLaMA-Factory warns).
     */
    public static List<Path> plotAll(Path outputDir, List<Map<String, Object>> logHistory, List<String> keys)
            throws IOException {
        List<Path> written = new ArrayList<>();
        for (String key : keys) {
            double[][] points = series(logHistory, key);
            if (points[0].length == 0) {
                continue;
            }
            double[][] eval = "loss".equals(key) ? series(logHistory, "eval_loss") : null;
            Path png = outputDir.resolve("training_" + key.replace("/", "_") + ".png");
            AtomicFiles.writeBytes(png, render("training " + key + " of " + outputDir, key, points[0], points[1],
                    eval != null && eval[0].length > 0 ? eval : null));
            written.add(png);
        }
        return written;
    }

    /** {steps, values} of every log entry that has {@code key}. */
    private static double[][] series(List<Map<String, Object>> logHistory, String key) {
        List<double[]> points = new ArrayList<>();
        for (Map<String, Object> entry : logHistory) {
            if (entry.get(key) instanceof Number v && entry.get("step") instanceof Number step) {
                points.add(new double[] {step.doubleValue(), v.doubleValue()});
            }
        }
        return new double[][] {points.stream().mapToDouble(p -> p[0]).toArray(),
                points.stream().mapToDouble(p -> p[1]).toArray()};
    }

    /** The PNG bytes of one plot. */
    public static byte[] render(String title, String yLabel, double[] steps, double[] values) throws IOException {
        return render(title, yLabel, steps, values, null);
    }

    /** The PNG bytes of one plot; {@code eval} = {steps, values} of the eval loss drawn on top, or null. */
    public static byte[] render(String title, String yLabel, double[] steps, double[] values, double[][] eval)
            throws IOException {
        if (steps.length != values.length || steps.length == 0) {
            throw new IllegalArgumentException("need as many steps as values, at least one");
        }
        try {
            XYChart chart = new XYChartBuilder().width(640).height(480).title(title).xAxisTitle("step")
                    .yAxisTitle(yLabel).build();
            chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
            chart.getStyler().setChartBackgroundColor(Color.WHITE);
            chart.getStyler().setPlotBackgroundColor(Color.WHITE);
            XYSeries raw = chart.addSeries("original", steps, values);
            raw.setLineColor(LIGHT_BLUE);
            raw.setMarker(SeriesMarkers.NONE);
            XYSeries smoothed = chart.addSeries("smoothed", steps, smooth(values));
            smoothed.setLineColor(BLUE);
            smoothed.setMarker(SeriesMarkers.NONE);
            if (eval != null) {
                XYSeries evalSeries = chart.addSeries("eval", eval[0], eval[1]);
                evalSeries.setLineColor(ORANGE);
                evalSeries.setMarkerColor(ORANGE);
                evalSeries.setMarker(SeriesMarkers.CIRCLE);
            }
            return BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG);
        } catch (RuntimeException | LinkageError e) { // AWT without fonts (bare containers) fails here
            throw new IOException("could not draw the loss plot (" + e + "): the JVM's AWT needs fonts (install"
                    + " fontconfig and a font package, e.g. fonts-dejavu-core); training results are unaffected", e);
        }
    }

    /**
     * LLaMA-Factory's smoothing (TensorBoard's EMA): {@code weight = 1.8 * (sigmoid(0.05 * n) - 0.5)},
     * {@code s_0 = x_0}, {@code s_i = weight * s_(i-1) + (1 - weight) * x_i}.
     */
    public static double[] smooth(double[] scalars) {
        double[] out = new double[scalars.length];
        if (scalars.length == 0) {
            return out;
        }
        double weight = 1.8 * (1 / (1 + Math.exp(-0.05 * scalars.length)) - 0.5);
        double last = scalars[0];
        for (int i = 0; i < scalars.length; i++) {
            last = last * weight + (1 - weight) * scalars[i];
            out[i] = last;
        }
        return out;
    }
}
