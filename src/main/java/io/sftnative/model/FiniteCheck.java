package io.sftnative.model;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * NaN/Inf detection for weights as they are read or written. A NaN in base weights used to surface as "training
 * diverged ... lower learning_rate" (blaming the wrong thing), a NaN adapter exported a NaN model, and chat answered
 * NUL bytes; every load, merge and export now names the first non-finite tensor instead. One {@code isfinite().all()}
 * per tensor: a read-only pass over the weights, small next to reading them from disk.
 */
public final class FiniteCheck {
    private FiniteCheck() {}

    /** Null when every value of {@code t} is finite, else e.g. "3 NaN and 1 infinite values among 4096". */
    public static String problem(Tensor t) {
        try (PointerScope scope = new PointerScope()) {
            if (!t.is_floating_point() || t.isfinite().all().item_bool()) {
                return null;
            }
            long nan = t.isnan().sum().item_long();
            long inf = t.isinf().sum().item_long();
            return nan + " NaN and " + inf + " infinite values among " + t.numel();
        }
    }

    /** Throws {@link ModelFormatException} naming tensor {@code name} of {@code where} when it holds NaN/Inf. */
    public static void require(Tensor t, String name, String where, String whatToDo) {
        String p = problem(t);
        if (p != null) {
            throw new ModelFormatException("tensor '" + name + "' of " + where + " holds " + p + "; " + whatToDo);
        }
    }
}
