package io.sftnative.model.safetensors;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A whole file mapped into memory, private and copy-on-write.
 *
 * <p>Why not {@link FileChannel#map}: the JDK maps read-only files {@code MAP_SHARED, PROT_READ}, so a libtorch kernel
 * that writes into a zero-copy tensor (an accidental in-place op) would kill the JVM with SIGSEGV. We call
 * {@code mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_NORESERVE)} through the FFM API instead: writes then go to private
 * pages and never reach the file. If that is unavailable (not Linux), the JDK's read-only mapping is the fallback.
 */
final class MappedFile implements AutoCloseable {
    private static final int O_RDONLY = 0;
    private static final int PROT_READ = 1;
    private static final int PROT_WRITE = 2;
    private static final int MAP_PRIVATE = 2;
    private static final int MAP_NORESERVE = 0x4000;
    private static final int MADV_DONTNEED = 4;
    private static final long PAGE = 4096;

    private static final Libc LIBC = Libc.load();

    private final Path path;
    private final long size;
    private final long address;
    private final Arena fallbackArena; // non-null when the JDK mapping is used
    private boolean closed;

    private MappedFile(Path path, long size, long address, Arena fallbackArena) {
        this.path = path;
        this.size = size;
        this.address = address;
        this.fallbackArena = fallbackArena;
    }

    /** Maps {@code size} (> 0) bytes of the file from its start. */
    static MappedFile map(Path path, long size) throws IOException {
        if (size <= 0) {
            throw new IllegalArgumentException("nothing to map in " + path);
        }
        if (LIBC != null) {
            return new MappedFile(path, size, LIBC.mapPrivate(path, size), null);
        }
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            return new MappedFile(path, size, seg.address(), arena);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** Start of the mapping; valid until {@link #close}. */
    long address() {
        if (closed) {
            throw new IllegalStateException(path + " is closed");
        }
        return address;
    }

    long size() {
        return size;
    }

    /**
     * Drops the whole pages inside {@code [offset, offset + length)} from this process's resident memory
     * ({@code madvise(MADV_DONTNEED)}; the file is untouched and a later read faults them in again). For loaders that
     * copy tensors out one by one: the mapping's pages would otherwise add the whole file to the peak RSS. Pages
     * shared with neighbouring bytes are kept. A no-op with the JDK fallback mapping.
     */
    void release(long offset, long length) {
        if (closed || LIBC == null || fallbackArena != null || length <= 0) {
            return;
        }
        long from = (address + offset + PAGE - 1) / PAGE * PAGE;
        long to = (address + offset + length) / PAGE * PAGE;
        if (to > from) {
            LIBC.dontNeed(from, to - from);
        }
    }

    boolean writableCopyOnWrite() {
        return fallbackArena == null;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (fallbackArena != null) {
            fallbackArena.close();
        } else {
            LIBC.unmap(address, size);
        }
    }

    /** The few libc calls we need, bound once. */
    private record Libc(MethodHandle open, MethodHandle mmap, MethodHandle munmap, MethodHandle madvise,
            MethodHandle close,
            StructLayout stateLayout, VarHandle errno) {

        static Libc load() {
            if (!System.getProperty("os.name", "").toLowerCase().contains("linux")) {
                return null;
            }
            try {
                Linker linker = Linker.nativeLinker();
                var lookup = linker.defaultLookup();
                Linker.Option errno = Linker.Option.captureCallState("errno");
                StructLayout state = Linker.Option.captureStateLayout();
                MethodHandle open = linker.downcallHandle(lookup.find("open").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
                                ValueLayout.JAVA_INT),
                        errno, Linker.Option.firstVariadicArg(2));
                MethodHandle mmap = linker.downcallHandle(lookup.find("mmap").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                                ValueLayout.JAVA_LONG),
                        errno);
                MethodHandle munmap = linker.downcallHandle(lookup.find("munmap").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
                MethodHandle close = linker.downcallHandle(lookup.find("close").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
                VarHandle errnoHandle = state.varHandle(MemoryLayout.PathElement.groupElement("errno"));
                MethodHandle madvise = linker.downcallHandle(lookup.find("madvise").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                                ValueLayout.JAVA_INT));
                return new Libc(open, mmap, munmap, madvise, close, state, errnoHandle);
            } catch (RuntimeException | LinkageError e) {
                return null; // e.g. native access not enabled: use the JDK mapping
            }
        }

        long mapPrivate(Path path, long size) throws IOException {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment state = a.allocate(stateLayout);
                MemorySegment cpath = a.allocateFrom(path.toAbsolutePath().toString());
                int fd = (int) open.invokeExact(state, cpath, O_RDONLY, 0);
                if (fd < 0) {
                    throw new IOException("cannot open " + path + " (errno " + errno.get(state, 0L) + ")");
                }
                try {
                    long addr = (long) mmap.invokeExact(state, 0L, size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_NORESERVE, fd, 0L);
                    if (addr == -1L) {
                        throw new IOException("cannot map " + size + " bytes of " + path + " (errno "
                                + errno.get(state, 0L) + ")");
                    }
                    return addr;
                } finally {
                    int rc = (int) close.invokeExact(fd);
                    assert rc == 0;
                }
            } catch (IOException e) {
                throw e;
            } catch (Throwable t) {
                throw new IOException("cannot map " + path + ": " + t, t);
            }
        }

        void dontNeed(long address, long length) {
            try {
                int rc = (int) madvise.invokeExact(address, length, MADV_DONTNEED);
                assert rc == 0; // only a hint: a failure leaves the pages resident
            } catch (Throwable t) {
                // a hint: ignore
            }
        }

        void unmap(long address, long size) {
            try {
                int rc = (int) munmap.invokeExact(address, size);
                if (rc != 0) {
                    throw new IllegalStateException("munmap failed for " + size + " bytes at " + address);
                }
            } catch (RuntimeException e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException("munmap failed: " + t, t);
            }
        }
    }
}
