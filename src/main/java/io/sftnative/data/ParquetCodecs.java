package io.sftnative.data;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.zip.GZIPInputStream;

import org.apache.parquet.bytes.BytesInput;
import org.apache.parquet.compression.CompressionCodecFactory;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;

/**
 * Page decompression for {@link ParquetRecordReader} without Hadoop: parquet-java's own codec factory goes through
 * Hadoop's codec classes, so the codecs are wired here to the libraries parquet-java itself depends on (snappy-java,
 * zstd-jni, aircompressor for LZ4_RAW) and the JDK's gzip. These are the codecs pyarrow, pandas and HF write;
 * BROTLI, LZO and Hadoop-framed LZ4 are refused by name.
 */
final class ParquetCodecs implements CompressionCodecFactory {

    @Override
    public BytesInputCompressor getCompressor(CompressionCodecName codec) {
        throw new UnsupportedOperationException("sft-native only reads Parquet");
    }

    @Override
    public BytesInputDecompressor getDecompressor(CompressionCodecName codec) {
        return switch (codec) {
            case UNCOMPRESSED, SNAPPY, GZIP, ZSTD, LZ4_RAW -> new Decompressor(codec);
            default -> throw new IllegalArgumentException("Parquet compression " + codec + " is not supported by"
                    + " sft-native (snappy, gzip, zstd, lz4_raw and none are): rewrite the file, e.g. with"
                    + " pyarrow.parquet.write_table(table, path, compression='zstd')");
        };
    }

    @Override
    public void release() {}

    private record Decompressor(CompressionCodecName codec) implements BytesInputDecompressor {
        @Override
        public BytesInput decompress(BytesInput bytes, int uncompressedSize) throws IOException {
            if (codec == CompressionCodecName.UNCOMPRESSED) {
                return bytes;
            }
            return BytesInput.from(decompress(bytes.toByteArray(), uncompressedSize));
        }

        @Override
        public void decompress(ByteBuffer input, int compressedSize, ByteBuffer output, int uncompressedSize)
                throws IOException {
            byte[] in = new byte[compressedSize];
            input.get(in);
            output.put(codec == CompressionCodecName.UNCOMPRESSED ? in : decompress(in, uncompressedSize));
        }

        private byte[] decompress(byte[] in, int size) throws IOException {
            byte[] out = new byte[size];
            int n;
            switch (codec) {
                case SNAPPY -> n = org.xerial.snappy.Snappy.uncompress(in, 0, in.length, out, 0);
                case ZSTD -> n = (int) com.github.luben.zstd.Zstd.decompressByteArray(out, 0, size, in, 0,
                        in.length);
                case LZ4_RAW -> n = new io.airlift.compress.lz4.Lz4Decompressor().decompress(in, 0, in.length, out,
                        0, size);
                case GZIP -> {
                    try (InputStream gz = new GZIPInputStream(new java.io.ByteArrayInputStream(in))) {
                        n = gz.readNBytes(out, 0, size);
                    }
                }
                default -> throw new IllegalStateException(codec.toString());
            }
            if (n != size) {
                throw new IOException(codec + " page decompressed to " + n + " bytes, the page header says " + size);
            }
            return out;
        }

        @Override
        public void release() {}
    }
}
