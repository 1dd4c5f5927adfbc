package io.sftnative.train.log;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.google.protobuf.UnknownFieldSet;

/**
 * The event file read back by an independent reader: record framing and CRCs checked here from TensorFlow's
 * record-format definition, each record decoded by protobuf's generic parser (UnknownFieldSet) with the field
 * numbers of TensorBoard's event.proto (Event: 1 wall_time, 2 step, 3 file_version, 5 summary) and summary.proto
 * (Summary: 1 value; Value: 1 tag, 2 simple_value).
 */
public class TensorBoardWriterTest {
    @TempDir
    Path dir;

    /** One decoded Event: its step, file_version (or null) and scalars by tag. */
    public record Event(double wallTime, long step, String fileVersion, Map<String, Float> scalars) {}

    static int masked(byte[] data) {
        CRC32C c = new CRC32C();
        c.update(data, 0, data.length);
        long crc = c.getValue();
        long rotated = ((crc >> 15) | (crc << 17)) & 0xffffffffL;
        return (int) ((rotated + 0xa282ead8L) & 0xffffffffL);
    }

    public static List<Event> read(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        List<Event> out = new ArrayList<>();
        while (b.hasRemaining()) {
            byte[] len = new byte[8];
            b.get(len);
            long n = ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getLong();
            assertEquals(masked(len), b.getInt(), "length CRC of record " + out.size());
            byte[] data = new byte[(int) n];
            b.get(data);
            assertEquals(masked(data), b.getInt(), "data CRC of record " + out.size());
            UnknownFieldSet e = UnknownFieldSet.parseFrom(data);
            double wall = Double.longBitsToDouble(e.getField(1).getFixed64List().get(0));
            long step = e.hasField(2) ? e.getField(2).getVarintList().get(0) : 0;
            String version = e.hasField(3) ? e.getField(3).getLengthDelimitedList().get(0).toStringUtf8() : null;
            Map<String, Float> scalars = new LinkedHashMap<>();
            if (e.hasField(5)) {
                UnknownFieldSet summary = UnknownFieldSet.parseFrom(e.getField(5).getLengthDelimitedList().get(0));
                for (var v : summary.getField(1).getLengthDelimitedList()) {
                    UnknownFieldSet value = UnknownFieldSet.parseFrom(v);
                    scalars.put(value.getField(1).getLengthDelimitedList().get(0).toStringUtf8(),
                            Float.intBitsToFloat(value.getField(2).getFixed32List().get(0)));
                }
            }
            out.add(new Event(wall, step, version, scalars));
        }
        return out;
    }

    @Test
    void writesRecordsTensorBoardCanRead() throws Exception {
        Path file;
        try (TensorBoardWriter w = TensorBoardWriter.open(dir.resolve("runs/x"))) {
            file = w.file();
            Map<String, Double> train = new LinkedHashMap<>();
            train.put("loss", 2.5);
            train.put("learning_rate", 1e-4);
            w.scalars(10, train);
            w.scalars(20, Map.of("eval_loss", 1.25));
        }
        assertTrue(file.getFileName().toString().startsWith("events.out.tfevents."), file.toString());
        List<Event> events = read(file);
        assertEquals(3, events.size());
        assertEquals("brain.Event:2", events.get(0).fileVersion());
        assertTrue(events.get(0).wallTime() > 1.6e9);
        assertEquals(10, events.get(1).step());
        assertEquals(Map.of("train/loss", 2.5f, "train/learning_rate", 1e-4f), events.get(1).scalars());
        assertEquals(20, events.get(2).step());
        assertEquals(Map.of("eval/loss", 1.25f), events.get(2).scalars());
    }

    @Test
    void defaultLoggingDirIsHfs() {
        Path d = TensorBoardWriter.defaultLoggingDir(Path.of("out"));
        assertEquals(Path.of("out", "runs"), d.getParent());
        assertTrue(d.getFileName().toString().matches("[A-Z][a-z]{2}\\d{2}_\\d{2}-\\d{2}-\\d{2}_.+"), d.toString());
    }
}
