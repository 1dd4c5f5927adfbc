package io.sftnative.bindings;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Loading the library from the jar resources, error reporting across the boundary, and the bnb substitution. */
class NativeLibraryTest {
    @BeforeAll
    static void needsTheLibrary() {
        NativeTestSupport.assumeNativeBuilt();
    }

    @Test
    void loadsOurLibraryAndReportsItself() {
        NativeLibrary lib = NativeLibrary.cpu();
        assertEquals(BnbAbi.ABI_VERSION, lib.callInt("jbnb_abi_version"));
        assertEquals(0, lib.callInt("jbnb_has_cuda"));
        assertTrue(lib.describe().startsWith("sft-native kernels: libsftnative.so (ABI 1"), lib.describe());
        assertTrue(lib.path().toString().contains("native-"), "extracted into a content-hashed cache dir: " + lib.path());
        for (String name : BnbAbi.names(BnbAbi.Group.CPU_DROP_IN)) {
            assertTrue(lib.has(name), name);
        }
        for (String name : BnbAbi.names(BnbAbi.Group.EXTENSION)) {
            assertTrue(lib.has(name), name);
        }
        assertTrue(!lib.has("cquantize_blockwise_fp32_nf4"), "CUDA names are not in the CPU library");
    }

    @Test
    void nativeErrorsBecomeJavaExceptionsWithContext() {
        Kernels k = Kernels.cpu();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = arena.allocate(ValueLayout.JAVA_FLOAT, 64);
            MemorySegment am = arena.allocate(ValueLayout.JAVA_FLOAT, 1);
            NativeKernelException e = assertThrows(NativeKernelException.class,
                    () -> k.quantize4bit(Kernels.Dtype.FP32, x, am, MemorySegment.NULL, 64, 64, BnbAbi.NF4));
            assertEquals(BnbAbi.EINVAL, e.status());
            assertEquals("jbnb_quantize_4bit_cpu_fp32", e.function());
            assertTrue(e.getMessage().contains("out is NULL"), e.getMessage());
            assertTrue(e.getMessage().contains("quantize 64 fp32 values to nf4, blocksize 64"), e.getMessage());
            // a bad label in the cross-entropy: the message names the label and its position
            MemorySegment logits = arena.allocate(ValueLayout.JAVA_FLOAT, 2 * 5);
            MemorySegment labels = arena.allocateFrom(ValueLayout.JAVA_LONG, 1, 9);
            e = assertThrows(NativeKernelException.class, () -> k.ceChunk(Kernels.Dtype.FP32, logits, 2, 5, labels, 2,
                    0, 1, false, -100, 1f, MemorySegment.NULL, MemorySegment.NULL));
            assertTrue(e.getMessage().contains("label 9 at position 1 is outside [0, 5)"), e.getMessage());
        }
        assertEquals(BnbAbi.EINVAL, assertThrows(NativeKernelException.class, () -> Kernels.codebook(3)).status());
    }

    @Test
    void cudaLibraryFailsClearlyWithoutAGpu() {
        // libsftnative_cuda.so is built when nvcc exists; on a machine without a GPU it loads but reports no device.
        if (NativeLibrary.class.getResource("/native/" + NativeLibrary.platform() + "/libsftnative_cuda.so") == null) {
            return; // built without nvcc: nothing to check here
        }
        NativeLibrary lib = NativeLibrary.cuda();
        assertEquals(1, lib.callInt("jbnb_has_cuda"));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(ValueLayout.JAVA_INT);
            int st;
            try {
                st = (int) lib.handle("jbnb_cuda_device_count").invokeExact(count);
            } catch (Throwable t) {
                throw new AssertionError(t);
            }
            if (st == BnbAbi.OK && count.get(ValueLayout.JAVA_INT, 0) > 0) {
                return; // a GPU is present: covered by the CUDA tests
            }
            assertEquals(BnbAbi.ECUDA, st);
            assertTrue(lib.lastError().startsWith("jbnb_cuda_device_count: cudaGetDeviceCount"), lib.lastError());
        }
    }

    /**
     * A "real libbitsandbytes" is any library exporting the bitsandbytes names; ours does, so pointing the loader at
     * our own file exercises the whole substitution path and must give identical results.
     */
    @Test
    void userBitsandbytesServesTheSymbolsItHas() throws Exception {
        Random rnd = new Random(1);
        int n = 4096;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        float[] ours = roundTrip(x);
        String old = System.getProperty(NativeLibrary.BNB_PROPERTY);
        try {
            System.setProperty(NativeLibrary.BNB_PROPERTY, NativeLibrary.cpu().path().toString());
            NativeLibrary.resetBitsandbytesForTests();
            assertTrue(NativeLibrary.bitsandbytes().isPresent());
            assertTrue(NativeLibrary.bitsandbytesHandle("cdequantize_blockwise_cpu_nf4_fp32").isPresent());
            assertTrue(!NativeLibrary.bitsandbytes().get().cudaBuild());
            assertArrayEquals(ours, roundTrip(x));
        } finally {
            if (old == null) {
                System.clearProperty(NativeLibrary.BNB_PROPERTY);
            } else {
                System.setProperty(NativeLibrary.BNB_PROPERTY, old);
            }
            NativeLibrary.resetBitsandbytesForTests();
        }
    }

    @Test
    void missingBitsandbytesFileIsAClearError() {
        String old = System.getProperty(NativeLibrary.BNB_PROPERTY);
        try {
            System.setProperty(NativeLibrary.BNB_PROPERTY, "/nonexistent/libbitsandbytes_cpu.so");
            NativeLibrary.resetBitsandbytesForTests();
            var e = assertThrows(RuntimeException.class, NativeLibrary::bitsandbytes);
            assertTrue(e.getMessage().contains("does not exist: /nonexistent/libbitsandbytes_cpu.so"), e.getMessage());
            assertTrue(e.getMessage().contains("-D" + NativeLibrary.BNB_PROPERTY), e.getMessage());
        } finally {
            if (old == null) {
                System.clearProperty(NativeLibrary.BNB_PROPERTY);
            } else {
                System.setProperty(NativeLibrary.BNB_PROPERTY, old);
            }
            NativeLibrary.resetBitsandbytesForTests();
        }
    }

    private static float[] roundTrip(float[] x) {
        Kernels k = Kernels.cpu();
        int n = x.length;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment in = arena.allocateFrom(ValueLayout.JAVA_FLOAT, x);
            MemorySegment am = arena.allocate(ValueLayout.JAVA_FLOAT, n / 64);
            MemorySegment packed = arena.allocate(n / 2);
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, n);
            k.quantize4bit(Kernels.Dtype.FP32, in, am, packed, 64, n, BnbAbi.NF4);
            k.dequantize4bit(Kernels.Dtype.FP32, packed, am, out, 64, n, BnbAbi.NF4);
            return out.toArray(ValueLayout.JAVA_FLOAT);
        }
    }
}
