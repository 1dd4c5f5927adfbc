package io.sftnative.testing;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/** Writes a NaN into the first element of one tensor of a safetensors file, in place (for hostile-input tests). */
public final class Poison {
    private Poison() {}

    public static void nan(Path file, String tensor) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            byte[] len = new byte[8];
            f.readFully(len);
            long n = ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getLong();
            byte[] header = new byte[(int) n];
            f.readFully(header);
            JsonNode h = new ObjectMapper().readTree(new String(header, StandardCharsets.UTF_8));
            JsonNode e = h.get(tensor);
            if (e == null) {
                throw new IllegalArgumentException("no tensor " + tensor + " in " + file + ": " + h.fieldNames());
            }
            long at = 8 + n + e.get("data_offsets").get(0).asLong();
            f.seek(at);
            switch (e.get("dtype").asText()) {
                case "F32" -> f.write(new byte[] {0, 0, (byte) 0xC0, 0x7F});
                case "BF16", "F16" -> f.write(e.get("dtype").asText().equals("BF16") ? new byte[] {(byte) 0xC0, 0x7F}
                        : new byte[] {0, 0x7E});
                default -> throw new IllegalArgumentException("dtype " + e.get("dtype"));
            }
        }
    }
}
