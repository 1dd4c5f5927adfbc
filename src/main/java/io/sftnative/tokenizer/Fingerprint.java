package io.sftnative.tokenizer;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** SHA-256 of file contents (absent files count as empty), as a short hex key. */
public final class Fingerprint {
    private Fingerprint() {}

    public static String of(Path... files) {
        MessageDigest md = sha256();
        byte[] buf = new byte[1 << 16];
        for (Path f : files) {
            md.update(f.getFileName().toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
            if (!Files.exists(f)) {
                md.update((byte) 0);
                continue;
            }
            try (InputStream in = Files.newInputStream(f)) {
                for (int n; (n = in.read(buf)) > 0;) {
                    md.update(buf, 0, n);
                }
            } catch (IOException e) {
                throw new TokenizerException("cannot read " + f + ": " + e.getMessage(), e);
            }
        }
        return HexFormat.of().formatHex(md.digest(), 0, 16);
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
