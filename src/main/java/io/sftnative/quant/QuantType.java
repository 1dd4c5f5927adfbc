package io.sftnative.quant;

import java.util.Locale;

import io.sftnative.bindings.BnbAbi;

/** The 4-bit data types of bitsandbytes (spec §2.1, §2.2). */
public enum QuantType {
    /** NormalFloat4: 16 quantiles of N(0, 1) normalised to [-1, 1] (QLoRA §3). */
    NF4("nf4", BnbAbi.NF4),
    /** bitsandbytes' 4-bit float (sign bit + 3-bit magnitude code). */
    FP4("fp4", BnbAbi.FP4);

    /** The name in checkpoints and configs ({@code quant_state.bitsandbytes__nf4}, {@code bnb_4bit_quant_type}). */
    public final String bnbName;
    /** jbnb_quant_type / bitsandbytes' numbering. */
    public final int abi;

    QuantType(String bnbName, int abi) {
        this.bnbName = bnbName;
        this.abi = abi;
    }

    public static QuantType parse(String s) {
        String v = s == null ? "" : s.trim().toLowerCase(Locale.ROOT);
        return switch (v) {
            case "nf4" -> NF4;
            case "fp4" -> FP4;
            default -> throw new IllegalArgumentException("4-bit quant type must be nf4 or fp4, got '" + s + "'");
        };
    }
}
