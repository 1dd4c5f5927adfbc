package io.sftnative.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BOOLEAN;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every function of {@code native/include/sftnative_bnb.h} with its FFM descriptor (spec §1.2: pointers and
 * {@code cudaStream_t} are {@code ADDRESS}, {@code int}/{@code int32_t} {@code JAVA_INT}, {@code long long}/
 * {@code int64_t} {@code JAVA_LONG}, {@code float} {@code JAVA_FLOAT}, {@code bool} {@code JAVA_BOOLEAN}). Kept next
 * to the header; {@code BnbAbiHeaderTest} parses the header and fails if the two differ in any name or signature.
 */
public final class BnbAbi {
    /** Where a symbol comes from. */
    public enum Group {
        /** bitsandbytes CPU names: in our two libraries and in every libbitsandbytes build (§1.4). */
        CPU_DROP_IN,
        /** bitsandbytes CUDA names: in libsftnative_cuda and CUDA builds of libbitsandbytes (§1.3). */
        CUDA_DROP_IN,
        /** our jbnb_* extensions: only in our libraries; return a jbnb_status. */
        EXTENSION
    }

    public record Symbol(String name, Group group, FunctionDescriptor descriptor) {}

    /** jbnb_status values (header enum jbnb_status). */
    public static final int OK = 0;
    public static final int EINVAL = 1;
    public static final int ENOMEM = 2;
    public static final int ECUDA = 3;
    public static final int EUNSUPPORTED = 4;
    public static final int EINTERNAL = 5;

    /** jbnb_quant_type values (bitsandbytes' numbering). */
    public static final int FP4 = 1;
    public static final int NF4 = 2;
    /** jbnb_codebook(which) for the signed dynamic 8-bit map. */
    public static final int DYNAMIC_MAP = 8;
    /** jbnb_codebook(which) for the unsigned dynamic map (bitsandbytes' map of Adam's second state). */
    public static final int UNSIGNED_DYNAMIC_MAP = 9;

    public static final int ABI_VERSION = 1;

    private static final Map<String, Symbol> SYMBOLS = build();

    private BnbAbi() {}

    public static Map<String, Symbol> symbols() {
        return SYMBOLS;
    }

    public static Symbol symbol(String name) {
        Symbol s = SYMBOLS.get(name);
        if (s == null) {
            throw new IllegalArgumentException("no symbol " + name + " in sftnative_bnb.h");
        }
        return s;
    }

    /** Human name of a jbnb_status. */
    public static String statusName(int status) {
        return switch (status) {
            case OK -> "OK";
            case EINVAL -> "EINVAL (bad argument)";
            case ENOMEM -> "ENOMEM (out of host memory)";
            case ECUDA -> "ECUDA (CUDA error)";
            case EUNSUPPORTED -> "EUNSUPPORTED (not in this library)";
            case EINTERNAL -> "EINTERNAL (internal error)";
            default -> "status " + status;
        };
    }

