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
            List<String> values = new ArrayList<>();
            for (int r = 0; r < group.worldSize(); r++) {
                values.add(group.store().get_to_str(key + r)); // blocks until rank r published (store timeout)
            }
            List<Integer> differ = new ArrayList<>();
            for (int r = 1; r < values.size(); r++) {
                if (!values.get(r).equals(values.get(0))) {
                    differ.add(r);
                }
            }
            if (!differ.isEmpty()) {
                group.store().add(key + "read", 1);
                if (group.rank() == 0) { // rank 0 serves the store: the others must have read before it exits
                    long deadline = System.nanoTime() + 30_000_000_000L;
                    while (group.store().add(key + "read", 0) < group.worldSize() && System.nanoTime() < deadline) {
                        Thread.sleep(20);
                    }
                }
                throw new DistributedException("the ranks do not run the same job: the " + what + " of rank(s) "
                        + differ + " differs from rank 0's (" + abbreviate(values.get(0)) + " vs "
                        + abbreviate(values.get(differ.get(0))) + "). Start every rank with the same config file,"
                        + " overrides and data.");
            }
        } catch (DistributedException e) {
            throw e;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new DistributedException("interrupted during the start-up check of the " + what, e);
        } catch (RuntimeException e) {
            throw group.failed("start-up check of the " + what, e);
        }
    }

    private static String abbreviate(String s) {
        return s.length() <= 16 ? s : s.substring(0, 16);
    }
}
