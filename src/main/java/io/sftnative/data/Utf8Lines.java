package io.sftnative.data;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Lines of a UTF-8 file, decoded strictly: invalid bytes are a {@link DataException} naming {@code file:line:column}
 * and the byte, never a silent U+FFFD (a Latin-1 {@code café} used to train as {@code caf\uFFFD} with nothing
 * reported). Lines end at {@code \n}; a trailing {@code \r} is dropped, as {@link java.io.BufferedReader} does.
 * Decoding each line on its own keeps the reported line exact (a decoder behind a read-ahead buffer fails lines
 * later than the bad byte).
 */
final class Utf8Lines {
    private final InputStream in;
    private final Path file;
    private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
    private final byte[] buf = new byte[1 << 16];
    private int pos;
    private int lim;
    private boolean eof;
    private byte[] line = new byte[256];

    Utf8Lines(InputStream in, Path file) {
        this.in = in;
        this.file = file;
    }

    /**
     * The next line without its terminator, or null at the end.
     *
     * @param lineNo the 1-based number of the line being read, for the error message
     */
    String next(long lineNo) throws IOException {
        int n = 0;
        boolean any = false;
        while (true) {
            if (pos == lim) {
                if (eof || fill() <= 0) {
                    if (!any) {
                        return null;
                    }
                    break;
                }
            }
            any = true;
            int start = pos;
            while (pos < lim && buf[pos] != '\n') {
                pos++;
            }
            int len = pos - start;
            if (n + len > line.length) {
                line = Arrays.copyOf(line, Math.max(line.length * 2, n + len));
            }
            System.arraycopy(buf, start, line, n, len);
            n += len;
            if (pos < lim) { // at '\n'
                pos++;
                break;
            }
        }
        if (n > 0 && line[n - 1] == '\r') {
            n--;
        }
        return decode(n, lineNo);
    }

    private int fill() throws IOException {
        int r = in.read(buf, 0, buf.length);
        if (r < 0) {
            eof = true;
            return r;
        }
        pos = 0;
        lim = r;
        return r;
    }

    private String decode(int n, long lineNo) {
        ByteBuffer bytes = ByteBuffer.wrap(line, 0, n);
        CharBuffer chars = CharBuffer.allocate(n);
        decoder.reset();
        CoderResult r = decoder.decode(bytes, chars, true);
        if (r.isError()) {
            int at = bytes.position();
            throw new DataException(file + ":" + lineNo + ":" + (at + 1) + ": not valid UTF-8 (byte 0x"
                    + String.format("%02X", line[at] & 0xFF) + " at byte " + (at + 1) + " of the line); the file is"
                    + " probably in another encoding (Latin-1, Windows-1252?): convert it, e.g. iconv -f latin1 -t"
                    + " utf-8", file, lineNo, null);
        }
        decoder.flush(chars);
        chars.flip();
        return chars.toString();
    }
}
