package io.sftnative.data;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;

import io.sftnative.files.AtomicFiles;

/**
 * The tokenized cache file: every processed example of a dataset list, memory-mapped for reading.
 *
 * <pre>
 * header  : magic "SFTDS" 0 0 VERSION (8 bytes), int flags (bit 0 = neat packing), int pad id
 * records : int L, int nSeg, int[nSeg] sequence lengths, int[L] ids, int[L] labels (little-endian)
 *           (tokens after the sum of sequence lengths are packing padding)
 * index   : long[count] record offsets
 * report  : the PreprocessReport as UTF-8 JSON
 * trailer : long indexOffset, long count, long reportOffset, long reportLength, int crc32c(all before), int magic
 * </pre>
 * Written atomically (temp file + rename); opening checks sizes, magics and the CRC, so a torn or corrupted file is
 * detected and rebuilt, never trusted.
 */
final class TokenizedStore implements AutoCloseable {
    static final int VERSION = 1;
    private static final byte[] MAGIC = {'S', 'F', 'T', 'D', 'S', 0, 0, VERSION};
    private static final int HEADER = 16;
    private static final int TRAILER = 40;
    private static final int TRAILER_MAGIC = 0x53465444;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Arena arena;
    private final MemorySegment seg;
    private final long[] offsets;
    private final boolean neat;
    private final int padId;
    private final String reportJson;
    private final Path file;

    private TokenizedStore(Arena arena, MemorySegment seg, long[] offsets, boolean neat, int padId,
            String reportJson, Path file) {
        this.file = file;
        this.arena = arena;
        this.seg = seg;
        this.offsets = offsets;
        this.neat = neat;
        this.padId = padId;
        this.reportJson = reportJson;
    }

    /** Thrown when a cache file is not a complete, intact store. */
    static final class CorruptException extends IOException {
        CorruptException(String m) {
            super(m);
        }
    }

