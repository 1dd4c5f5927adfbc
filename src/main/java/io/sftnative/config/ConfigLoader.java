package io.sftnative.config;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;

/** Reads a LLaMA-Factory-style YAML file and applies {@code key=value} overrides. */
public final class ConfigLoader {
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    private ConfigLoader() {}

    /**
     * @param yaml      the config file, or null for overrides only
     * @param overrides {@code key=value} strings; later ones win
     */
    public static RawConfig load(Path yaml, List<String> overrides) {
        return load(yaml, overrides, Map.of());
    }

    /**
     * As {@link #load(Path, List)}, then {@code values} set in code (the library API) on top: file, then command
     * line, then code.
     */
    public static RawConfig load(Path yaml, List<String> overrides, Map<String, ?> values) {
        RawConfig base = read(yaml, overrides);
        if (values.isEmpty()) {
            return base;
        }
        Map<String, Object> merged = new LinkedHashMap<>(base.values());
        Map<String, String> origins = new LinkedHashMap<>();
        merged.keySet().forEach(k -> origins.put(k, base.origin(k)));
        values.forEach((k, v) -> {
            merged.put(k, v);
            origins.put(k, "code");
        });
        return new RawConfig(merged, origins);
    }

    /**
     * The top-level mapping, read token by token so that a key given twice is an error naming both lines (a plain
     * tree read keeps the last one silently), and {@code .nan}/{@code .inf} reach the key's reader as values (it
     * rejects them naming the key) instead of failing as "malformed YAML".
     */
    private static Object readTopLevel(String text, String name) throws IOException {
        try (JsonParser p = YAML.createParser(text)) {
            JsonToken t = p.nextToken();
            if (t == null) {
                return null;
            }
            if (t != JsonToken.START_OBJECT) {
                return YAML.readValue(text, Object.class);
            }
            Map<String, Object> out = new LinkedHashMap<>();
            Map<String, Integer> lines = new LinkedHashMap<>();
            while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                String key = p.currentName();
                int line = p.currentTokenLocation().getLineNr();
                Integer first = lines.putIfAbsent(key, line);
                if (first != null) {
                    throw new ConfigException("config file " + name + ": key '" + key + "' is set twice, at line "
                            + first + " and at line " + line + "; keep one of them");
                }
                out.put(key, value(p, p.nextToken()));
            }
            return out;
        }
    }

    private static Object value(JsonParser p, JsonToken t) throws IOException {
        return switch (t) {
            case VALUE_NULL -> null;
            case VALUE_TRUE -> Boolean.TRUE;
            case VALUE_FALSE -> Boolean.FALSE;
            case VALUE_NUMBER_INT -> p.getNumberValue();
            case VALUE_NUMBER_FLOAT -> {
                String text = p.getText();
                try {
                    yield Double.parseDouble(text);
                } catch (NumberFormatException e) {
                    yield text; // .nan, .inf: the key's reader names the key and the value
                }
            }
            case START_OBJECT, START_ARRAY -> p.readValueAs(Object.class);
            default -> p.getText();
        };
    }

    private static RawConfig read(Path yaml, List<String> overrides) {
        Map<String, Object> values = new LinkedHashMap<>();
        Map<String, String> origins = new LinkedHashMap<>();
        if (yaml != null) {
            String name = yaml.toString();
            Object tree;
            try {
                tree = readTopLevel(Files.readString(yaml), name);
            } catch (NoSuchFileException e) {
                throw new ConfigException("config file " + name + " does not exist");
            } catch (JsonProcessingException e) {
                var loc = e.getLocation();
                throw new ConfigException("config file " + name + " is not valid YAML"
                        + (loc == null ? "" : " at line " + loc.getLineNr() + ", column " + loc.getColumnNr())
                        + ": " + e.getOriginalMessage());
            } catch (IOException e) {
                throw new ConfigException("cannot read config file " + name + ": " + e.getMessage(), e);
            }
            if (tree == null) {
                tree = Map.of();
            }
            if (!(tree instanceof Map<?, ?> map)) {
                throw new ConfigException("config file " + name + " must be a mapping of key: value lines");
            }
            map.forEach((k, v) -> {
                values.put(String.valueOf(k), v);
                origins.put(String.valueOf(k), name);
            });
        }
        for (String o : overrides) {
            int eq = o.indexOf('=');
            if (eq <= 0) {
                throw new ConfigException("override '" + o + "' must look like key=value");
            }
            String key = o.substring(0, eq).trim();
            values.put(key, o.substring(eq + 1).trim());
            origins.put(key, "command line");
        }
        return new RawConfig(values, origins);
    }
}
