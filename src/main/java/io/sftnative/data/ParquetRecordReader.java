package io.sftnative.data;

import java.io.IOException;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.parquet.ParquetReadOptions;
import org.apache.parquet.bytes.ByteBufferAllocator;
import org.apache.parquet.bytes.HeapByteBufferAllocator;
import org.apache.parquet.compression.CompressionCodecFactory;
import org.apache.parquet.conf.ParquetConfiguration;
import org.apache.parquet.crypto.FileDecryptionProperties;
import org.apache.parquet.filter2.compat.FilterCompat;
import org.apache.parquet.format.converter.ParquetMetadataConverter;
import org.apache.parquet.hadoop.ParquetMetricsCallback;
import org.apache.parquet.column.page.PageReadStore;
import org.apache.parquet.conf.PlainParquetConfiguration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.convert.GroupRecordConverter;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.metadata.BlockMetaData;
import org.apache.parquet.io.ColumnIOFactory;
import org.apache.parquet.io.InputFile;
import org.apache.parquet.io.LocalInputFile;
import org.apache.parquet.io.MessageColumnIO;
import org.apache.parquet.schema.GroupType;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.Type;

/**
 * A .parquet dataset (Apache parquet-java through its Hadoop-free {@code InputFile} API), read one row group at a
 * time. Strings, integers, floats, booleans, nulls, lists (the standard 3-level and the legacy 2-level layouts)
 * and structs become JSON values, so a sharegpt {@code conversations} column (a list of structs, as pyarrow and HF
 * datasets write it) converts as from JSON. A mapped column of any other type (map, raw binary, decimal,
 * timestamp, ...) is an error naming the file, column and type; unmapped ones are not read at all.
 */
final class ParquetRecordReader implements RecordSource {
    private final Path file;
    private final ParquetFileReader reader;
    private final MessageType schema; // the projected schema: convertible columns only
    private final MessageColumnIO io;
    private final List<BlockMetaData> blocks;
    private int block;
    private long bytes;
    private org.apache.parquet.io.RecordReader<Group> rows;
    private long rowsLeft;
    private long row;

    ParquetRecordReader(Path file, Set<String> used) {
        this.file = file;
        ParquetFileReader r = null;
        try {
            r = open(file);
            MessageType full = r.getFooter().getFileMetaData().getSchema();
            List<Type> keep = new ArrayList<>();
            for (Type t : full.getFields()) {
                String bad = unsupported(t);
                if (bad == null) {
                    keep.add(t);
                } else if (used == null || used.contains(t.getName())) {
                    throw new DataException(file + ": column '" + t.getName() + "' has Parquet type " + bad
                            + ", which sft-native cannot turn into text (strings, numbers, booleans, lists and"
                            + " structs are read); cast the column to string, or map another column in"
                            + " dataset_info.json", file, -1, t.getName());
                }
            }
            schema = new MessageType(full.getName(), keep);
            r.setRequestedSchema(schema);
            io = new ColumnIOFactory().getColumnIO(schema, full);
            blocks = r.getRowGroups();
            reader = r;
        } catch (IOException | RuntimeException e) {
            if (r != null) {
                closeQuietly(r);
            }
            throw failure(e);
        }
    }

    /**
     * parquet-java without Hadoop. Two of its entry points reach Hadoop classes that are not on the classpath, so
     * both are called through method handles: {@code ParquetFileReader.open(InputFile, ParquetReadOptions)} has
     * overloads taking Hadoop's Configuration (javac needs Hadoop to choose among them), and
     * {@code ParquetReadOptions.Builder} builds Hadoop's codec factory before {@code withCodecFactory} can replace
     * it, so the options are made with their constructor (package-private; the arguments are the Builder's
     * defaults, with the codecs of {@link ParquetCodecs}). Both are checked by DatasetFormatsTest for the pinned
     * parquet-java version (pom.xml: parquet.version).
     */
    private static final MethodHandle OPEN;
    private static final MethodHandle OPTIONS;

