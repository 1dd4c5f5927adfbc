package io.sftnative.hub;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.http.HttpResponse;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.function.Consumer;
import java.util.regex.Pattern;

import io.sftnative.files.AtomicFiles;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Downloads hub files into the cache exactly as huggingface_hub's {@code hf_hub_download} lays them out, so
 * transformers, LLaMA-Factory and {@code hf} find them and {@link HubCache} finds theirs:
 * {@code <cache>/models--Org--Name/blobs/<etag>} (the content, named by the hub's ETag: an LFS file's sha256, a
 * regular file's git hash), {@code snapshots/<commit>/<file>} (a relative symlink to the blob, a copy where symlinks
 * are not possible), {@code refs/<revision>} (the commit a branch or tag resolved to).
 *
 * <p>A blob is written to {@code blobs/<etag>.incomplete} and renamed into place only when its size matches and, for
 * an LFS file, its sha256 equals the ETag; a transfer that breaks off is resumed with {@code Range} (up to 5 tries,
 * and by the next run from the same {@code .incomplete}). One process downloads a blob at a time
 * ({@code .locks/<repo folder>/<etag>.lock}).
 */
public final class HubDownload {
    private static final Pattern COMMIT = Pattern.compile("^[0-9a-f]{40}$");
    private static final Pattern SHA256 = Pattern.compile("^[0-9a-f]{64}$");
    private static final int TRIES = 5;

    private final HubEnv env;
    private final HubHttp http;
    private final Consumer<String> log;

    public HubDownload(HubEnv env, Consumer<String> log) {
        if (env.offline()) {
            throw new IllegalStateException("HF_HUB_OFFLINE is set: no download may start");
        }
        this.env = env;
        this.http = new HubHttp(env);
        this.log = log;
    }

    /** {@code snapshots/<commit>/<filename>} of one file at {@code revision} (a branch, tag or commit). */
    public Path file(String type, String repo, String revision, String filename) {
        Path storage = env.cache().resolve(HubCache.folder(type, repo));
        if (COMMIT.matcher(revision).matches() && Files.exists(pointer(storage, revision, filename))) {
            return pointer(storage, revision, filename);
        }
        String what = repo + " file " + filename;
        HubHttp.FileMetadata meta = http.head(http.resolveUrl(type, repo, revision, filename), what);
        Path pointer = pointer(storage, meta.commit(), filename);
        Path blob = storage.resolve("blobs").resolve(meta.etag());
        try {
            if (!Files.exists(pointer)) {
                Path lockFile = env.cache().resolve(".locks").resolve(HubCache.folder(type, repo))
                        .resolve(meta.etag() + ".lock");
                Files.createDirectories(lockFile.getParent());
                Files.createDirectories(blob.getParent());
                try (FileChannel lockChannel = FileChannel.open(lockFile, StandardOpenOption.CREATE,
                        StandardOpenOption.WRITE); FileLock lock = lockChannel.lock()) {
                    if (!Files.exists(blob)) {
                        fetch(meta, blob, filename, what);
                    }
                    link(blob, pointer);
                }
            }
            writeRef(storage, revision, meta.commit());
        } catch (IOException e) {
            throw new HubException(what + ": cannot write the cache " + storage + ": " + e.getMessage(), e);
        }
        return pointer;
    }

