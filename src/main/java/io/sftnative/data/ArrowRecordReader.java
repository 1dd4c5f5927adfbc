package io.sftnative.data;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.BaseIntVector;
import org.apache.arrow.vector.BitVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.Float2Vector;
import org.apache.arrow.vector.Float4Vector;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.LargeVarCharVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.ValueVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.ViewVarCharVector;
import org.apache.arrow.vector.complex.FixedSizeListVector;
import org.apache.arrow.vector.complex.LargeListVector;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.complex.StructVector;
import org.apache.arrow.vector.ipc.ArrowFileReader;
import org.apache.arrow.vector.ipc.ArrowReader;
import org.apache.arrow.vector.ipc.ArrowStreamReader;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;

/**
 * An .arrow dataset (Apache Arrow Java), read one record batch at a time: the IPC stream format that HF datasets
 * writes (its cache files and {@code save_to_disk}'s {@code data-00000-of-0000N.arrow}) and the IPC file format
 * ({@code ARROW1} magic), as HF datasets' arrow builder accepts both. Strings, numbers, booleans, nulls, lists and
 * structs become JSON values (a sharegpt {@code conversations} column is a list of structs); a mapped column of any
 * other type (map, binary, timestamp, ...) is an error naming the file, column and type.
 */
final class ArrowRecordReader implements RecordSource {
    private static final byte[] FILE_MAGIC = "ARROW1".getBytes(StandardCharsets.US_ASCII);
    // Arrow logs its allocator choice at INFO on first use (through SLF4J to java.util.logging); users should see
    // only its warnings. JUL holds loggers weakly: keep a reference or the level is forgotten.
    private static final java.util.logging.Logger ARROW_LOG = java.util.logging.Logger.getLogger("org.apache.arrow");

    static {
        if (ARROW_LOG.getLevel() == null) {
            ARROW_LOG.setLevel(java.util.logging.Level.WARNING);
        }
    }

    private final Path file;
    private final BufferAllocator allocator;
    private final ArrowReader reader;
    private final CsvRecordReader.CountingStream counting; // stream format only
    private final long fileSize;
    private final List<FieldVector> columns = new ArrayList<>(); // converted columns of the current batch
    private int batches;
    private int batchRows;
    private int rowInBatch;
    private long row;

    ArrowRecordReader(Path file, Set<String> used) {
        this.file = file;
        try {
            allocator = new RootAllocator();
        } catch (RuntimeException | LinkageError e) { // Arrow's MemoryUtil cannot start (JVM flags)
            throw failure(e);
        }
        try {
            fileSize = Files.size(file);
            if (isFileFormat(file)) {
                counting = null;
                reader = new ArrowFileReader(FileChannel.open(file, StandardOpenOption.READ), allocator);
            } else {
                counting = new CsvRecordReader.CountingStream(Files.newInputStream(file));
                reader = new ArrowStreamReader(new BufferedInputStream(counting, 1 << 16), allocator);
            }
            VectorSchemaRoot root = reader.getVectorSchemaRoot();
            for (Field f : root.getSchema().getFields()) {
                String bad = unsupported(f);
                if (bad == null) {
                    columns.add(root.getVector(f.getName()));
                } else if (used == null || used.contains(f.getName())) {
                    throw new DataException(file + ": column '" + f.getName() + "' has Arrow type " + bad + ", which"
                            + " sft-native cannot turn into text (strings, numbers, booleans, lists and structs are"
                            + " read); cast the column to string, or map another column in dataset_info.json",
                            file, -1, f.getName());
                }
            }
        } catch (IOException | RuntimeException | LinkageError e) { // LinkageError: Arrow's MemoryUtil failed
            close();
            throw failure(e);
        }
    }

