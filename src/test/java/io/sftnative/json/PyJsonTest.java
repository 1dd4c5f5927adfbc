package io.sftnative.json;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

/** Expected strings are Python 3.11's json.dumps / repr / round output for the same values. */
class PyJsonTest {
    @Test
    void floatsAsPythonRepr() {
        double[] values = {0.0, -0.0, 1.0, 0.1, 1e-05, 0.0001, 0.00012345, 2e-4, 5e-5, 1.5e-05, 123.456, 1e16, 1e15,
            1234567890123456.0, 12345678901234567.0, 1e22, 1.7976931348623157e308, 5e-324, 2.2250738585072014e-308,
            0.30000000000000004, 100.0, 3.14159, 1.0 / 3, 2.0 / 3, -7.25e-07, 1e-4, 0.001, Double.NaN,
            Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Math.pow(2, 70), 6.02214076e23};
        String[] python = {"0.0", "-0.0", "1.0", "0.1", "1e-05", "0.0001", "0.00012345", "0.0002", "5e-05", "1.5e-05",
            "123.456", "1e+16", "1000000000000000.0", "1234567890123456.0", "1.2345678901234568e+16", "1e+22",
            "1.7976931348623157e+308", "5e-324", "2.2250738585072014e-308", "0.30000000000000004", "100.0", "3.14159",
            "0.3333333333333333", "0.6666666666666666", "-7.25e-07", "0.0001", "0.001", "NaN", "Infinity",
            "-Infinity", "1.1805916207174113e+21", "6.02214076e+23"};
        for (int i = 0; i < values.length; i++) {
            assertEquals(python[i], PyJson.floatRepr(values[i]), "repr of " + values[i]);
        }
    }

    @Test
    void powersOfTwoAndTinySubnormalsAsPythonRepr() {
        // At a power of two the gap below is half the gap above: the shortest digits may lie on the far side.
        assertEquals("7.120236347223045e-307", PyJson.floatRepr(Math.scalb(1.0, -1017)));
        assertEquals("5.858190679279809e-244", PyJson.floatRepr(Math.scalb(1.0, -808)));
        assertEquals("4.887898181599368e-150", PyJson.floatRepr(Math.scalb(1.0, -496)));
        // One significant digit suffices here (Java's Double.toString would print two: 9.9E-324).
        assertEquals("1e-323", PyJson.floatRepr(2 * Double.MIN_VALUE));
        assertEquals("5e-323", PyJson.floatRepr(10 * Double.MIN_VALUE));
        assertEquals("9e-323", PyJson.floatRepr(18 * Double.MIN_VALUE));
        assertEquals("1e-322", PyJson.floatRepr(20 * Double.MIN_VALUE));
    }

    @Test
    void randomDoublesMatchPythonReprAndRound() throws Exception {
        com.fasterxml.jackson.databind.JsonNode golden;
        try (var in = getClass().getResourceAsStream("/golden/log/float_repr.json")) {
            golden = new com.fasterxml.jackson.databind.ObjectMapper().readTree(in);
        }
        assertEquals(true, golden.size() > 300);
        for (com.fasterxml.jackson.databind.JsonNode v : golden) {
            double x = Double.longBitsToDouble(v.get("bits").asLong());
            assertEquals(v.get("repr").asText(), PyJson.floatRepr(x), "repr of bits " + v.get("bits"));
            if (!v.get("round4").isNull()) {
                assertEquals(v.get("round4").asText(), PyJson.floatRepr(PyJson.round(x, 4)), "round of " + x);
            }
        }
    }

    @Test
    void dumpsLikePython() {
        Map<String, Object> inner = new LinkedHashMap<>();
        inner.put("x", "é😀\n\"\\");
        inner.put("y", List.of());
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("b", Arrays.asList(1, 2.5, null, true));
        m.put("a", inner);
        m.put("c", Map.of());
        assertEquals("{\"b\": [1, 2.5, null, true], \"a\": {\"x\": \"\\u00e9\\ud83d\\ude00\\n\\\"\\\\\", \"y\": []},"
                + " \"c\": {}}", PyJson.dumps(m));
        inner.put("x", "é😀\n");
        assertEquals("""
                {
                  "a": {
                    "x": "\\u00e9\\ud83d\\ude00\\n",
                    "y": []
                  },
                  "b": [
                    1,
                    2.5,
                    null,
                    true
                  ],
                  "c": {}
                }""", PyJson.dumps(m, 2, true));
        Map<String, Object> keys = new LinkedHashMap<>();
        keys.put("Z", 1);
        keys.put("a", 2);
        keys.put("é", 3);
        keys.put("_", 4);
        assertEquals("{\"Z\": 1, \"_\": 4, \"a\": 2, \"\\u00e9\": 3}", PyJson.dumps(keys, -1, true));
        assertEquals("\"\\u007f\\u0001 ~\"", PyJson.dumps("\u007f\u0001 ~"));
        List<Object> nested = new ArrayList<>();
        nested.add(7L);
        assertEquals("[7]", PyJson.dumps(nested));
    }

    @Test
    void dumpsNonAsciiLikeTemplatesTojson() throws Exception {
        // Python: json.dumps(x, ensure_ascii=False) for the same values.
        com.fasterxml.jackson.databind.JsonNode node = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree("{\"name\": \"météo\", \"args\": {\"t\": 1.5e-05, \"n\": [1, null, true, \"\\u0001\"]}}");
        assertEquals("{\"name\": \"météo\", \"args\": {\"t\": 1.5e-05, \"n\": [1, null, true, \"\\u0001\"]}}",
                PyJson.dumpsNonAscii(node));
        assertEquals("\"é😀\u007f\"", PyJson.dumpsNonAscii("é😀\u007f"));
        Map<Object, Object> m = new LinkedHashMap<>();
        m.put(1, new java.util.LinkedHashSet<>(List.of("a", "b")));
        m.put("x", new Object[] {2.0, 3});
        assertEquals("{\"1\": [\"a\", \"b\"], \"x\": [2.0, 3]}", PyJson.dumpsNonAscii(m));
        assertEquals("[1, null]", PyJson.dumpsNonAscii(new Object[] {1, null}), "arrays may hold null");
        // Python's default json.dumps rejects what is not JSON; so does dumps.
        assertThrows(IllegalArgumentException.class, () -> PyJson.dumps(m));
        assertThrows(IllegalArgumentException.class, () -> PyJson.dumps(java.util.Set.of("a")));
    }

    @Test
    void roundsLikePython() {
        assertEquals(2.67, PyJson.round(2.675, 2)); // 2.675 is stored below the half
        assertEquals(0.12, PyJson.round(0.125, 2)); // exact half: to even
        assertEquals(0.38, PyJson.round(0.375, 2));
        assertEquals(1.0001, PyJson.round(1.00005, 4));
        assertEquals(12.3456, PyJson.round(12.34565, 4));
        assertEquals("-0.0", PyJson.floatRepr(PyJson.round(-0.00001, 4)));
    }
}
