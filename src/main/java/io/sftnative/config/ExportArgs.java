package io.sftnative.config;

/**
 * Merged-model export (LLaMA-Factory's ExportArguments).
 *
 * @param exportDir          directory the merged HF model is written to (required by {@code export})
 * @param exportSize         maximum size of one safetensors shard in GB (10^9 bytes, as transformers' "5GB")
 * @param exportDevice       cpu or auto (accepted for compatibility; the export runs where the model is)
 * @param exportLegacyFormat LLaMA-Factory's switch to .bin files; only false (safetensors) is supported
 */
public record ExportArgs(String exportDir, double exportSize, String exportDevice, boolean exportLegacyFormat) {

    public static ExportArgs from(RawConfig c) {
        ExportArgs e = new ExportArgs(
                c.string("export_dir", null),
                c.number("export_size", 5),
                c.choice("export_device", "cpu", "cpu", "auto"),
                c.bool("export_legacy_format", false));
        if (!(e.exportSize > 0)) {
            throw new ConfigException("key 'export_size' (" + c.origin("export_size") + ") must be a positive number"
                    + " of GB per shard, got " + e.exportSize);
        }
        if (e.exportLegacyFormat) {
            throw new ConfigException("key 'export_legacy_format' (" + c.origin("export_legacy_format") + ") is true;"
                    + " sft-native writes safetensors only (the format transformers loads by default): remove the key"
                    + " or set it to false");
        }
        return e;
    }

    /** export_size in bytes per shard. */
    public long maxShardBytes() {
        return Math.max(1L, (long) (exportSize * 1_000_000_000L));
    }
}