    private static boolean isFileFormat(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return java.util.Arrays.equals(in.readNBytes(FILE_MAGIC.length), FILE_MAGIC);
        }
    }

    /** Null when the converter below handles the field's type (recursively), else the offending type. */
    private static String unsupported(Field f) {
        if (f.getDictionary() != null) {
            return "dictionary<" + f.getType() + ">";
        }
        ArrowType t = f.getType();
        return switch (t.getTypeID()) {
            case Utf8, LargeUtf8, Utf8View, Bool, Int, FloatingPoint, Null -> null;
            case List, LargeList, FixedSizeList, Struct -> {
                for (Field c : f.getChildren()) {
                    String bad = unsupported(c);
                    if (bad != null) {
                        yield t + "<" + bad + ">";
                    }
                }
                yield null;
            }
            default -> t.toString();
        };
    }

    @Override
    public long bytesRead() {
        return counting != null ? counting.count : Math.min(fileSize, (long) batches * (fileSize / 8 + 1));
    }

    @Override
    public boolean hasNext() {
        try {
            while (rowInBatch >= batchRows) {
                if (!reader.loadNextBatch()) {
                    return false;
                }
                batches++;
                batchRows = reader.getVectorSchemaRoot().getRowCount();
                rowInBatch = 0;
            }
            return true;
        } catch (IOException | RuntimeException e) {
            throw failure(e);
        }
    }

    @Override
    public RecordReader.RawRecord next() {
        if (!hasNext()) {
            throw new NoSuchElementException();
        }
        ObjectNode node = JsonNodeFactory.instance.objectNode();
        for (FieldVector v : columns) {
            node.set(v.getName(), value(v, rowInBatch));
        }
        rowInBatch++;
        row++;
        return new RecordReader.RawRecord(file, row, node, null);
    }

    /** Element {@code i} of a vector as JSON (types checked by {@link #unsupported}). */
    private static JsonNode value(ValueVector v, int i) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        if (v.isNull(i)) {
            return f.nullNode();
        }
        if (v instanceof VarCharVector s) {
            return f.textNode(new String(s.get(i), StandardCharsets.UTF_8));
        }
        if (v instanceof LargeVarCharVector s) {
            return f.textNode(new String(s.get(i), StandardCharsets.UTF_8));
        }
        if (v instanceof ViewVarCharVector s) {
            return f.textNode(new String(s.get(i), StandardCharsets.UTF_8));
        }
        if (v instanceof BitVector b) {
            return f.booleanNode(b.get(i) != 0);
        }
        if (v instanceof BaseIntVector n) {
            return f.numberNode(n.getValueAsLong(i));
        }
        if (v instanceof Float8Vector d) {
            return f.numberNode(d.get(i));
        }
        if (v instanceof Float4Vector d) {
            return f.numberNode(d.get(i));
        }
        if (v instanceof Float2Vector d) {
            return f.numberNode(d.getValueAsFloat(i));
        }
        if (v instanceof ListVector l) {
            return elements(l.getDataVector(), l.getElementStartIndex(i), l.getElementEndIndex(i));
        }
        if (v instanceof LargeListVector l) {
            return elements(l.getDataVector(), l.getElementStartIndex(i), l.getElementEndIndex(i));
        }
        if (v instanceof FixedSizeListVector l) {
            return elements(l.getDataVector(), (long) i * l.getListSize(), (long) (i + 1) * l.getListSize());
        }
        if (v instanceof StructVector s) {
            ObjectNode o = f.objectNode();
            for (FieldVector c : s.getChildrenFromFields()) {
                o.set(c.getName(), value(c, i));
            }
            return o;
        }
        throw new IllegalStateException("unchecked Arrow vector " + v.getClass().getSimpleName());
    }

    private static ArrayNode elements(ValueVector data, long from, long to) {
        ArrayNode a = JsonNodeFactory.instance.arrayNode();
        for (long j = from; j < to; j++) {
            a.add(value(data, Math.toIntExact(j)));
        }
        return a;
    }

    private DataException failure(Throwable e) {
        if (e instanceof DataException d) {
            return d;
        }
        String m = String.valueOf(e.getMessage());
        if (m.contains("DirectByteBuffer") || m.contains("MemoryUtil")) { // Arrow's MemoryUtil could not start
            return new DataException(file + ": Apache Arrow needs the JVM flag"
                    + " --add-opens=java.base/java.nio=ALL-UNNAMED to read .arrow files (the sft-native command"
                    + " sets it; add it to your own java command line when using sft-native as a library)", file,
                    -1, null);
        }
        return new DataException(file + ": cannot read the Arrow file after row " + row + ": " + e.getMessage()
                + " (not Arrow IPC stream/file data, or truncated; rewrite it, e.g. with datasets' save_to_disk)",
                file, row, null);
    }

    @Override
    public void close() {
        try {
            if (reader != null) {
                reader.close(); // closes the root and the file
            }
        } catch (IOException | RuntimeException e) {
            // closing a read-only file cannot lose data
        }
        allocator.close();
    }
}
