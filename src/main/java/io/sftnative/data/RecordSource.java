package io.sftnative.data;

import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.Set;

import io.sftnative.data.RecordReader.RawRecord;

/**
 * The records of one data file, one at a time, whatever its format: JSON / JSON lines / text ({@link RecordReader}),
 * CSV ({@link CsvRecordReader}), Parquet ({@link ParquetRecordReader}) or Arrow ({@link ArrowRecordReader}). Every
 * reader holds at most one block of the file (a line, a Parquet row group, an Arrow record batch), so memory stays
 * bounded for files larger than RAM. Records are JSON trees, so the converters do not care where they came from.
 */
interface RecordSource extends Iterator<RawRecord>, AutoCloseable {

    /** Bytes of the file consumed so far (for progress; columnar readers count whole blocks). */
    long bytesRead();

    @Override
    void close();

    /** LLaMA-Factory's file types (its FILEEXT2TYPE): json and jsonl are one type. */
    static String type(Path file) {
        return switch (DatasetSpec.ext(file)) {
            case "json", "jsonl" -> "json";
            case "txt" -> "text";
            case "csv" -> "csv";
            case "parquet" -> "parquet";
            case "arrow" -> "arrow";
            default -> null;
        };
    }

    /**
     * Opens a data file of any type {@link #type} knows.
     *
     * @param spec the dataset the file belongs to: a columnar file's columns of a type sft-native cannot convert
     *             are an error only when the dataset maps them (others the converters would ignore anyway)
     */
    static RecordSource open(Path file, DatasetSpec spec) {
        String type = type(file);
        if (type == null) {
            throw new DataException(file + ": not a data file type LLaMA-Factory reads (.json, .jsonl, .txt, .csv,"
                    + " .parquet, .arrow)", file, -1, spec == null ? null : spec.name());
        }
        return switch (type) {
            case "csv" -> new CsvRecordReader(file);
            case "parquet" -> new ParquetRecordReader(file, usedColumns(spec));
            case "arrow" -> new ArrowRecordReader(file, usedColumns(spec));
            default -> new RecordReader(file);
        };
    }

    /** The top-level columns a dataset's converter reads (null spec: all of them). */
    static Set<String> usedColumns(DatasetSpec spec) {
        if (spec == null) {
            return null;
        }
        Set<String> used = new LinkedHashSet<>();
        DatasetSpec.Columns c = spec.columns();
        for (String s : new String[] {c.prompt(), c.query(), c.response(), c.history(), c.messages(), c.system(),
                c.tools(), "text", "input_ids", "labels"}) {
            if (s != null) {
                used.add(s);
            }
        }
        return used;
    }
}
