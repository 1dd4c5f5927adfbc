package io.sftnative.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointDirsTest {
    @TempDir
    Path out;

    private Path checkpoint(long step, boolean complete) throws Exception {
        Path d = Files.createDirectories(CheckpointDirs.dirFor(out, step));
        Files.writeString(d.resolve("model.safetensors"), "weights " + step);
        if (complete) {
            Files.writeString(d.resolve(CheckpointDirs.STATE_FILE), "{\"global_step\": " + step + "}");
        }
        return d;
    }

    @Test
    void listsCheckpointsByStepNotByName() throws Exception {
        checkpoint(100, true);
        checkpoint(20, true);
        checkpoint(3, true);
        Files.createDirectories(out.resolve("checkpoint-7abc"));
        Files.createDirectories(out.resolve(".checkpoint-200.tmp-x")); // a staging directory
        Files.writeString(out.resolve("checkpoint-9"), "a file, not a directory");
        assertEquals(List.of(out.resolve("checkpoint-3"), out.resolve("checkpoint-20"), out.resolve("checkpoint-100")),
                CheckpointDirs.list(out));
        assertEquals(Optional.of(out.resolve("checkpoint-100")), CheckpointDirs.latest(out));
        assertEquals(List.of(), CheckpointDirs.list(out.resolve("absent")));
    }

    @Test
    void latestSkipsIncompleteCheckpoints() throws Exception {
        checkpoint(10, true);
        checkpoint(20, false);
        assertEquals(Optional.of(out.resolve("checkpoint-10")), CheckpointDirs.latest(out));
    }

    @Test
    void rotationKeepsTheNewestTheJustWrittenAndTheBest() throws Exception {
        for (long s : new long[] {1, 2, 3, 4, 5}) {
            checkpoint(s, true);
        }
        Path best = out.resolve("checkpoint-3");
        Path latest = out.resolve("checkpoint-5");
        assertEquals(List.of(out.resolve("checkpoint-1"), out.resolve("checkpoint-2"), out.resolve("checkpoint-4")),
                CheckpointRotation.rotate(out, 2, latest, best));
        assertEquals(List.of(best, latest), CheckpointDirs.list(out));
        try (var s = Files.list(out)) {
            assertEquals(2, s.count(), "no leftovers of deleted checkpoints");
        }
    }

    @Test
    void rotationLikeHf() throws Exception {
        for (long s : new long[] {10, 20, 30}) {
            checkpoint(s, true);
        }
        assertEquals(List.of(), CheckpointRotation.rotate(out, 0, out.resolve("checkpoint-30"), null), "0: keep all");
        assertEquals(List.of(), CheckpointRotation.rotate(out, 3, out.resolve("checkpoint-30"), null));
        assertEquals(List.of(out.resolve("checkpoint-10")),
                CheckpointRotation.rotate(out, 2, out.resolve("checkpoint-30"), null));
        // limit 1 with a best that is not the latest: both stay (HF raises the limit to 2)
        assertEquals(List.of(), CheckpointRotation.rotate(out, 1, out.resolve("checkpoint-30"),
                out.resolve("checkpoint-20")));
        assertEquals(List.of(out.resolve("checkpoint-20")),
                CheckpointRotation.rotate(out, 1, out.resolve("checkpoint-30"), null));
        // a resumed run that writes an older step than a leftover newer checkpoint: the one just written stays
        checkpoint(40, true);
        checkpoint(35, true);
        List<Path> deleted = CheckpointRotation.rotate(out, 1, out.resolve("checkpoint-35"), null);
        assertEquals(List.of(out.resolve("checkpoint-30"), out.resolve("checkpoint-40")), deleted);
        assertTrue(Files.isDirectory(out.resolve("checkpoint-35")));
    }

    @Test
    void resumeResolution() throws Exception {
        // fresh output dir: fresh run
        assertEquals(Optional.empty(), ResumeResolver.resolve(null, out.resolve("new"), false, true));
        // true without checkpoints: clear error
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ResumeResolver.resolve("true", out, false, true));
        assertTrue(e.getMessage().contains("no complete checkpoint"), e.getMessage());
        checkpoint(5, true);
        checkpoint(8, true);
        assertEquals(Optional.of(out.resolve("checkpoint-8")), ResumeResolver.resolve("True", out, false, true));
        // unset: LLaMA-Factory resumes the latest automatically, unless overwrite_output_dir or not training
        assertEquals(Optional.of(out.resolve("checkpoint-8")), ResumeResolver.resolve(null, out, false, true));
        assertEquals(Optional.empty(), ResumeResolver.resolve(null, out, true, true));
        assertEquals(Optional.empty(), ResumeResolver.resolve(null, out, false, false));
        assertEquals(Optional.empty(), ResumeResolver.resolve("false", out, false, true));
        // an explicit path
        String five = out.resolve("checkpoint-5").toString();
        assertEquals(Optional.of(out.resolve("checkpoint-5")), ResumeResolver.resolve(five, out, false, true));
        e = assertThrows(IllegalArgumentException.class,
                () -> ResumeResolver.resolve(out.resolve("checkpoint-6").toString(), out, false, true));
        assertTrue(e.getMessage().contains("not a directory"), e.getMessage());
        checkpoint(9, false);
        e = assertThrows(IllegalArgumentException.class,
                () -> ResumeResolver.resolve(out.resolve("checkpoint-9").toString(), out, false, true));
        assertTrue(e.getMessage().contains("not a complete checkpoint"), e.getMessage());
    }

    @Test
    void finishedWeightsWithoutCheckpointAreNotOverwritten() throws Exception {
        Files.writeString(out.resolve("adapter_model.safetensors"), "trained");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ResumeResolver.resolve(null, out, false, true));
        assertTrue(e.getMessage().contains("overwrite_output_dir"), e.getMessage());
        assertEquals(Optional.empty(), ResumeResolver.resolve(null, out, true, true));
        assertFalse(CheckpointDirs.step(out.resolve("checkpoint-99999999999999999999999")).isPresent());
    }
}
