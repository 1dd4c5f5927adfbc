package io.sftnative.bench;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.internal.chartpart.Chart;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.SeriesMarkers;

import io.sftnative.files.AtomicFiles;

/**
 * The harness's PNG: real tokens/s and peak RSS per mode (sft-native next to the reference's run on the same
 * batches), and the loss curves of both sides for the modes both ran. Drawn off-screen (headless AWT).
 */
final class HarnessCharts {
    private static final Color OURS = new Color(0x1f, 0x77, 0xb4);
    private static final Color REFERENCE = new Color(0xff, 0x7f, 0x0e);

    private HarnessCharts() {}

    static void write(HarnessReport.Summary s, Path png) throws IOException {
        System.setProperty("java.awt.headless", "true");
        List<Chart<?, ?>> charts = new ArrayList<>();
        charts.add(bars(s, "real tokens/s, undisturbed steps (higher is better)", "tokens/s", false));
        charts.add(bars(s, "peak RSS in GB (lower is better)", "GB", true));
        charts.add(losses(s));
        try {
            AtomicFiles.write(png, out -> BitmapEncoder.saveBitmap(charts, 1, charts.size(), out,
                    BitmapEncoder.BitmapFormat.PNG));
        } catch (RuntimeException | LinkageError e) { // AWT without fonts (bare containers) fails here
            throw new IOException("could not draw " + png + " (" + e + "): the JVM's AWT needs fonts (e.g."
                    + " fonts-dejavu-core); the JSON and Markdown results are written", e);
        }
    }

    /** One bar per mode and side; the reference's bar is its plain run on the same batches (no fused CE there). */
    private static CategoryChart bars(HarnessReport.Summary s, String title, String unit, boolean rss) {
        CategoryChart c = new CategoryChartBuilder().width(640).height(560).title(title).yAxisTitle(unit).build();
        style(c.getStyler());
        c.getStyler().setXAxisLabelRotation(30);
        List<String> modes = new ArrayList<>();
        List<Double> ours = new ArrayList<>();
        List<Double> ref = new ArrayList<>();
        for (HarnessReport.RunStats r : s.runs()) {
            if (!r.side().equals(HarnessPlan.Run.OURS)) {
                continue;
            }
            modes.add(r.mode());
            ours.add(rss ? r.peakRssBytes() / 1e9 : speed(r));
            HarnessReport.RunStats p = HarnessReport.find(s.runs(), HarnessPlan.Mode.parse(r.mode()).referenceMode(),
                    HarnessPlan.Run.REFERENCE);
            ref.add(p == null ? 0.0 : rss ? p.peakRssBytes() / 1e9 : speed(p));
        }
        c.addSeries("sft-native", modes, ours).setFillColor(OURS);
        c.addSeries("PyTorch eager (plain CE, same batches)", modes, ref).setFillColor(REFERENCE);
        return c;
    }

    /** Tokens/s over the steps no other process disturbed when there are enough of them, else over all. */
    private static double speed(HarnessReport.RunStats r) {
        return r.cleanSteps() >= HarnessReport.MIN_CLEAN ? r.cleanTokensPerSecond() : r.tokensPerSecond();
    }

    private static XYChart losses(HarnessReport.Summary s) {
        XYChart c = new XYChartBuilder().width(640).height(560).title("training loss, same checkpoint and batches")
                .xAxisTitle("step").yAxisTitle("loss").build();
        style(c.getStyler());
        for (HarnessReport.Comparison cmp : s.comparisons()) {
            if (cmp.maxLossDiff() == null) {
                continue;
            }
            for (String side : List.of(HarnessPlan.Run.OURS, HarnessPlan.Run.REFERENCE)) {
                // a fused mode is compared with the reference's plain run of the same batches
                HarnessReport.RunStats r = HarnessReport.find(s.runs(), side.equals(HarnessPlan.Run.OURS) ? cmp.mode()
                        : cmp.referenceMode(), side);
                if (r == null) {
                    continue;
                }
                double[] x = new double[r.losses().size()];
                double[] y = new double[x.length];
                for (int i = 0; i < x.length; i++) {
                    x[i] = i + 1;
                    y[i] = r.losses().get(i);
                }
                XYSeries series = c.addSeries(cmp.mode() + (side.equals(HarnessPlan.Run.OURS) ? " sft-native"
                        : " PyTorch"), x, y);
                if (side.equals(HarnessPlan.Run.OURS)) {
                    series.setMarker(SeriesMarkers.NONE);
                } else { // markers only, so the line of ours shows through where they agree
                    series.setMarker(SeriesMarkers.CIRCLE);
                    series.setLineStyle(SeriesLines.NONE);
                }
            }
        }
        if (c.getSeriesMap().isEmpty()) {
            c.addSeries("no mode ran on both sides", new double[] {0}, new double[] {0});
        }
        return c;
    }

    private static void style(Styler st) {
        st.setChartBackgroundColor(Color.WHITE);
        st.setPlotBackgroundColor(Color.WHITE);
        st.setLegendPosition(Styler.LegendPosition.OutsideS);
    }
}
