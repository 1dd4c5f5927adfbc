package io.sftnative.lora;

import org.bytedeco.pytorch.Tensor;

/** {@link LoraTesting}'s comparison for tests in other packages. */
public final class LoraTestingAccess {
    private LoraTestingAccess() {}

    /** Max |a - b| / max |b|. */
    public static double relErr(Tensor a, Tensor b) {
        return LoraTesting.relErr(a, b);
    }
}
