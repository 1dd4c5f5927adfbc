package io.sftnative.train.log;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.GraphicsEnvironment;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LossPlotTest {
    @TempDir
    Path dir;

    @Test
    void smoothingMatchesLlamaFactory() {
        // Python: llamafactory.extras.plotting.smooth([2.0, 1.5, 1.7, 1.2, 0.9])
        assertArrayEquals(new double[] {2.0, 1.5559588507972182, 1.6838792456462035, 1.2541546530219727,
            0.9396361747751943}, LossPlot.smooth(new double[] {2.0, 1.5, 1.7, 1.2, 0.9}), 1e-15);
        assertEquals(0, LossPlot.smooth(new double[0]).length);
    }

    @Test
    void rendersPngsHeadless() throws Exception {
        System.setProperty("java.awt.headless", "true");
        assertTrue(GraphicsEnvironment.isHeadless());
        List<Map<String, Object>> history = new ArrayList<>();
        for (int step = 1; step <= 40; step++) {
            history.add(LogHistory.train(step, step / 40.0, 3.0 / Math.sqrt(step) + 0.1 * Math.sin(step), 1.0,
                    1e-4, null));
            if (step % 10 == 0) {
                history.add(Map.of("eval_loss", 2.0 / step, "step", (long) step, "epoch", step / 40.0));
            }
        }
        List<Path> written = LossPlot.plotAll(dir, history, LossPlot.SFT_KEYS);
        assertEquals(List.of(dir.resolve("training_loss.png"), dir.resolve("training_eval_loss.png")), written,
                "no eval_accuracy in the history: no plot for it");
        BufferedImage img = ImageIO.read(written.get(0).toFile());
        assertEquals(640, img.getWidth());
        assertEquals(480, img.getHeight());
        assertTrue(pixels(img, 0x1f77b4) > 200, "the smoothed train loss is drawn in #1f77b4");
        assertTrue(pixels(img, 0xff7f0e) > 20, "training_loss.png also shows the eval loss in #ff7f0e");
        BufferedImage evalOnly = ImageIO.read(written.get(1).toFile());
        assertEquals(0, pixels(evalOnly, 0xff7f0e), "training_eval_loss.png keeps LLaMA-Factory's single series");
    }

    private static int pixels(BufferedImage img, int rgb) {
        int n = 0;
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                if ((img.getRGB(x, y) & 0xffffff) == rgb) {
                    n++;
                }
            }
        }
        return n;
    }
}
