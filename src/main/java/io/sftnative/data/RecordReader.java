package io.sftnative.data;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PushbackInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.NoSuchElementException;

import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Streams the records of one data file with their line numbers, holding one record at a time: a JSON array
 * ({@code [ {...}, ... ]}), JSON lines (one object per line, .jsonl or .json), or text (.txt: one record
 * {@code {"text": line}} per line).
 *
 * <p>A malformed JSON line yields a record with {@link RawRecord#error()} set (the example is dropped and reported,
 * the rest of the file still read); a syntax error inside a JSON array cannot be skipped and throws
 * {@link DataException} with the line and column.
 */
final class RecordReader implements RecordSource {
    private static final ObjectMapper JSON = new ObjectMapper();
    // a JSON line with anything after its object ("{..} {..}") is malformed, not half-read
    private static final ObjectMapper JSON_LINE = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final Path file;
    private final CountingStream counting;
    private final Kind kind;
    private Utf8Lines lines;
    private JsonParser parser;
    private long lineNo;
    private RawRecord next;
    private boolean done;
    private boolean sawRecord;

    private enum Kind { ARRAY, LINES, TEXT }

    /**
     * A record as read: its JSON (null when malformed) and where it came from: the line of a JSON/text file, the
     * row (1-based, header not counted) of a CSV, Parquet or Arrow file.
     */
    record RawRecord(Path file, long line, JsonNode node, String error) {
        String location() {
            String ext = DatasetSpec.ext(file);
            boolean rows = ext.equals("csv") || ext.equals("parquet") || ext.equals("arrow");
            return file.getFileName() + (rows ? ":row " : ":") + line;
        }
    }

    RecordReader(Path file) {
        this.file = file;
        try {
            InputStream raw = Files.newInputStream(file);
            this.counting = new CountingStream(raw);
            PushbackInputStream in = new PushbackInputStream(counting, 8);
            if ("txt".equals(DatasetSpec.ext(file))) {
                kind = Kind.TEXT;
            } else {
                kind = firstNonSpace(in) == '[' ? Kind.ARRAY : Kind.LINES;
                lineNo = skippedNewlines;
            }
            if (kind == Kind.ARRAY) {
                parser = JSON.getFactory().createParser(in);
                if (parser.nextToken() != JsonToken.START_ARRAY) {
                    throw new DataException(file + ":1: expected a JSON array of records", file, 1, null);
                }
            } else {
                lines = new Utf8Lines(in, file);
            }
        } catch (JsonProcessingException e) {
            throw malformed(e);
        } catch (IOException e) {
            throw new DataException("cannot read " + file + ": " + e.getMessage(), file, -1, null);
        }
    }

    private long skippedNewlines; // blank lines before the first record: line numbers stay exact

    private int firstNonSpace(PushbackInputStream in) throws IOException {
        int c;
        do {
            c = in.read();
            skippedNewlines += c == '\n' ? 1 : 0;
        } while (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == 0xEF || c == 0xBB || c == 0xBF);
        if (c >= 0) {
            in.unread(c);
        }
        return c;
    }

    /** Bytes of the file consumed so far (for progress). */
    @Override
    public long bytesRead() {
        return counting.count;
    }

    @Override
    public boolean hasNext() {
        if (next == null && !done) {
            next = advance();
            done = next == null;
        }
        return next != null;
    }

    @Override
    public RawRecord next() {
        if (!hasNext()) {
            throw new NoSuchElementException();
        }
        RawRecord r = next;
        next = null;
        return r;
    }

    private RawRecord advance() {
        try {
            return switch (kind) {
                case ARRAY -> nextInArray();
                case LINES -> nextLine();
                case TEXT -> nextText();
            };
        } catch (JsonProcessingException e) {
            throw malformed(e);
        } catch (IOException e) {
            throw new DataException("cannot read " + file + ": " + e.getMessage(), file, lineNo, null);
        }
    }

    private RawRecord nextInArray() throws IOException {
        JsonToken t = parser.nextToken();
        if (t == null) {
            throw new DataException(file + ": the JSON array is not closed (file truncated?)", file,
                    parser.currentLocation().getLineNr(), null);
        }
        if (t == JsonToken.END_ARRAY) {
            checkNothingAfter();
            return null;
        }
        long line = parser.currentTokenLocation().getLineNr();
        JsonNode node = parser.readValueAsTree();
        if (!node.isObject()) {
            return new RawRecord(file, line, null, "record is not a JSON object");
        }
        return new RawRecord(file, line, node, null);
    }

    /**
     * The array must be the whole file: {@code cat a.json b.json} (two arrays) read only the first and reported
     * nothing, and {@code ]]] garbage} after the array was ignored.
     */
    private void checkNothingAfter() throws IOException {
        long endLine = parser.currentLocation().getLineNr();
        JsonToken more;
        var at = parser.currentLocation();
        try {
            more = parser.nextToken();
            at = parser.currentTokenLocation();
        } catch (JsonProcessingException e) {
            more = JsonToken.NOT_AVAILABLE;
            at = e.getLocation() == null ? at : e.getLocation();
        }
        if (more != null) {
            throw new DataException(file + ":" + at.getLineNr() + ":" + at.getColumnNr() + ": more content after the"
                    + " JSON array that ends on line " + endLine + " (two files concatenated?); it would be ignored."
                    + " Merge the records into one array, or give each file its own dataset entry", file,
                    at.getLineNr(), null);
        }
    }

    private RawRecord nextLine() throws IOException {
        String line;
        do {
            line = lines.next(lineNo + 1);
            lineNo++;
            if (line == null) {
                return null;
            }
        } while (line.isBlank());
        try {
            JsonNode node = JSON_LINE.readTree(line);
            if (!node.isObject()) {
                return new RawRecord(file, lineNo, null, "line is not a JSON object");
            }
            return new RawRecord(file, lineNo, node, null);
        } catch (JsonProcessingException e) {
            if (!sawRecord && line.stripLeading().startsWith("{")) {
                throw new DataException(file + ":" + lineNo + ": the file is neither a JSON array nor JSON lines"
                        + " (line " + lineNo + " is not a complete JSON object: " + e.getOriginalMessage() + ")",
                        file, lineNo, null);
            }
            return new RawRecord(file, lineNo, null, "malformed JSON");
        } finally {
            sawRecord = true;
        }
    }

    private RawRecord nextText() throws IOException {
        String line = lines.next(lineNo + 1);
        lineNo++;
        if (line == null) {
            return null;
        }
        ObjectNode node = JsonNodeFactory.instance.objectNode();
        node.put("text", line);
        return new RawRecord(file, lineNo, node, null);
    }

    private DataException malformed(JsonProcessingException e) {
        var loc = e.getLocation();
        long line = loc == null ? -1 : loc.getLineNr();
        String where = loc == null ? file.toString() : file + ":" + loc.getLineNr() + ":" + loc.getColumnNr();
        String kindText = e instanceof JsonParseException ? "malformed JSON" : "invalid JSON";
        return new DataException(where + ": " + kindText + " (" + e.getOriginalMessage() + "); fix the file,"
                + " or use JSON lines (.jsonl) where a bad line is skipped and reported", file, line, null);
    }

    @Override
    public void close() {
        try {
            if (parser != null) {
                parser.close();
            }
            counting.close();
        } catch (IOException e) {
            // closing a read-only file cannot lose data
        }
    }

    private static final class CountingStream extends FilterInputStream {
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
