package io.sftnative.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

class CpuBf16Test {
    @Test
    void readsTheBf16FlagsOfCpuinfo() {
        String zen4 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n";
        String spr = "processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile amx_int8\n";
        String zen3 = "processor\t: 0\nflags\t\t: fpu sse avx2 fma\n";
        String tricky = "processor\t: 0\nflags\t\t: fpu avx512_bf16x avx2\n"; // a longer flag name is not the flag
        String arm = "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n";
        assertEquals(Boolean.TRUE, CpuBf16.fromCpuinfo(zen4));
        assertEquals(Boolean.TRUE, CpuBf16.fromCpuinfo(spr));
        assertEquals(Boolean.FALSE, CpuBf16.fromCpuinfo(zen3));
        assertEquals(Boolean.FALSE, CpuBf16.fromCpuinfo(tricky));
        assertEquals(Boolean.TRUE, CpuBf16.fromCpuinfo(arm));
        assertNull(CpuBf16.fromCpuinfo("nothing here\n"));
    }
}
