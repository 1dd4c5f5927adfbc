package io.sftnative.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** numpy's generators bit for bit against numpy 2.4 (tools/golden/gen_numpy_sampling_golden.py). */
class NumpyRandomTest {
    static JsonNode golden;

    @BeforeAll
    static void load() throws IOException {
        try (InputStream in = NumpyRandomTest.class.getResourceAsStream("/golden/data/numpy_sampling.json")) {
            golden = new ObjectMapper().readTree(in);
        }
    }

    static int[] ints(JsonNode n) {
        int[] a = new int[n.size()];
        for (int i = 0; i < a.length; i++) {
            a[i] = n.get(i).asInt();
        }
        return a;
    }

    @Test
    void legacyPermutationAndChoice() {
        for (JsonNode c : golden.get("legacy")) {
            NumpyRandomState r = new NumpyRandomState(c.get("seed").asLong());
            int n = c.get("n").asInt();
            int[] perm = r.permutation(n);
            if (n > 100) {
                perm = concat(Arrays.copyOf(perm, 10), Arrays.copyOfRange(perm, n - 10, n));
            }
            assertArrayEquals(ints(c.get("permutation")), perm, "permutation, seed " + c.get("seed"));
            assertArrayEquals(ints(c.get("choice")), r.choice(n, c.get("size").asInt()), "choice " + c);
        }
    }

    @Test
    void numSamplesSharesTheGlobalState() {
        JsonNode g = golden.get("num_samples");
        NumpyRandomState r = new NumpyRandomState(g.get("seed").asLong());
        for (String which : new String[] {"first", "second"}) {
            JsonNode d = g.get(which);
            assertArrayEquals(ints(d.get("indices")),
                    DatasetSampling.numSamples(r, d.get("n").asInt(), d.get("num_samples").asInt()), which);
        }
    }

    @Test
    void generatorRandomAndChoiceWithProbabilities() {
        for (JsonNode c : golden.get("generator")) {
            NumpyGenerator g = new NumpyGenerator(c.get("seed").asLong());
            for (JsonNode d : c.get("random")) {
                assertEquals(d.asDouble(), g.nextDouble(), 0.0, "random(), seed " + c.get("seed"));
            }
            double[] p = new double[c.get("p").size()];
            for (int i = 0; i < p.length; i++) {
                p[i] = c.get("p").get(i).asDouble();
            }
            assertArrayEquals(ints(c.get("choice")), g.choice(p, 1000), "choice, seed " + c.get("seed"));
        }
    }

    private static int[] concat(int[] a, int[] b) {
        int[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
