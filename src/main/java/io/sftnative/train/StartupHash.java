package io.sftnative.train;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

import io.sftnative.data.Example;
import io.sftnative.data.ExampleSet;

/**
 * SHA-256 fingerprints the ranks of a data-parallel job compare at start-up (the resolved config, the tokenized
 * training rows), so ranks started with different files or overrides are refused instead of training apart.
 */
final class StartupHash {
    private StartupHash() {}

    static String of(String text) {
        MessageDigest d = sha256();
        d.update(text.getBytes(StandardCharsets.UTF_8));
        return HexFormat.of().formatHex(d.digest());
    }

    /** Every row's ids, labels, attention mask and positions, in order. */
    static String of(ExampleSet set) {
        MessageDigest d = sha256();
        for (int i = 0; i < set.size(); i++) {
            Example e = set.get(i);
            for (int[] a : new int[][] {e.inputIds(), e.labels(), e.attentionMask(), e.positionIds()}) {
                ByteBuffer b = ByteBuffer.allocate(4 + 4 * (a == null ? 0 : a.length));
                b.putInt(a == null ? -1 : a.length);
                if (a != null) {
                    for (int v : a) {
                        b.putInt(v);
                    }
                }
                d.update(b.array());
            }
        }
        return HexFormat.of().formatHex(d.digest());
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
