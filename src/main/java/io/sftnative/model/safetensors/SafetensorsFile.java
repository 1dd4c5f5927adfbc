package io.sftnative.model.safetensors;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.Set;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * One {@code .safetensors} file, validated on open and memory-mapped (private, copy-on-write).
 *
 * <p>{@link #view} returns a zero-copy tensor over the mapping: it is valid only until {@link #close()}, so anything
 * that outlives the file must be {@link #load loaded} (a copy owned by libtorch). {@code view} copies instead when a
 * tensor's bytes are not aligned to its element size (libtorch kernels assume alignment).
 *
 * <pre>{@code
 * try (SafetensorsFile f = SafetensorsFile.open(path); PointerScope scope = new PointerScope()) {
 *     Tensor w = f.view("model.norm.weight");      // (H) zero-copy, dies with f
 *     Tensor owned = f.load("model.norm.weight");  // (H) a copy that outlives f
 * }
 * }</pre>
 */
public final class SafetensorsFile implements AutoCloseable {
    private final Path path;
    private final SafetensorsHeader header;
    private final long dataStart; // file offset of the data area
    private final MappedFile map; // null when the data area is empty
    private boolean closed;

    private SafetensorsFile(Path path, SafetensorsHeader header, long dataStart, MappedFile map) {
        this.path = path;
        this.header = header;
        this.dataStart = dataStart;
        this.map = map;
    }

    /** Reads and validates the header, then maps the file. */
    public static SafetensorsFile open(Path path) throws IOException {
        long fileSize;
        byte[] headerBytes;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            fileSize = ch.size();
            if (fileSize < 8) {
                throw new SafetensorsException(path + ": only " + fileSize + " bytes, too short for a safetensors"
                        + " header; the file is truncated or not a safetensors file");
            }
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, len, 0, path);
            long n = len.getLong(0);
            if (n < 0 || n > fileSize - 8) {
                throw new SafetensorsException(path + ": header length " + Long.toUnsignedString(n)
                        + " runs beyond the end of the file (" + fileSize + " bytes); the file is truncated or not"
                        + " a safetensors file");
            }
            if (n > SafetensorsHeader.MAX_HEADER_BYTES) {
                throw new SafetensorsException(path + ": header length " + n + " exceeds the 100 MB limit of the"
                        + " format; the file is corrupt");
            }
            ByteBuffer hb = ByteBuffer.allocate((int) n);
            readFully(ch, hb, 8, path);
            headerBytes = hb.array();
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(path.toString(), null, "safetensors file not found");
        }
        long dataStart = 8 + headerBytes.length;
        SafetensorsHeader header = SafetensorsHeader.parse(path, headerBytes, fileSize - dataStart);
        MappedFile map = fileSize > dataStart ? MappedFile.map(path, fileSize) : null;
        return new SafetensorsFile(path, header, dataStart, map);
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long pos, Path path) throws IOException {
        while (buf.hasRemaining()) {
            int r = ch.read(buf, pos + buf.position());
            if (r < 0) {
                throw new EOFException(path + ": unexpected end of file");
            }
        }
    }

    public Path path() {
        return path;
    }

    /** Tensor names in header order. */
    public Set<String> names() {
        return header.entries().keySet();
    }

    public boolean contains(String name) {
        return header.entries().containsKey(name);
    }

    /** All entries by name, in header order. */
    public Map<String, TensorEntry> entries() {
        return header.entries();
    }

    public TensorEntry entry(String name) {
        TensorEntry e = header.entries().get(name);
        if (e == null) {
            throw new SafetensorsException(path + ": no tensor named '" + name + "'");
        }
        return e;
    }

    /** The {@code __metadata__} map (empty if absent). */
    public Map<String, String> metadata() {
        return header.metadata();
    }

    /** A zero-copy tensor over the file's bytes, valid until {@link #close()}. Shape and dtype as stored. */
    public Tensor view(String name) {
        checkOpen();
        TensorEntry e = entry(name);
        TensorOptions opts = new TensorOptions(e.dtype().scalarType());
        if (e.byteLength() == 0) {
            return torch.zeros(e.shape(), opts);
        }
        long address = map.address() + dataStart + e.begin();
        Pointer data = new RawPointer(address, e.byteLength());
        Tensor t = torch.from_blob(data, e.shape(), opts);
        if (address % e.dtype().bytes() != 0) {
            Tensor copy = t.clone();
            t.close();
            return copy;
        }
        return t;
    }

    /** A copy owned by libtorch (it outlives this file), in the stored dtype. */
    public Tensor load(String name) {
        try (Tensor v = view(name)) {
            return v.clone();
        }
    }

    /** A copy owned by libtorch, converted to {@code dtype}. */
    public Tensor load(String name, ScalarType dtype) {
        try (Tensor v = view(name)) {
            if (DType.same(v.scalar_type(), dtype)) {
                return v.clone();
            }
            return v.to(dtype);
        }
    }

    /**
     * Hint that the caller is done with {@code name}'s bytes (it copied them): drops them from resident memory, so
     * loading tensor by tensor keeps the peak at the copies instead of copies + file. Views of this tensor handed out
     * before still work (the pages are read again from the file).
     */
    public void release(String name) {
        checkOpen();
        TensorEntry e = entry(name);
        if (map != null) {
            map.release(dataStart + e.begin(), e.byteLength());
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException(path + " is closed");
        }
    }

    /** Unmaps the file; views handed out before are invalid from now on. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            if (map != null) {
                map.close();
            }
        }
    }

    /** A JavaCPP pointer to memory we do not own (from_blob never frees it). */
    private static final class RawPointer extends Pointer {
        RawPointer(long address, long bytes) {
            this.address = address;
            this.limit = bytes;
            this.capacity = bytes;
        }
    }
}
