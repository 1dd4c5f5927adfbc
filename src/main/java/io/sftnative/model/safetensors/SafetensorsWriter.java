package io.sftnative.model.safetensors;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.sftnative.files.AtomicFiles;
import io.sftnative.torch.Devices;

/**
 * Writes one {@code .safetensors} file the way huggingface/safetensors does: tensors back to back with no holes,
 * ordered by element size (largest first) then name, the JSON header padded with spaces to a multiple of 8 bytes,
 * {@code __metadata__} (string to string) kept. The file is written atomically (temp file, fsync, rename).
 */
public final class SafetensorsWriter {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int CHUNK = 1 << 20;

    private SafetensorsWriter() {}

    /** Writes {@code tensors} (any device, any layout; read, never modified) with {@code metadata} (may be empty). */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata)
            throws IOException {
        List<Map.Entry<String, Tensor>> order = ordered(tensors);
        byte[] header = header(order, metadata);
        AtomicFiles.write(file, out -> {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
            out.write(len.array());
            out.write(header);
            byte[] buf = new byte[CHUNK];
            for (Map.Entry<String, Tensor> e : order) {
                writeData(e.getValue(), out, buf);
            }
            out.flush(); // AtomicFiles hands us a buffered stream that it does not flush itself
        });
    }

    /** Bytes the tensor occupies in a file. */
    public static long byteSize(Tensor t) {
        return t.numel() * DType.of(t.scalar_type()).bytes();
    }

    static List<Map.Entry<String, Tensor>> ordered(Map<String, Tensor> tensors) {
        List<Map.Entry<String, Tensor>> order = new ArrayList<>(tensors.entrySet());
        for (Map.Entry<String, Tensor> e : order) {
            if (e.getKey() == null || e.getKey().isEmpty() || e.getKey().equals(SafetensorsHeader.METADATA_KEY)) {
                throw new IllegalArgumentException("invalid tensor name '" + e.getKey() + "' for a safetensors file");
            }
            if (e.getValue() == null || e.getValue().isNull() || !e.getValue().defined()) {
                throw new IllegalArgumentException("tensor '" + e.getKey() + "' is null or undefined");
            }
        }
        order.sort(Comparator.<Map.Entry<String, Tensor>>comparingInt(
                e -> -DType.of(e.getValue().scalar_type()).bytes()).thenComparing(Map.Entry::getKey));
        return order;
    }

    private static byte[] header(List<Map.Entry<String, Tensor>> order, Map<String, String> metadata) {
        Map<String, Object> root = new LinkedHashMap<>();
        if (metadata != null && !metadata.isEmpty()) {
            root.put(SafetensorsHeader.METADATA_KEY, new LinkedHashMap<>(metadata));
        }
        long offset = 0;
        for (Map.Entry<String, Tensor> e : order) {
            Tensor t = e.getValue();
            ObjectNode n = JSON.createObjectNode();
            n.put("dtype", DType.of(t.scalar_type()).name());
            ArrayNode shape = n.putArray("shape");
            for (long d : t.sizes().vec().get()) {
                shape.add(d);
            }
            long size = byteSize(t);
            n.putArray("data_offsets").add(offset).add(offset + size);
            offset += size;
            root.put(e.getKey(), n);
        }
        try {
            byte[] json = JSON.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
            int padded = (json.length + 7) / 8 * 8;
            byte[] out = new byte[padded];
            System.arraycopy(json, 0, out, 0, json.length);
            for (int i = json.length; i < padded; i++) {
                out[i] = ' ';
            }
            return out;
        } catch (IOException e) {
            throw new IllegalStateException("cannot encode safetensors header", e);
        }
    }

    private static void writeData(Tensor t, OutputStream out, byte[] buf) throws IOException {
        long size = byteSize(t);
        if (size == 0) {
            return;
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor c = Devices.toHost(t.detach()).contiguous(); // a GPU tensor is copied to the host to be written
            BytePointer p = new BytePointer(c.data_ptr());
            p.capacity(size).limit(size);
            for (long off = 0; off < size; off += CHUNK) {
                int n = (int) Math.min(CHUNK, size - off);
                p.position(off).get(buf, 0, n);
                out.write(buf, 0, n);
            }
        }
    }
}
