package io.sftnative.distributed;

import java.util.ArrayList;
import java.util.List;

/**
 * Start-up check that every rank runs the same job: each rank publishes a value (a hash) under a key of the
 * rendezvous store, reads everybody's, and every rank fails with the same message when they differ, so no rank
 * trains on a different config or data than the others.
 */
final class Consistency {
    private Consistency() {}

    static void check(DistributedGroup group, String what, String value) {
        String key = "sftnative/same/" + what + "/";
        try {
            group.store().set(key + group.rank(), value);
            List<Integer> differ = new ArrayList<>();
            String first = null;
            for (int r = 0; r < group.worldSize(); r++) {
                String v = group.store().get_to_str(key + r); // blocks until rank r published (store timeout)
                if (r == 0) {
                    first = v;
                } else if (!v.equals(first)) {
                    differ.add(r);
                }
            }
            if (!differ.isEmpty()) {
                throw new DistributedException("the ranks do not run the same job: the " + what + " of rank(s) "
                        + differ + " differs from rank 0's (" + abbreviate(first) + " vs "
                        + abbreviate(group.store().get_to_str(key + differ.get(0))) + "). Start every rank with the"
                        + " same config file, overrides and data.");
            }
        } catch (DistributedException e) {
            throw e;
        } catch (RuntimeException e) {
            throw group.failed("start-up check of the " + what, e);
        }
    }

    private static String abbreviate(String s) {
        return s.length() <= 16 ? s : s.substring(0, 16);
    }
}
