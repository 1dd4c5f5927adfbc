package io.sftnative.config;

/**
 * Merged-model export (LLaMA-Factory's ExportArguments).
 *
 * @param exportDir          directory the merged HF model is written to (required by {@code export})
 * @param exportSize         maximum size of one safetensors shard in GB (10^9 bytes, as transformers' "5GB")
 * @param exportDevice       cpu (default) or auto: where the merge runs (auto: the {@code device} key, else
 *                           SFT_DEVICE, else the GPU when there is one)
 * @param exportLegacyFormat LLaMA-Factory's switch to .bin files; only false (safetensors) is supported
 * @param exportQuantizationBit 4 or 8 to write the merged model bitsandbytes-quantized (0: full precision). Unlike
 *                           LLaMA-Factory (GPTQ with a calibration set) this writes bitsandbytes NF4/FP4/int8, which
 *                           needs no calibration data; the 4-bit type, double quantization and blocksize come from
 *                           {@code quantization_type}, {@code double_quantization}, {@code quantization_blocksize}
 */
public record ExportArgs(String exportDir, double exportSize, String exportDevice, boolean exportLegacyFormat,
        int exportQuantizationBit) {

    public static ExportArgs from(RawConfig c) {
        ExportArgs e = new ExportArgs(
                c.string("export_dir", null),
                c.number("export_size", 5),
                c.choice("export_device", "cpu", "cpu", "auto"),
                c.bool("export_legacy_format", false),
                c.integer("export_quantization_bit", 0));
        if (e.exportQuantizationBit != 0 && e.exportQuantizationBit != 4 && e.exportQuantizationBit != 8) {
            throw new ConfigException("key 'export_quantization_bit' (" + c.origin("export_quantization_bit")
                    + ") must be 4 or 8 (or absent for a full-precision export), got " + e.exportQuantizationBit);
        }
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
