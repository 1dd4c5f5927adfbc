package io.sftnative.data;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** streaming: true — HF's shuffle buffer order, training before the file is read, seeded reproducibility. */
class StreamingTest {

    @Test
    void shuffleBufferOrderIsHfDatasets() throws Exception {
        JsonNode golden = new ObjectMapper().readTree(Path.of("src/test/resources/golden/formats/stream_shuffle.json")
                .toFile());
        for (JsonNode c : golden.get("cases")) {
            for (int epoch = 0; epoch < 2; epoch++) {
                ShuffleBuffer<Integer> buf = new ShuffleBuffer<>(c.get("buffer_size").asInt(), c.get("seed").asLong(),
                        epoch);
                List<Integer> out = new ArrayList<>();
                for (int i = 0; i < c.get("n").asInt(); i++) {
                    buf.add(i, out::add);
                }
                buf.finish(out::add);
                List<Integer> want = new ArrayList<>();
                c.get("epoch" + epoch).forEach(x -> want.add(x.asInt()));
                assertEquals(want, out, "n " + c.get("n") + " buffer " + c.get("buffer_size") + " seed "
                        + c.get("seed") + " epoch " + epoch);
            }
        }
    }
}
