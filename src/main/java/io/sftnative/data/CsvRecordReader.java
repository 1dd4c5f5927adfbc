package io.sftnative.data;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Set;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.csv.CsvMapper;
import com.fasterxml.jackson.dataformat.csv.CsvParser;
import com.fasterxml.jackson.dataformat.csv.CsvSchema;
import com.fasterxml.jackson.databind.MappingIterator;

/**
 * A .csv dataset, read row by row with Jackson's streaming CSV parser, as HF datasets reads it (pandas.read_csv
 * with its defaults): the first row names the columns, fields are comma-separated with {@code "} quoting (quoted
 * fields may hold commas, quotes as {@code ""} and newlines), blank lines are skipped, every value is a string,
 * and a cell that pandas reads as missing ({@code ""}, {@code NA}, {@code null}, {@code NaN}, {@code None} and the
 * rest of its default NA strings) is null, which the converters treat as an absent value, as LLaMA-Factory does.
 */
final class CsvRecordReader implements RecordSource {
    /** pandas' default na_values (pandas._libs.parsers.STR_NA_VALUES), read by HF datasets' csv builder. */
    static final Set<String> PANDAS_NA = Set.of("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
            "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null");

    private final Path file;
    private final CountingStream counting;
    private final MappingIterator<List<String>> rows;
    private final List<String> header;
    private long row;
    private RecordReader.RawRecord next;

    CsvRecordReader(Path file) {
        this.file = file;
        try {
            counting = new CountingStream(Files.newInputStream(file));
            Reader reader = new InputStreamReader(counting, StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT));
            CsvMapper mapper = new CsvMapper().enable(CsvParser.Feature.WRAP_AS_ARRAY)
                    .enable(CsvParser.Feature.SKIP_EMPTY_LINES);
            rows = mapper.readerForListOf(String.class).with(CsvSchema.emptySchema()).readValues(reader);
            if (!rows.hasNext()) {
                throw new DataException(file + ": the CSV file is empty (its first row must name the columns)", file,
                        1, null);
            }
            header = rows.next();
            if (header.stream().anyMatch(String::isEmpty)) {
                throw new DataException(file + ":1: the CSV header has an empty column name (" + header + "); the"
                        + " first row must name every column", file, 1, null);
            }
        } catch (IOException | RuntimeException e) {
            throw failure(e, 1);
        }
    }

    @Override
    public long bytesRead() {
        return counting.count;
    }

    @Override
    public boolean hasNext() {
        if (next == null) {
            next = advance();
        }
        return next != null;
    }

    @Override
    public RecordReader.RawRecord next() {
        if (!hasNext()) {
            throw new NoSuchElementException();
        }
        RecordReader.RawRecord r = next;
        next = null;
        return r;
    }

    private RecordReader.RawRecord advance() {
        try {
            if (!rows.hasNextValue()) {
                return null;
            }
            List<String> cells = rows.nextValue();
            row++;
            if (cells.size() != header.size()) {
                // pandas raises "Error tokenizing data" for a row with too many fields and pads a short one with
                // NaN: either way the row does not say which column a value belongs to, so it is dropped and
                // reported instead of being guessed
                return new RecordReader.RawRecord(file, row, null, "row has " + cells.size() + " fields, the header "
                        + header.size());
            }
            ObjectNode node = JsonNodeFactory.instance.objectNode();
            for (int i = 0; i < header.size(); i++) {
                String v = cells.get(i);
                if (v == null || PANDAS_NA.contains(v)) {
                    node.putNull(header.get(i));
                } else {
                    node.put(header.get(i), v);
                }
            }
            return new RecordReader.RawRecord(file, row, node, null);
        } catch (IOException | RuntimeException e) {
            throw failure(e, row + 1);
        }
    }

    private DataException failure(Exception e, long at) {
        if (e instanceof DataException d) {
            return d;
        }
        Throwable cause = e.getCause() != null && !(e instanceof JsonProcessingException) ? e.getCause() : e;
        String why = cause instanceof JsonProcessingException j ? j.getOriginalMessage() : cause.getMessage();
        if (cause instanceof java.nio.charset.CharacterCodingException) {
            why = "not valid UTF-8 (convert the file, e.g. iconv -f latin1 -t utf-8)";
        }
        return new DataException(file + ": row " + at + ": cannot read the CSV file: " + why, file, at, null);
    }

    @Override
    public void close() {
        try {
            rows.close();
            counting.close();
        } catch (IOException e) {
            // closing a read-only file cannot lose data
        }
    }

    /** Counts the bytes read from the file (progress). */
    static final class CountingStream extends java.io.FilterInputStream {
        volatile long count;

        CountingStream(InputStream in) {
            super(in);
        }

        @Override
        public int read() throws IOException {
            int b = super.read();
            if (b >= 0) {
                count++;
            }
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = super.read(b, off, len);
            if (n > 0) {
                count += n;
            }
            return n;
        }
    }
}
