package io.sftnative.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.sftnative.template.Template;
import io.sftnative.template.Templates;
import io.sftnative.testing.Shared;
import io.sftnative.tokenizer.Tokenizer;

/** tokenized_path: the first run saves the rows, later runs load them without the raw data; a mismatch is refused. */
class TokenizedPathTest {
    static Tokenizer qwen;
    static Path demo;

    @TempDir
    Path dir;

    @BeforeAll
    static void load() {
        demo = Shared.require("data/llamafactory-demo");
        qwen = Tokenizer.load(Shared.require("assets/tokenizers/qwen2_5"));
    }

    @AfterAll
    static void close() {
        if (qwen != null) {
            qwen.close();
        }
    }

    DatasetLoader.Options opts(List<String> datasets, double valSize, Path tokenized) {
        return new DatasetLoader.Options(datasets, List.of(), demo, "sft", 256, 40, valSize, false, false, false,
                false, 1, false, dir.resolve("cache"), 3, false, DatasetLoader.Mix.CONCAT, tokenized);
    }

    static List<int[]> rows(ExampleSet s) {
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < s.size(); i++) {
            out.add(s.get(i).inputIds());
        }
        return out;
    }

    @Test
    void savesOnceThenLoadsWithoutTheRawData() throws Exception {
        Path tok = dir.resolve("tokenized");
        Template qwenT = Templates.named("qwen");
        List<int[]> train;
        List<int[]> eval;
        List<String> log = new ArrayList<>();
        try (LoadedData d = DatasetLoader.load(opts(List.of("identity"), 0.25, tok), qwen, qwenT, log::add)) {
            train = rows(d.train());
            eval = rows(d.eval());
        }
        assertEquals(30, train.size());
        assertEquals(10, eval.size());
        assertTrue(Files.exists(tok.resolve(TokenizedDir.META)) && Files.exists(tok.resolve("train.sftds")));
        assertTrue(log.stream().anyMatch(l -> l.contains("tokenized dataset saved at")), "" + log);

        // a dataset that does not exist: never read, the rows (and the val_size split) come from tokenized_path
        log.clear();
        try (LoadedData d = DatasetLoader.load(opts(List.of("no_such_dataset"), 0, tok), qwen, qwenT, log::add)) {
            assertEquals(train.size(), d.train().size());
            for (int i = 0; i < train.size(); i++) {
                assertArrayEquals(train.get(i), d.train().get(i).inputIds());
            }
            assertEquals(eval.size(), d.eval().size());
            assertArrayEquals(eval.get(0), d.eval().get(0).inputIds());
        }
        assertTrue(log.stream().anyMatch(l -> l.contains("loading the tokenized dataset from")), "" + log);

        DataException other = assertThrows(DataException.class, () -> DatasetLoader.load(opts(List.of("identity"), 0,
                tok), qwen, Templates.named("chatml"), m -> {}));
        assertTrue(other.getMessage().contains("another template"), other.getMessage());
        assertEquals("tokenized_path", other.key());
    }

    @Test
    void aLlamaFactoryArrowDirectoryIsRefusedByName() throws Exception {
        Path lf = dir.resolve("lf");
        Files.createDirectories(lf);
        Files.writeString(lf.resolve("dataset_dict.json"), "{\"splits\": [\"train\"]}");
        DataException e = assertThrows(DataException.class, () -> DatasetLoader.load(opts(List.of("identity"), 0, lf),
                qwen, Templates.named("qwen"), m -> {}));
        assertTrue(e.getMessage().contains("not implemented in sft-native"), e.getMessage());
    }
}