    static TokenizedStore open(Path file) throws IOException {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < HEADER + TRAILER) {
                throw new CorruptException("file too short (" + size + " bytes)");
            }
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            for (int i = 0; i < MAGIC.length; i++) {
                if (seg.get(ValueLayout.JAVA_BYTE, i) != MAGIC[i]) {
                    throw new CorruptException("not a tokenized cache of format version " + VERSION);
                }
            }
            long t = size - TRAILER;
            long indexOffset = seg.get(LONG, t);
            long count = seg.get(LONG, t + 8);
            long reportOffset = seg.get(LONG, t + 16);
            long reportLength = seg.get(LONG, t + 24);
            int crc = seg.get(INT, t + 32);
            if (seg.get(INT, t + 36) != TRAILER_MAGIC || indexOffset < HEADER || count < 0 || count > Integer.MAX_VALUE
                    || indexOffset + 8 * count != reportOffset || reportOffset + reportLength != t) {
                throw new CorruptException("inconsistent trailer");
            }
            if (crc(seg, t) != crc) {
                throw new CorruptException("checksum mismatch");
            }
            long[] offsets = new long[(int) count];
            MemorySegment.copy(seg, LONG, indexOffset, offsets, 0, offsets.length);
            byte[] report = new byte[(int) reportLength];
            MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, reportOffset, report, 0, report.length);
            int flags = seg.get(INT, 8);
            int pad = seg.get(INT, 12);
            return new TokenizedStore(arena, seg, offsets, (flags & 1) != 0, pad,
                    new String(report, StandardCharsets.UTF_8), file);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e instanceof IOException io ? io : new CorruptException(e.toString());
        }
    }

    private static int crc(MemorySegment seg, long length) {
        CRC32C c = new CRC32C();
        for (long at = 0; at < length; at += 1 << 30) {
            c.update(seg.asSlice(at, Math.min(1L << 30, length - at)).asByteBuffer());
        }
        return (int) c.getValue();
    }

    /** The file this store maps. */
    Path file() {
        return file;
    }

    int size() {
        return offsets.length;
    }

    int padId() {
        return padId;
    }

    boolean neat() {
        return neat;
    }

    String reportJson() {
        return reportJson;
    }

    int length(int i) {
        return seg.get(INT, offsets[i]);
    }

    Example get(int i) {
        long at = offsets[i];
        int len = seg.get(INT, at);
        int nSeg = seg.get(INT, at + 4);
        int[] segLens = new int[nSeg];
        MemorySegment.copy(seg, INT, at + 8, segLens, 0, nSeg);
        long idsAt = at + 8 + 4L * nSeg;
        int[] ids = new int[len];
        int[] labels = new int[len];
        MemorySegment.copy(seg, INT, idsAt, ids, 0, len);
        MemorySegment.copy(seg, INT, idsAt + 4L * len, labels, 0, len);
        return example(ids, labels, segLens, neat);
    }

    /** A stored row as an example: positions restart per packed sequence; neat packing masks with segment ids. */
    static Example example(int[] ids, int[] labels, int[] segLens, boolean neat) {
        int len = ids.length;
        int[] mask = new int[len];
        int[] pos = new int[len];
        int t = 0;
        for (int s = 0; s < segLens.length; s++) {
            for (int j = 0; j < segLens[s]; j++, t++) {
                mask[t] = neat ? s + 1 : 1;
                pos[t] = j;
            }
        }
        for (; t < len; t++) { // packing padding: label -100, position 0, attention 0 (neat) or 1 (plain)
            mask[t] = neat ? 0 : 1;
        }
        return new Example(ids, labels, mask, pos);
    }

    @Override
    public void close() {
        arena.close();
    }

    /** Streams records into a cache file; {@link #finish} publishes it atomically. */
    static final class Writer {
        private final OutputStream out;
        private final CRC32C crc = new CRC32C();
        private long position;
        private long[] offsets = new long[1024];
        private int count;

        private Writer(OutputStream out, boolean neat, int padId) throws IOException {
            this.out = out;
            ByteBuffer h = ByteBuffer.allocate(HEADER).order(ByteOrder.LITTLE_ENDIAN);
            h.put(MAGIC).putInt(neat ? 1 : 0).putInt(padId);
            write(h.array());
        }

        /** Writes a store at {@code target}: {@code body} adds records; all or nothing reaches the target. */
        static void write(Path target, boolean neat, int padId, Body body) throws IOException {
            AtomicFiles.write(target, os -> {
                Writer w = new Writer(os, neat, padId);
                String report = body.fill(w);
                w.finish(report);
                os.flush(); // AtomicFiles hands a buffered stream that it does not flush itself
            });
        }

        interface Body {
            /** Adds every record; returns the report JSON. */
            String fill(Writer w) throws IOException;
        }

        /**
         * @param segLens lengths of the sequences packed in this row (one entry when unpacked); tokens after their
         *                sum are padding
         */
        void add(int[] ids, int[] labels, int[] segLens) throws IOException {
            if (count == offsets.length) {
                offsets = java.util.Arrays.copyOf(offsets, count * 2);
            }
            offsets[count++] = position;
            ByteBuffer b = ByteBuffer.allocate(8 + 4 * segLens.length + 8 * ids.length).order(ByteOrder.LITTLE_ENDIAN);
            b.putInt(ids.length).putInt(segLens.length);
            for (int s : segLens) {
                b.putInt(s);
            }
            for (int id : ids) {
                b.putInt(id);
            }
            for (int l : labels) {
                b.putInt(l);
            }
            write(b.array());
        }

        int count() {
            return count;
        }

        private void finish(String reportJson) throws IOException {
            long indexOffset = position;
            ByteBuffer idx = ByteBuffer.allocate(8 * count).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < count; i++) {
                idx.putLong(offsets[i]);
            }
            write(idx.array());
            long reportOffset = position;
            byte[] report = reportJson.getBytes(StandardCharsets.UTF_8);
            write(report);
            ByteBuffer t = ByteBuffer.allocate(TRAILER).order(ByteOrder.LITTLE_ENDIAN);
            t.putLong(indexOffset).putLong(count).putLong(reportOffset).putLong(report.length)
                    .putInt((int) crc.getValue()).putInt(TRAILER_MAGIC);
            out.write(t.array());
        }

        private void write(byte[] b) throws IOException {
            out.write(b);
            crc.update(b);
            position += b.length;
        }
    }
}
