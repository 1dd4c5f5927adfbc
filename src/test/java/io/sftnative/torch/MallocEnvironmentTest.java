package io.sftnative.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashMap;
import java.util.Map;

import org.junit.jupiter.api.Test;

/** The malloc variables are added to a child's environment without overriding what the user set. */
class MallocEnvironmentTest {
    @Test
    void addsMissingVariablesAndKeepsTheUsersValues() {
        Map<String, String> env = new HashMap<>(Map.of("MALLOC_ARENA_MAX", "4", "PATH", "/bin"));
        MallocEnvironment.addTo(env);
        assertEquals("4", env.get("MALLOC_ARENA_MAX")); // the user's choice wins
        assertEquals("0", env.get("MALLOC_MMAP_MAX_"));
        assertEquals("68719476736", env.get("MALLOC_TRIM_THRESHOLD_"));
        assertEquals("/bin", env.get("PATH"));
        assertEquals(4, env.size());
    }
}