    static {
        try {
            OPEN = MethodHandles.publicLookup().findStatic(ParquetFileReader.class, "open",
                    MethodType.methodType(ParquetFileReader.class, InputFile.class, ParquetReadOptions.class));
            OPTIONS = MethodHandles.privateLookupIn(ParquetReadOptions.class, MethodHandles.lookup())
                    .findConstructor(ParquetReadOptions.class, MethodType.methodType(void.class, boolean.class,
                            boolean.class, boolean.class, boolean.class, boolean.class, boolean.class, boolean.class,
                            boolean.class, boolean.class, FilterCompat.Filter.class,
                            ParquetMetadataConverter.MetadataFilter.class, CompressionCodecFactory.class,
                            ByteBufferAllocator.class, int.class, Map.class, FileDecryptionProperties.class,
                            ParquetMetricsCallback.class, ParquetConfiguration.class));
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private static ParquetFileReader open(Path file) throws IOException {
        try {
            ParquetReadOptions options = (ParquetReadOptions) OPTIONS.invokeExact(
                    false, // useSignedStringMinMax
                    true, true, true, true, // stats, dictionary, record and column-index filters (none is set)
                    false, // usePageChecksumVerification
                    true, // useBloomFilter
                    false, // useOffHeapDecryptBuffer
                    false, // useHadoopVectoredIo
                    FilterCompat.NOOP, ParquetMetadataConverter.NO_FILTER,
                    (CompressionCodecFactory) new ParquetCodecs(), (ByteBufferAllocator) new HeapByteBufferAllocator(),
                    8 << 20, // maxAllocationSize
                    (Map<?, ?>) new HashMap<String, String>(),
                    (FileDecryptionProperties) null, (ParquetMetricsCallback) null,
                    (ParquetConfiguration) new PlainParquetConfiguration());
            return (ParquetFileReader) OPEN.invokeExact((InputFile) new LocalInputFile(file), options);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException(t);
        }
    }

    /** Null when {@link #value} converts the type (recursively), else a description of the offending type. */
    private static String unsupported(Type t) {
        LogicalTypeAnnotation a = t.getLogicalTypeAnnotation();
        if (t.isPrimitive()) {
            PrimitiveType p = t.asPrimitiveType();
            return switch (p.getPrimitiveTypeName()) {
                case BOOLEAN, FLOAT, DOUBLE -> null;
                case INT32, INT64 -> a == null || a instanceof LogicalTypeAnnotation.IntLogicalTypeAnnotation ? null
                        : p.getPrimitiveTypeName() + " (" + a + ")";
                case BINARY -> a instanceof LogicalTypeAnnotation.StringLogicalTypeAnnotation
                        || a instanceof LogicalTypeAnnotation.EnumLogicalTypeAnnotation
                        || a instanceof LogicalTypeAnnotation.JsonLogicalTypeAnnotation ? null
                        : "BINARY" + (a == null ? " (raw bytes)" : " (" + a + ")");
                default -> p.getPrimitiveTypeName() + (a == null ? "" : " (" + a + ")");
            };
        }
        if (a != null && !(a instanceof LogicalTypeAnnotation.ListLogicalTypeAnnotation)) {
            return "group (" + a + ")"; // MAP, VARIANT, ...
        }
        for (Type c : t.asGroupType().getFields()) {
            String bad = unsupported(c);
            if (bad != null) {
                return (a == null ? "struct<" : "list<") + bad + ">";
            }
        }
        return null;
    }

    @Override
    public long bytesRead() {
        return bytes;
    }

    @Override
    public boolean hasNext() {
        try {
            while (rowsLeft == 0) {
                PageReadStore pages = reader.readNextRowGroup();
                if (pages == null) {
                    return false;
                }
                bytes += blocks.get(block++).getCompressedSize();
                rowsLeft = pages.getRowCount();
                rows = io.getRecordReader(pages, new GroupRecordConverter(schema));
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
        try {
            Group g = rows.read();
            rowsLeft--;
            row++;
            return new RecordReader.RawRecord(file, row, fields(g, schema), null);
        } catch (RuntimeException e) {
            throw failure(e);
        }
    }

    private static ObjectNode fields(Group g, GroupType type) {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        for (int i = 0; i < type.getFieldCount(); i++) {
            Type t = type.getType(i);
            int n = g.getFieldRepetitionCount(i);
            if (t.isRepetition(Type.Repetition.REPEATED)) { // a bare repeated field is a list
                ArrayNode a = o.putArray(t.getName());
                for (int j = 0; j < n; j++) {
                    a.add(value(g, i, j, t));
                }
            } else {
                o.set(t.getName(), n == 0 ? JsonNodeFactory.instance.nullNode() : value(g, i, 0, t));
            }
        }
        return o;
    }

    private static JsonNode value(Group g, int field, int index, Type t) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        if (t.isPrimitive()) {
            return switch (t.asPrimitiveType().getPrimitiveTypeName()) {
                case BOOLEAN -> f.booleanNode(g.getBoolean(field, index));
                case FLOAT -> f.numberNode(g.getFloat(field, index));
                case DOUBLE -> f.numberNode(g.getDouble(field, index));
                case INT32 -> f.numberNode(g.getInteger(field, index));
                case INT64 -> f.numberNode(g.getLong(field, index));
                default -> f.textNode(g.getString(field, index));
            };
        }
        Group child = g.getGroup(field, index);
        GroupType type = t.asGroupType();
        if (!(type.getLogicalTypeAnnotation() instanceof LogicalTypeAnnotation.ListLogicalTypeAnnotation)) {
            return fields(child, type);
        }
        // LIST: one repeated field; parquet-format's backward-compatibility rules say what an element is
        ArrayNode a = f.arrayNode();
        Type repeated = type.getType(0);
        int n = child.getFieldRepetitionCount(0);
        boolean elementIsRepeated = repeated.isPrimitive() || repeated.asGroupType().getFieldCount() > 1
                || repeated.getName().equals("array") || repeated.getName().equals(type.getName() + "_tuple");
        for (int j = 0; j < n; j++) {
            if (elementIsRepeated) {
                a.add(value(child, 0, j, repeated));
            } else {
                Group wrapper = child.getGroup(0, j);
                Type element = repeated.asGroupType().getType(0);
                a.add(wrapper.getFieldRepetitionCount(0) == 0 ? f.nullNode() : value(wrapper, 0, 0, element));
            }
        }
        return a;
    }

    private DataException failure(Exception e) {
        if (e instanceof DataException d) {
            return d;
        }
        String why = e.getMessage();
        for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
            why += ": " + c.getMessage();
        }
        return new DataException(file + ": cannot read the Parquet file after row " + row + ": " + why + " (not a"
                + " Parquet file, truncated or corrupt; rewrite it, e.g. with pandas.DataFrame.to_parquet)", file,
                row, null);
    }

    @Override
    public void close() {
        if (reader != null) {
            closeQuietly(reader);
        }
    }

    private static void closeQuietly(ParquetFileReader r) {
        try {
            r.close();
        } catch (IOException e) {
            // closing a read-only file cannot lose data
        }
    }
}