    /**
     * Every file {@code select} keeps of the repository at {@code revision} (listed by the hub's revision API), each
     * downloaded with {@link #file} at the revision's commit; returns {@code snapshots/<commit>}. When the hub cannot
     * be reached and the cache holds the revision, the cached snapshot is used with a warning (as huggingface_hub).
     */
    public Path snapshot(String type, String repo, String revision, FileSelection select) {
        RepoListing listing;
        try {
            listing = RepoListing.parse(http.getText(http.revisionApiUrl(type, repo, revision), repo + " (revision "
                    + revision + ")"), repo);
        } catch (HubHttp.Unreachable e) {
            Path cached = HubCache.snapshot(env.cache(), type, repo, revision);
            if (cached != null) {
                log.accept("warning: " + e.getMessage() + "; using the cached snapshot " + cached);
                return cached;
            }
            throw new HubException(e.getMessage() + ". " + repo + " is not in the cache " + env.cache() + " either;"
                    + " check the connection (HF_ENDPOINT=" + env.endpoint() + ")", e);
        }
        Path snap = env.cache().resolve(HubCache.folder(type, repo)).resolve("snapshots").resolve(listing.commit());
        List<String> files = select.files(listing.files(), name -> file(type, repo, listing.commit(), name));
        if (files.isEmpty()) {
            throw new HubException(repo + " (revision " + revision + ", commit " + listing.commit() + ") holds no "
                    + select.describe() + "; its files: " + listing.files());
        }
        for (String f : files) {
            file(type, repo, listing.commit(), f);
        }
        try {
            writeRef(env.cache().resolve(HubCache.folder(type, repo)), revision, listing.commit());
        } catch (IOException e) {
            throw new HubException(repo + ": cannot write refs/" + revision + " in " + env.cache() + ": "
                    + e.getMessage(), e);
        }
        return snap;
    }

    private static Path pointer(Path storage, String commit, String filename) {
        return storage.resolve("snapshots").resolve(commit).resolve(filename);
    }

    /** The blob from the hub into {@code <blob>.incomplete}, resumed when present; verified, then renamed. */
    private void fetch(HubHttp.FileMetadata meta, Path blob, String filename, String what) throws IOException {
        Path part = blob.resolveSibling(blob.getFileName() + ".incomplete");
        long have = Files.exists(part) ? Files.size(part) : 0;
        if (have > meta.size()) {
            Files.delete(part); // not a prefix of this blob
            have = 0;
        }
        if (have > 0) {
            log.accept("resuming " + what + " from byte " + have + " of " + meta.size());
        } else {
            log.accept("downloading " + what + " (" + human(meta.size()) + ")");
        }
        try (ProgressBar bar = terminal() && meta.size() > (1 << 20) ? bar(filename, meta.size()) : null) {
            IOException last = null;
            for (int attempt = 0; attempt < TRIES && have < meta.size(); attempt++) {
                try {
                    have = transfer(meta, part, have, bar, what);
                    last = null;
                } catch (IOException e) { // the connection broke off: resume from what arrived
                    last = e;
                    have = Files.exists(part) ? Files.size(part) : 0;
                    log.accept("warning: " + what + ": transfer interrupted at byte " + have + " (" + e.getMessage()
                            + "); resuming");
                }
            }
            if (have < meta.size()) {
                throw new HubException(what + ": download stopped at byte " + have + " of " + meta.size() + " after "
                        + TRIES + " tries" + (last != null ? " (" + last.getMessage() + ")" : "") + "; " + part
                        + " is kept and the next run resumes it", last);
            }
        }
        if (meta.size() == 0) {
            Files.write(part, new byte[0]);
        }
        verify(meta, part, what);
        Files.move(part, blob, StandardCopyOption.ATOMIC_MOVE);
    }

    /** One GET from {@code have} on, appended to {@code part}; returns the bytes now in it. */
    private long transfer(HubHttp.FileMetadata meta, Path part, long have, ProgressBar bar, String what)
            throws IOException {
        HttpResponse<InputStream> r = http.get(meta.location(), have, what);
        boolean append = have > 0 && r.statusCode() == 206;
        if (append) {
            String range = r.headers().firstValue("Content-Range").orElse("");
            if (!range.startsWith("bytes " + have + "-")) {
                r.body().close();
                throw new HubException(what + ": asked for bytes from " + have + ", got Content-Range '" + range
                        + "'");
            }
        } else if (have > 0) {
            have = 0; // the server ignored Range (HTTP 200): start over, as huggingface_hub does
        }
        try (InputStream in = r.body(); OutputStream out = Files.newOutputStream(part, StandardOpenOption.CREATE,
                StandardOpenOption.WRITE, append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
            if (bar != null) {
                bar.stepTo(have);
            }
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                if (have + n > meta.size()) {
                    throw new HubException(what + ": the hub sent more than the " + meta.size() + " bytes it"
                            + " announced");
                }
                out.write(buf, 0, n);
                have += n;
                if (bar != null) {
                    bar.stepTo(have);
                }
            }
        }
        return have;
    }

