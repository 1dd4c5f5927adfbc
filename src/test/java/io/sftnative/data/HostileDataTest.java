package io.sftnative.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Issue 13: bad bytes, trailing JSON and pipes are errors with file:line, never silent or a hang. */
class HostileDataTest {
    @TempDir
    Path tmp;

    static List<RecordReader.RawRecord> readAll(Path f) {
        List<RecordReader.RawRecord> out = new ArrayList<>();
        try (RecordReader r = new RecordReader(f)) {
            r.forEachRemaining(out::add);
        }
        return out;
    }

    static byte[] latin1(String s) {
        return s.getBytes(StandardCharsets.ISO_8859_1);
    }

    @Test
    void invalidUtf8IsAnErrorWithFileLineAndColumnInEveryFormat() throws Exception {
        String line2 = "{\"instruction\": \"caf\u00e9\", \"output\": \"x\"}\n";
        Path jsonl = tmp.resolve("d.jsonl");
        Files.write(jsonl, latin1("{\"instruction\": \"a\", \"output\": \"b\"}\n" + line2));
        DataException e = assertThrows(DataException.class, () -> readAll(jsonl));
        assertTrue(e.getMessage().startsWith(jsonl + ":2:21: not valid UTF-8 (byte 0xE9"), e.getMessage());
        assertEquals(2, e.line());

        Path txt = tmp.resolve("d.txt");
        Files.write(txt, latin1("plain\nsecond\ncaf\u00e9 au lait\n"));
        e = assertThrows(DataException.class, () -> readAll(txt));
        assertTrue(e.getMessage().startsWith(txt + ":3:4: not valid UTF-8"), e.getMessage());

        Path json = tmp.resolve("d.json");
        Files.write(json, latin1("[\n" + line2 + "]\n"));
        e = assertThrows(DataException.class, () -> readAll(json));
        assertTrue(e.getMessage().startsWith(json + ":2:"), e.getMessage());
        assertTrue(e.getMessage().contains("UTF-8"), e.getMessage());
    }

    @Test
    void validUtf8WithBomAndCrlfStillReads() throws Exception {
        Path jsonl = tmp.resolve("ok.jsonl");
        Files.write(jsonl, ("\uFEFF\n{\"a\": \"caf\u00e9 \u4e2d\u6587 \uD83D\uDE00\"}\r\n").getBytes(StandardCharsets.UTF_8));
        List<RecordReader.RawRecord> all = readAll(jsonl);
        assertEquals(1, all.size());
        assertEquals(2, all.get(0).line());
        assertEquals("caf\u00e9 \u4e2d\u6587 \uD83D\uDE00", all.get(0).node().get("a").asText());
    }

    @Test
    void anythingAfterTheTopLevelArrayIsAnErrorWithLineAndColumn() throws Exception {
        Path cat = tmp.resolve("all.json");
        Files.writeString(cat, "[{\"a\": 1},\n {\"a\": 2}]\n[{\"a\": 3}]\n");
        DataException e = assertThrows(DataException.class, () -> readAll(cat));
        assertTrue(e.getMessage().startsWith(cat + ":3:1: more content after the JSON array that ends on line 2"),
                e.getMessage());
        Path garbage = tmp.resolve("g.json");
        Files.writeString(garbage, "[{\"a\": 1}]]]] garbage\n");
        e = assertThrows(DataException.class, () -> readAll(garbage));
        assertTrue(e.getMessage().startsWith(garbage + ":1:"), e.getMessage());
        assertTrue(e.getMessage().contains("more content after the JSON array"), e.getMessage());
        Path trailingSpace = tmp.resolve("s.json");
        Files.writeString(trailingSpace, "[{\"a\": 1}]\n\n  \n");
        assertEquals(1, readAll(trailingSpace).size());
    }

    @Test
    void twoObjectsOnOneJsonLineAreDroppedAsMalformedNotHalfRead() throws Exception {
        Path jsonl = tmp.resolve("d.jsonl");
        Files.writeString(jsonl, "{\"a\": 1}\n{\"a\": 2} {\"a\": 3}\n");
        List<RecordReader.RawRecord> all = readAll(jsonl);
        assertEquals(2, all.size());
        assertNotNull(all.get(0).node());
        assertNull(all.get(1).node());
        assertEquals("malformed JSON", all.get(1).error());
    }

    @Test
    @Timeout(value = 30, unit = TimeUnit.SECONDS)
    void aNamedPipeIsRefusedNotReadForever() throws Exception {
        Path fifo = tmp.resolve("data.jsonl");
        Process mk = new ProcessBuilder("mkfifo", fifo.toString()).start();
        assumeTrue(mk.waitFor() == 0, "mkfifo is not available");
        DataException e = assertThrows(DataException.class, () -> DatasetSpec.resolve(fifo.toString(), null));
        assertTrue(e.getMessage().contains("is not a regular file (a named pipe"), e.getMessage());
    }

    @Test
    void aDatasetDirThatIsAFileIsNamedAsSuch() throws Exception {
        Path file = Files.writeString(tmp.resolve("data"), "x");
        DataException e = assertThrows(DataException.class, () -> DatasetSpec.resolve("alpaca_en_demo", file));
        assertTrue(e.getMessage().startsWith("dataset_dir " + file + " is a file, not a directory"), e.getMessage());
    }
}
