package io.sftnative.tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import ai.djl.sentencepiece.SpProcessor;
import ai.djl.sentencepiece.SpTokenizer;

/**
 * A sentencepiece {@code tokenizer.model} (Llama-2 style), run by the sentencepiece library through DJL.
 *
 * <p>Like HF's LlamaTokenizer, special-token text in the input ({@code <s>}, {@code </s>}, added tokens) is cut out
 * first and becomes its id; the pieces between are encoded by sentencepiece (which adds its dummy-prefix space to
 * each). The vocabulary (piece texts and types) is read from the model's protobuf so lookups need no native calls.
 */
final class SentencePieceTokenizer implements TokenizerEngine {
    static final String FILE = "tokenizer.model";
    private static final int TYPE_CONTROL = 3;

    private final SpTokenizer sp;
    private final SpProcessor processor;
    private final SpecialTokens special;
    private final SpecialTokenSplitter splitter;
    private final boolean[] isSpecial; // by id
    private final String[] pieces;

    private SentencePieceTokenizer(SpTokenizer sp, String[] pieces, boolean[] isSpecial, SpecialTokens special) {
        this.sp = sp;
        this.processor = sp.getProcessor();
        this.pieces = pieces;
        this.isSpecial = isSpecial;
        this.special = special;
        this.splitter = new SpecialTokenSplitter(special.all().keySet());
    }