    /** The size, and for an LFS file (a sha256 ETag) the sha256; a mismatch deletes the partial file. */
    private void verify(HubHttp.FileMetadata meta, Path part, String what) throws IOException {
        long size = Files.size(part);
        String problem = null;
        if (size != meta.size()) {
            problem = "size " + size + " bytes, the hub announced " + meta.size();
        } else if (SHA256.matcher(meta.etag()).matches()) {
            String got = sha256(part);
            if (!got.equals(meta.etag())) {
                problem = "sha256 " + got + ", the hub's checksum (ETag) is " + meta.etag();
            }
        }
        if (problem != null) {
            Files.deleteIfExists(part);
            throw new HubException(what + ": checksum mismatch: the downloaded file has " + problem + ". It was"
                    + " deleted and nothing was added to the cache; run again to download it afresh (a proxy that"
                    + " rewrites downloads, or a changing file on HF_ENDPOINT, causes this)");
        }
    }

    static String sha256(Path file) throws IOException {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            try (InputStream in = Files.newInputStream(file)) {
                byte[] buf = new byte[1 << 20];
                for (int n; (n = in.read(buf)) > 0; ) {
                    md.update(buf, 0, n);
                }
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK always has SHA-256", e);
        }
    }

    /** A relative symlink {@code snapshots/<commit>/<file> -> ../../blobs/<etag>}, or a copy without symlinks. */
    private static void link(Path blob, Path pointer) throws IOException {
        Files.createDirectories(pointer.getParent());
        Files.deleteIfExists(pointer);
        try {
            Files.createSymbolicLink(pointer, pointer.getParent().relativize(blob));
        } catch (UnsupportedOperationException | FileSystemException e) {
            Path tmp = pointer.resolveSibling(pointer.getFileName() + ".tmp-copy");
            Files.copy(blob, tmp, StandardCopyOption.REPLACE_EXISTING);
            Files.move(tmp, pointer, StandardCopyOption.ATOMIC_MOVE);
        }
    }

    /** refs/<revision> = commit, unless the revision is the commit itself (huggingface_hub's rule). */
    private static void writeRef(Path storage, String revision, String commit) throws IOException {
        if (revision.equals(commit)) {
            return;
        }
        Path ref = storage.resolve("refs").resolve(revision);
        if (!Files.isRegularFile(ref) || !Files.readString(ref).equals(commit)) {
            AtomicFiles.writeString(ref, commit);
        }
    }

    private static ProgressBar bar(String filename, long size) {
        boolean big = size >= 64L << 20;
        return new ProgressBarBuilder().setTaskName(filename).setInitialMax(size)
                .setUnit(big ? " MiB" : " KiB", big ? 1 << 20 : 1 << 10).setStyle(ProgressBarStyle.ASCII)
                .setConsumer(new ConsoleProgressBarConsumer(System.err)).setUpdateIntervalMillis(500).showSpeed()
                .build();
    }

    private static boolean terminal() {
        java.io.Console c = System.console();
        return c != null && c.isTerminal();
    }

    static String human(long bytes) {
        if (bytes < 1 << 20) {
            return String.format("%.1f KB", bytes / 1e3);
        }
        return bytes < 1L << 30 ? String.format("%.1f MB", bytes / 1e6) : String.format("%.2f GB", bytes / 1e9);
    }

    /** Which files of a listing to fetch; {@code fetch} downloads one early (an index that names others). */
    public interface FileSelection {
        List<String> files(List<String> listing, java.util.function.Function<String, Path> fetch);

        String describe();
    }

    /** Every file, as {@code hf download} fetches a dataset repository. */
    public static final FileSelection ALL = new FileSelection() {
        @Override
        public List<String> files(List<String> listing, java.util.function.Function<String, Path> fetch) {
            List<String> out = new ArrayList<>(listing);
            out.remove(".gitattributes");
            return out;
        }

        @Override
        public String describe() {
            return "files";
        }
    };
}
