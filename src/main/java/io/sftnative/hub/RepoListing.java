package io.sftnative.hub;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * A repository at one revision as the hub's API describes it ({@code GET /api/models/{repo}/revision/{rev}}):
 * {@code sha} (the commit) and {@code siblings[].rfilename} (every file).
 */
record RepoListing(String commit, List<String> files) {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern COMMIT = Pattern.compile("^[0-9a-f]{40}$");

    static RepoListing parse(String body, String repo) {
        try {
            JsonNode root = JSON.readTree(body);
            String sha = root.path("sha").asText("");
            if (!COMMIT.matcher(sha).matches() || !root.path("siblings").isArray()) {
                throw new HubException(repo + ": the hub's revision API answered without a commit sha or file list"
                        + " (check HF_ENDPOINT)");
            }
            List<String> files = new ArrayList<>();
            for (JsonNode s : root.get("siblings")) {
                files.add(s.path("rfilename").asText());
            }
            return new RepoListing(sha, files);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new HubException(repo + ": the hub's revision API answered with no JSON (check HF_ENDPOINT): "
                    + e.getOriginalMessage(), e);
        }
    }

    /**
     * The files of a model or adapter repository that sft-native reads, as transformers' from_pretrained fetches
     * them: top-level configuration and tokenizer files ({@code *.json}, {@code *.jinja}, {@code tokenizer.model},
     * {@code *.tiktoken}, {@code merges.txt}, {@code vocab.txt}) and the safetensors weights: the shards named in
     * {@code model.safetensors.index.json} when there is one, else {@code model.safetensors} /
     * {@code adapter_model.safetensors}, else every top-level {@code .safetensors}. Other formats ({@code .bin},
     * {@code .gguf}, {@code original/}, ...) are not fetched.
     */
    static final HubDownload.FileSelection MODEL = new HubDownload.FileSelection() {
        @Override
        public List<String> files(List<String> listing, Function<String, Path> fetch) {
            Set<String> out = new LinkedHashSet<>();
            for (String f : listing) {
                if (!f.contains("/") && (f.endsWith(".json") || f.endsWith(".jinja") || f.endsWith(".tiktoken")
                        || f.equals("tokenizer.model") || f.equals("merges.txt") || f.equals("vocab.txt"))) {
                    out.add(f);
                }
            }
            if (listing.contains("model.safetensors.index.json")) {
                Path index = fetch.apply("model.safetensors.index.json");
                try {
                    JsonNode map = JSON.readTree(Files.readString(index)).path("weight_map");
                    Set<String> shards = new java.util.TreeSet<>();
                    map.forEach(v -> shards.add(v.asText()));
                    out.addAll(shards);
                } catch (java.io.IOException e) {
                    throw new HubException("cannot read the downloaded " + index + ": " + e.getMessage(), e);
                }
            } else if (listing.contains("model.safetensors") || listing.contains("adapter_model.safetensors")) {
                listing.stream().filter(f -> f.equals("model.safetensors") || f.equals("adapter_model.safetensors"))
                        .forEach(out::add);
            } else {
                listing.stream().filter(f -> !f.contains("/") && f.endsWith(".safetensors")).forEach(out::add);
            }
            boolean weights = out.stream().anyMatch(f -> f.endsWith(".safetensors"));
            return weights ? new ArrayList<>(out) : List.of();
        }

        @Override
        public String describe() {
            return "safetensors weights (sft-native reads .safetensors; .bin, .gguf and other formats are not read)";
        }
    };
}