    static LoadedTokenizer load(Path dir) {
        Path file = dir.resolve(FILE);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new TokenizerException("cannot read " + file + ": " + e.getMessage(), e);
        }
        List<String> pieceList = new ArrayList<>();
        List<Integer> types = new ArrayList<>();
        try {
            readPieces(bytes, pieceList, types);
        } catch (RuntimeException e) {
            throw new TokenizerException(file + " is not a sentencepiece model: " + e.getMessage(), e);
        }
        if (pieceList.isEmpty()) {
            throw new TokenizerException(file + " holds no pieces: not a sentencepiece model");
        }
        // LlamaTokenizer adds BOS by default; tokenizer_config.json may say otherwise.
        TokenizerConfig cfg = TokenizerConfig.read(dir, true);
        String[] pieces = pieceList.toArray(String[]::new);
        Map<String, Integer> vocab = new HashMap<>();
        boolean[] isSpecial = new boolean[Math.max(pieces.length, maxId(cfg) + 1)];
        Map<String, Integer> specialMap = new LinkedHashMap<>();
        for (int i = 0; i < pieces.length; i++) {
            vocab.putIfAbsent(pieces[i], i);
            if (types.get(i) == TYPE_CONTROL) {
                isSpecial[i] = true;
                specialMap.put(pieces[i], i);
            }
        }
        cfg.addedTokens().forEach((t, id) -> {
            vocab.putIfAbsent(t, id);
            specialMap.putIfAbsent(t, id);
            isSpecial[id] = true;
        });
        String unk = pieces.length > 0 && types.get(0) == 2 ? pieces[0] : "<unk>";
        SpecialTokens special = SpecialTokens.resolve(cfg, "<s>", "</s>", unk, specialMap,
                t -> vocab.getOrDefault(t, -1));
        for (int id : special.all().values()) {
            isSpecial[id] = true;
        }
        SpTokenizer sp;
        try {
            sp = new SpTokenizer(bytes);
        } catch (RuntimeException e) {
            throw new TokenizerException("sentencepiece cannot load " + file + ": " + e.getMessage(), e);
        }
        String[] allPieces = pieces;
        if (isSpecial.length > pieces.length) { // added tokens beyond the model's pieces
            allPieces = java.util.Arrays.copyOf(pieces, isSpecial.length);
            for (var e : cfg.addedTokens().entrySet()) {
                allPieces[e.getValue()] = e.getKey();
            }
        }
        return new LoadedTokenizer(dir, file, new SentencePieceTokenizer(sp, allPieces, isSpecial, special), vocab,
                allPieces.length, special, cfg);
    }

    private static int maxId(TokenizerConfig cfg) {
        return cfg.addedTokens().values().stream().mapToInt(Integer::intValue).max().orElse(-1);
    }

    /** ModelProto: field 1 = repeated SentencePiece {1: piece, 2: score, 3: type}. */
    private static void readPieces(byte[] b, List<String> pieces, List<Integer> types) {
        int[] pos = {0};
        while (pos[0] < b.length) {
            long key = varint(b, pos);
            int field = (int) (key >>> 3);
            int wire = (int) (key & 7);
            if (field == 1 && wire == 2) {
                int len = (int) varint(b, pos);
                int end = pos[0] + len;
                String piece = "";
                int type = 1;
                while (pos[0] < end) {
                    long k = varint(b, pos);
                    int f = (int) (k >>> 3);
                    int w = (int) (k & 7);
                    if (f == 1 && w == 2) {
                        int l = (int) varint(b, pos);
                        piece = new String(b, pos[0], l, java.nio.charset.StandardCharsets.UTF_8);
                        pos[0] += l;
                    } else if (f == 3 && w == 0) {
                        type = (int) varint(b, pos);
                    } else {
                        skip(b, pos, w);
                    }
                }
                pieces.add(piece);
                types.add(type);
            } else {
                skip(b, pos, wire);
            }
        }
    }

    private static long varint(byte[] b, int[] pos) {
        long v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            byte x = b[pos[0]++];
            v |= (long) (x & 0x7f) << shift;
            if (x >= 0) {
                return v;
            }
        }
        throw new IllegalArgumentException("bad varint");
    }

    private static void skip(byte[] b, int[] pos, int wire) {
        switch (wire) {
            case 0 -> varint(b, pos);
            case 1 -> pos[0] += 8;
            case 2 -> {
                int len = (int) varint(b, pos); // read first: "pos[0] += varint(...)" would lose the advance
                pos[0] += len;
            }
            case 5 -> pos[0] += 4;
            default -> throw new IllegalArgumentException("unsupported wire type " + wire);
        }
        if (pos[0] > b.length) {
            throw new IllegalArgumentException("truncated");
        }
    }

    @Override
    public int[] encode(String text) {
        List<int[]> parts = new ArrayList<>();
        int total = 0;
        for (SpecialTokenSplitter.Piece piece : splitter.split(text)) {
            int[] ids = piece.special() ? new int[] {special.all().get(piece.text())}
                    : processor.encode(piece.text());
            parts.add(ids);
            total += ids.length;
        }
        int[] out = new int[total];
        int o = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, o, p.length);
            o += p.length;
        }
        return out;
    }

    @Override
    public String decode(int[] ids, boolean skipSpecialTokens) {
        StringBuilder sb = new StringBuilder();
        List<Integer> run = new ArrayList<>();
        boolean prevSpecial = false;
        for (int i = 0; i < ids.length; i++) {
            int id = ids[i];
            if (id >= 0 && id < isSpecial.length && isSpecial[id]) {
                flush(run, sb);
                if (!skipSpecialTokens) {
                    if (!prevSpecial && i != 0) {
                        sb.append(' '); // as LlamaTokenizer (legacy) puts a space before a special token
                    }
                    sb.append(pieces[id]);
                }
                prevSpecial = true;
            } else {
                run.add(id);
                prevSpecial = false;
            }
        }
        flush(run, sb);
        return sb.toString();
    }

    /**
     * Decodes a run of ordinary pieces as sentencepiece does: "▁" is a space, byte pieces {@code <0xAB>} are UTF-8
     * bytes, the run's leading space (the dummy prefix) is dropped. Done in Java from the model's piece table
     * because DJL's JNI decode garbles non-ASCII text.
     */
    private void flush(List<Integer> run, StringBuilder sb) {
        if (run.isEmpty()) {
            return;
        }
        StringBuilder out = new StringBuilder();
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        for (int id : run) {
            String piece = id >= 0 && id < pieces.length && pieces[id] != null ? pieces[id] : "";
            if (piece.length() == 6 && piece.startsWith("<0x") && piece.endsWith(">")) {
                bytes.write(Integer.parseInt(piece.substring(3, 5), 16));
                continue;
            }
            if (bytes.size() > 0) {
                out.append(bytes.toString(java.nio.charset.StandardCharsets.UTF_8));
                bytes.reset();
            }
            out.append(id == special.unkId() ? " \u2047 " : piece.replace('\u2581', ' '));
        }
        if (bytes.size() > 0) {
            out.append(bytes.toString(java.nio.charset.StandardCharsets.UTF_8));
        }
        sb.append(out.length() > 0 && out.charAt(0) == ' ' ? out.substring(1) : out);
        run.clear();
    }

    @Override
    public void close() {
        sp.close();
    }
}
