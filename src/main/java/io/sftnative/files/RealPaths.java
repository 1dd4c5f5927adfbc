package io.sftnative.files;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/**
 * Real-path comparisons for the "would this write replace what we read" checks. A normalised path is not enough:
 * {@code ${M}_link -> $M} normalises to a different name than {@code $M} while both open the same files, so an
 * export to {@code $M} through the link replaced the base model. Every such check resolves symbolic links of the
 * deepest existing ancestor ({@link Path#toRealPath}) and appends the not-yet-existing rest.
 */
public final class RealPaths {
    private RealPaths() {}

    /** The real path of {@code p}; the part that does not exist yet is appended normalised. */
    public static Path of(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        Path existing = abs;
        Path rest = null;
        while (existing != null && !Files.exists(existing, LinkOption.NOFOLLOW_LINKS)) {
            Path name = existing.getFileName();
            rest = rest == null ? name : name.resolve(rest);
            existing = existing.getParent();
        }
        if (existing == null) {
            return abs;
        }
        Path real;
        try {
            real = existing.toRealPath();
        } catch (IOException e) {
            real = existing; // a dangling link: nothing behind it can be read either
        }
        return rest == null ? real : real.resolve(rest).normalize();
    }

    /** True when {@code a} and {@code b} name the same directory or file, through links or not. */
    public static boolean same(Path a, Path b) {
        return a != null && b != null && of(a).equals(of(b));
    }

    /** True when {@code inner} is {@code outer} or lies inside it, through links or not. */
    public static boolean within(Path inner, Path outer) {
        return inner != null && outer != null && of(inner).startsWith(of(outer));
    }
}
