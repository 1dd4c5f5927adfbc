package io.sftnative.model.safetensors;

import java.util.Locale;

import org.bytedeco.pytorch.global.torch.ScalarType;

/** The safetensors element types we read and write, with their libtorch counterparts. */
public enum DType {
    F64(8, ScalarType.Double),
    F32(4, ScalarType.Float),
    F16(2, ScalarType.Half),
    BF16(2, ScalarType.BFloat16),
    I64(8, ScalarType.Long),
    I32(4, ScalarType.Int),
    I16(2, ScalarType.Short),
    I8(1, ScalarType.Char),
    U8(1, ScalarType.Byte),
    BOOL(1, ScalarType.Bool);

    private final int bytes;
    private final ScalarType scalarType;

    DType(int bytes, ScalarType scalarType) {
        this.bytes = bytes;
        this.scalarType = scalarType;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    public ScalarType scalarType() {
        return scalarType;
    }

    /** The dtype named in a safetensors header, or null if we do not know it. */
    public static DType parse(String name) {
        for (DType d : values()) {
            if (d.name().equals(name)) {
                return d;
            }
        }
        return null;
    }

    public static String supportedNames() {
        StringBuilder sb = new StringBuilder();
        for (DType d : values()) {
            sb.append(sb.isEmpty() ? "" : ", ").append(d.name());
        }
        return sb.toString();
    }

    /** The dtype that stores a libtorch scalar type; fails for types safetensors files here cannot hold. */
    public static DType of(ScalarType t) {
        for (DType d : values()) {
            if (d.scalarType.value == t.value) { // JNI hands out non-canonical enum instances: compare values
                return d;
            }
        }
        throw new IllegalArgumentException("no safetensors dtype for libtorch type " + t
                + "; supported: " + supportedNames());
    }

    /** Whether two libtorch scalar types are the same (JNI returns fresh enum instances, so never use ==). */
    public static boolean same(ScalarType a, ScalarType b) {
        return a.value == b.value;
    }

    /** Accepts HF's {@code torch_dtype} spellings (float32, bfloat16, float16, fp32, bf16, ...). */
    public static DType fromTorchName(String name) {
        return switch (name.toLowerCase(Locale.ROOT).replace("torch.", "")) {
            case "float32", "float", "fp32", "f32" -> F32;
            case "bfloat16", "bf16" -> BF16;
            case "float16", "half", "fp16", "f16" -> F16;
            case "float64", "double", "f64" -> F64;
            default -> throw new IllegalArgumentException("unknown floating dtype '" + name
                    + "'; use one of float32, bfloat16, float16");
        };
    }
}