    private static Map<String, Symbol> build() {
        Map<String, Symbol> m = new LinkedHashMap<>();
        String[] cpuTypes = {"fp32", "bf16", "fp16"};
        // 1a. bitsandbytes CPU drop-ins
        for (String t : cpuTypes) {
            put(m, "cquantize_blockwise_cpu_" + t, Group.CPU_DROP_IN, v(ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
            put(m, "cdequantize_blockwise_cpu_" + t, Group.CPU_DROP_IN, v(ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
        }
        for (String q : new String[] {"nf4", "fp4"}) {
            for (String t : cpuTypes) {
                put(m, "cdequantize_blockwise_cpu_" + q + "_" + t, Group.CPU_DROP_IN,
                        v(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG));
            }
        }
        // 1b. bitsandbytes CUDA drop-ins
        for (String t : cpuTypes) {
            for (String q : new String[] {"", "_nf4", "_fp4"}) {
                put(m, "cquantize_blockwise_" + t + q, Group.CUDA_DROP_IN, v(ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT));
                put(m, "cdequantize_blockwise_" + t + q, Group.CUDA_DROP_IN,
                        v(ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS));
            }
        }
        for (String t : cpuTypes) {
            put(m, "cadam_8bit_blockwise_grad_" + t, Group.CUDA_DROP_IN, v(ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                    JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_INT, JAVA_FLOAT, ADDRESS, ADDRESS,
                    ADDRESS, ADDRESS, JAVA_FLOAT, JAVA_FLOAT, JAVA_BOOLEAN, JAVA_INT));
        }
        // 2. extensions
        put(m, "jbnb_abi_version", Group.EXTENSION, i());
        put(m, "jbnb_last_error", Group.EXTENSION, FunctionDescriptor.of(ADDRESS));
        put(m, "jbnb_has_cuda", Group.EXTENSION, i());
        put(m, "jbnb_cpu_isa", Group.EXTENSION, i());
        put(m, "jbnb_set_cpu_isa", Group.EXTENSION, i(JAVA_INT));
        put(m, "jbnb_set_num_threads", Group.EXTENSION, i(JAVA_INT));
        put(m, "jbnb_num_threads", Group.EXTENSION, i());
        put(m, "jbnb_codebook", Group.EXTENSION, i(JAVA_INT, ADDRESS));
        for (String t : cpuTypes) {
            put(m, "jbnb_quantize_4bit_cpu_" + t, Group.EXTENSION, i(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT));
            put(m, "jbnb_dequantize_4bit_cpu_" + t, Group.EXTENSION, i(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT));
        }
        for (String t : cpuTypes) {
            put(m, "jbnb_quantize_8bit_cpu_" + t, Group.EXTENSION, i(ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
            put(m, "jbnb_dequantize_8bit_cpu_" + t, Group.EXTENSION, i(ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
        }
        put(m, "jbnb_double_quant_cpu", Group.EXTENSION, i(ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS));
        put(m, "jbnb_dequant_absmax_cpu", Group.EXTENSION,
                i(ADDRESS, ADDRESS, ADDRESS, JAVA_FLOAT, JAVA_LONG, JAVA_LONG, ADDRESS));
        for (String t : cpuTypes) {
            put(m, "jbnb_ce_chunk_cpu_" + t, Group.EXTENSION, i(ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_LONG,
                    JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_FLOAT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        }
        put(m, "jbnb_adamw_cpu_fp32", Group.EXTENSION, i(ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_DOUBLE,
                JAVA_DOUBLE, JAVA_DOUBLE, JAVA_DOUBLE, JAVA_DOUBLE, JAVA_LONG));
        for (String t : cpuTypes) {
            put(m, "jbnb_adam_8bit_blockwise_cpu_" + t, Group.EXTENSION, i(ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                    JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_INT, JAVA_FLOAT, ADDRESS, ADDRESS,
                    ADDRESS, ADDRESS, JAVA_FLOAT, JAVA_FLOAT, JAVA_INT, JAVA_LONG));
        }
        for (String t : cpuTypes) {
            put(m, "jbnb_adam_32bit_cpu_" + t, Group.EXTENSION, i(ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                    JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT,
                    JAVA_INT, JAVA_FLOAT, JAVA_FLOAT, JAVA_INT, JAVA_LONG));
        }
        put(m, "jbnb_attention_fwd_cpu_fp32", Group.EXTENSION, i(ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS, JAVA_FLOAT, JAVA_FLOAT));
        put(m, "jbnb_attention_bwd_cpu_fp32", Group.EXTENSION, i(ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS,
                ADDRESS, JAVA_FLOAT, JAVA_FLOAT));
        put(m, "jbnb_attention_fwd_cpu_bf16", Group.EXTENSION, i(ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS, JAVA_FLOAT, JAVA_FLOAT));
        put(m, "jbnb_attention_bwd_cpu_bf16", Group.EXTENSION, i(ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS,
                ADDRESS, JAVA_FLOAT, JAVA_FLOAT));
        put(m, "jbnb_attention_ranges_cpu", Group.EXTENSION, i(JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG,
                ADDRESS, ADDRESS));
        put(m, "jbnb_swiglu_fwd_cpu_fp32", Group.EXTENSION, i(ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS,
                JAVA_LONG, JAVA_LONG, JAVA_LONG));
        put(m, "jbnb_swiglu_bwd_cpu_fp32", Group.EXTENSION, i(ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS,
                JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        put(m, "jbnb_rope_cpu_fp32", Group.EXTENSION, i(ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG,
                JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT));
        put(m, "jbnb_cuda_device_count", Group.EXTENSION, i(ADDRESS));
        put(m, "jbnb_cuda_synchronize", Group.EXTENSION, i());
        for (String t : cpuTypes) {
            put(m, "jbnb_quantize_4bit_cuda_" + t, Group.EXTENSION,
                    i(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT, ADDRESS));
            put(m, "jbnb_dequantize_4bit_cuda_" + t, Group.EXTENSION,
                    i(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT, ADDRESS));
        }
        put(m, "jbnb_quantize_8bit_cuda_fp32", Group.EXTENSION, i(ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS));
        put(m, "jbnb_dequantize_8bit_cuda_fp32", Group.EXTENSION, i(ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS));
        for (String t : new String[] {"fp32", "bf16"}) {
            put(m, "jbnb_ce_chunk_cuda_" + t, Group.EXTENSION, i(ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_LONG,
                    JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_FLOAT, ADDRESS, ADDRESS, ADDRESS));
        }
        return Collections.unmodifiableMap(m);
    }

    private static void put(Map<String, Symbol> m, String name, Group g, FunctionDescriptor d) {
        if (m.put(name, new Symbol(name, g, d)) != null) {
            throw new IllegalStateException("duplicate symbol " + name);
        }
    }

    private static FunctionDescriptor v(MemoryLayout... args) {
        return FunctionDescriptor.ofVoid(args);
    }

    private static FunctionDescriptor i(MemoryLayout... args) {
        return FunctionDescriptor.of(JAVA_INT, args);
    }

    /** All names of one group, in declaration order. */
    public static List<String> names(Group g) {
        List<String> out = new ArrayList<>();
        SYMBOLS.values().stream().filter(s -> s.group() == g).forEach(s -> out.add(s.name()));
        return out;
    }
}
