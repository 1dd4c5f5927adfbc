package io.sftnative.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BOOLEAN;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;

/**
 * The Java descriptors in {@link BnbAbi} are the header's declarations: same names, same argument and return
 * layouts, same group (CPU drop-in, CUDA drop-in, extension). Fails on any drift in either direction.
 */
class BnbAbiHeaderTest {
    private static final Path HEADER = Path.of("native/include/sftnative_bnb.h");
    private static final Pattern DECL = Pattern.compile("^SFTN_API\\s+(.+?)\\b(\\w+)\\(([^)]*)\\);.*$");

    @Test
    void everyHeaderDeclarationHasTheSameDescriptorInJava() throws IOException {
        Map<String, FunctionDescriptor> header = new LinkedHashMap<>();
        Map<String, BnbAbi.Group> groups = new LinkedHashMap<>();
        BnbAbi.Group group = null;
        for (String line : Files.readAllLines(HEADER)) {
            if (line.contains("1a. bitsandbytes drop-ins, CPU")) {
                group = BnbAbi.Group.CPU_DROP_IN;
            } else if (line.contains("1b. bitsandbytes drop-ins, CUDA")) {
                group = BnbAbi.Group.CUDA_DROP_IN;
            } else if (line.contains("2. Extensions")) {
                group = BnbAbi.Group.EXTENSION;
            }
            Matcher m = DECL.matcher(line.trim());
            if (!m.matches()) {
                if (line.startsWith("SFTN_API")) {
                    fail("unparsable declaration (keep one per line): " + line);
                }
                continue;
            }
            String ret = m.group(1).trim();
            List<MemoryLayout> args = new ArrayList<>();
            String params = m.group(3).trim();
            if (!params.equals("void") && !params.isEmpty()) {
                for (String p : params.split(",")) {
                    args.add(layout(p.trim(), line));
                }
            }
            MemoryLayout[] a = args.toArray(MemoryLayout[]::new);
            FunctionDescriptor d = ret.equals("void") ? FunctionDescriptor.ofVoid(a)
                    : FunctionDescriptor.of(layout(ret + " x", line), a);
            assertTrue(header.put(m.group(2), d) == null, "declared twice: " + m.group(2));
            groups.put(m.group(2), group);
        }
        assertTrue(header.size() > 60, "parsed only " + header.size() + " declarations from " + HEADER);

        TreeSet<String> missingInJava = new TreeSet<>(header.keySet());
        missingInJava.removeAll(BnbAbi.symbols().keySet());
        TreeSet<String> missingInHeader = new TreeSet<>(BnbAbi.symbols().keySet());
        missingInHeader.removeAll(header.keySet());
        assertTrue(missingInJava.isEmpty(), "declared in the header but not in BnbAbi: " + missingInJava);
        assertTrue(missingInHeader.isEmpty(), "in BnbAbi but not declared in the header: " + missingInHeader);
        for (var e : header.entrySet()) {
            BnbAbi.Symbol s = BnbAbi.symbol(e.getKey());
            assertEquals(e.getValue(), s.descriptor(), "descriptor of " + e.getKey());
            assertEquals(groups.get(e.getKey()), s.group(), "group of " + e.getKey());
        }
    }

    /** C parameter (type + name) -> FFM layout, spec §1.2. */
    private static MemoryLayout layout(String param, String line) {
        String p = param.replaceAll("\\bconst\\b", "").trim();
        if (p.contains("*") || p.startsWith("sftn_stream")) {
            return ADDRESS;
        }
        String type = p.substring(0, p.lastIndexOf(' ')).trim();
        return switch (type) {
            case "int", "int32_t" -> JAVA_INT;
            case "long long", "int64_t" -> JAVA_LONG;
            case "float" -> JAVA_FLOAT;
            case "double" -> JAVA_DOUBLE;
            case "bool" -> JAVA_BOOLEAN;
            default -> throw new AssertionError("no FFM layout for C type '" + type + "' in: " + line);
        };
    }
}
