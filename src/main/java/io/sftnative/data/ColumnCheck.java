package io.sftnative.data;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * Checks a dataset's first record against its column mapping, so a wrong mapping fails at once with the key and
 * the record's actual keys (rather than dropping every record), and warns about keys LLaMA-Factory would ignore.
 */
final class ColumnCheck {
    private ColumnCheck() {}

    static void firstRecord(RecordReader.RawRecord r, DatasetSpec spec, boolean pretrain, Consumer<String> log) {
        JsonNode n = r.node();
        if (n.has("input_ids")) {
            return; // pre-tokenized
        }
        DatasetSpec.Columns c = spec.columns();
        String required;
        if (spec.formatting() != DatasetSpec.Formatting.ALPACA) {
            required = c.messages();
        } else if (pretrain) {
            required = n.has(c.prompt()) ? c.prompt() : "text";
        } else {
            required = c.response();
        }
        if (required != null && !n.has(required)) {
            List<String> keys = new ArrayList<>();
            n.fieldNames().forEachRemaining(keys::add);
            throw new DataException(r.location() + ": dataset '" + spec.name() + "' has no column '" + required
                    + "' (the record's keys: " + String.join(", ", keys) + "); map the columns in dataset_info.json"
                    + " (\"columns\": {...}" + (spec.formatting() == DatasetSpec.Formatting.ALPACA
                            ? ", or \"formatting\": \"sharegpt\" for conversations" : "") + ")",
                    r.file(), r.line(), required);
        }
        if (spec.formatting() == DatasetSpec.Formatting.ALPACA && !pretrain) {
            for (String unmapped : List.of("system", "history")) {
                boolean mapped = unmapped.equals(c.system()) || unmapped.equals(c.history());
                if (n.has(unmapped) && !mapped) {
                    log.accept("warning: " + r.location() + ": dataset '" + spec.name() + "' has a '" + unmapped
                            + "' key that is not mapped in dataset_info.json columns; it is ignored, as"
                            + " LLaMA-Factory does (add \"" + unmapped + "\": \"" + unmapped + "\" to columns)");
                }
            }
        }
    }
}
