package io.sftnative.train.log;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.Map;
import java.util.zip.CRC32C;

import com.google.protobuf.CodedOutputStream;

/**
 * {@code report_to: tensorboard}: a TensorBoard event file ({@code events.out.tfevents.<time>.<host>}) in
 * {@code logging_dir}, with the scalars HF's TensorBoardCallback writes ({@code train/loss},
 * {@code train/learning_rate}, {@code train/grad_norm}, {@code train/epoch}, {@code eval/loss}, ...).
 *
 * <p>Format (TensorFlow's record file, as TensorBoard reads it): each record is
 * {@code uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)}, little-endian; each
 * data is a serialized {@code tensorflow.Event} proto: the first has {@code file_version = "brain.Event:2"}, the
 * others {@code wall_time}, {@code step} and a {@code Summary} of {@code simple_value}s. The protos are encoded with
 * protobuf-java's CodedOutputStream (field numbers from TensorBoard's event.proto / summary.proto). Each event is
 * flushed as it is written, so a crash leaves every earlier one readable (appending is what TensorBoard expects of
 * an event file: it is never rewritten).
 */
public final class TensorBoardWriter implements AutoCloseable {
    // tensorflow.Event
    private static final int EVENT_WALL_TIME = 1;   // double
    private static final int EVENT_STEP = 2;        // int64
    private static final int EVENT_FILE_VERSION = 3; // string
    private static final int EVENT_SUMMARY = 5;     // Summary
    // tensorflow.Summary / Summary.Value
    private static final int SUMMARY_VALUE = 1;     // repeated Value
    private static final int VALUE_TAG = 1;         // string
    private static final int VALUE_SIMPLE = 2;      // float

    private final Path file;
    private final OutputStream out;

    private TensorBoardWriter(Path file) throws IOException {
        this.file = file;
        Files.createDirectories(file.getParent());
        this.out = Files.newOutputStream(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        writeRecord(event(wallTime(), 0, "brain.Event:2", null));
    }

    /** HF's default logging_dir: {@code output_dir/runs/<MonDD_HH-MM-SS>_<host>}. */
    public static Path defaultLoggingDir(Path outputDir) {
        String time = LocalDateTime.now().format(DateTimeFormatter.ofPattern("MMMdd_HH-mm-ss", Locale.ROOT));
        return outputDir.resolve("runs").resolve(time + "_" + host());
    }

    /** A new event file in {@code loggingDir}. */
    public static TensorBoardWriter open(Path loggingDir) throws IOException {
        long now = System.currentTimeMillis() / 1000;
        Path f = loggingDir.resolve("events.out.tfevents." + now + "." + host() + "." + ProcessHandle.current().pid());
        return new TensorBoardWriter(f);
    }

    public Path file() {
        return file;
    }

    /** HF's rewrite_logs: {@code eval_loss} → {@code eval/loss}, other keys → {@code train/<key>}. */
    public void scalars(long step, Map<String, ? extends Number> values) throws IOException {
        ByteArrayOutputStream summary = new ByteArrayOutputStream();
        CodedOutputStream s = CodedOutputStream.newInstance(summary);
        for (Map.Entry<String, ? extends Number> e : values.entrySet()) {
            if (e.getValue() == null) {
                continue;
            }
            String k = e.getKey();
            String tag = k.startsWith("eval_") ? "eval/" + k.substring(5) : k.startsWith("predict_")
                    ? "predict/" + k.substring(8) : "train/" + k;
            ByteArrayOutputStream value = new ByteArrayOutputStream();
            CodedOutputStream v = CodedOutputStream.newInstance(value);
            v.writeString(VALUE_TAG, tag);
            v.writeFloat(VALUE_SIMPLE, e.getValue().floatValue());
            v.flush();
            s.writeByteArray(SUMMARY_VALUE, value.toByteArray());
        }
        s.flush();
        writeRecord(event(wallTime(), step, null, summary.toByteArray()));
    }

    private static byte[] event(double wallTime, long step, String fileVersion, byte[] summary) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        CodedOutputStream e = CodedOutputStream.newInstance(bytes);
        e.writeDouble(EVENT_WALL_TIME, wallTime);
        if (step != 0) {
            e.writeInt64(EVENT_STEP, step);
        }
        if (fileVersion != null) {
            e.writeString(EVENT_FILE_VERSION, fileVersion);
        }
        if (summary != null) {
            e.writeByteArray(EVENT_SUMMARY, summary);
        }
        e.flush();
        return bytes.toByteArray();
    }

    private void writeRecord(byte[] data) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
        header.putLong(data.length);
        byte[] len = new byte[8];
        header.position(0);
        header.get(len);
        header.putInt(8, maskedCrc(len));
        ByteBuffer footer = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(maskedCrc(data));
        out.write(header.array());
        out.write(data);
        out.write(footer.array());
        out.flush();
    }

    /** TensorFlow's masked CRC32C: rotate right by 15, add 0xa282ead8 (so CRCs of CRCs stay well distributed). */
    static int maskedCrc(byte[] data) {
        CRC32C c = new CRC32C();
        c.update(data);
        int crc = (int) c.getValue();
        return ((crc >>> 15) | (crc << 17)) + 0xa282ead8;
    }

    private static double wallTime() {
        return System.currentTimeMillis() / 1000.0;
    }

    private static String host() {
        try {
            return InetAddress.getLocalHost().getHostName().replaceAll("[^A-Za-z0-9._-]", "_");
        } catch (IOException e) {
            return "localhost";
        }
    }

    @Override
    public void close() throws IOException {
        out.close();
    }
}
