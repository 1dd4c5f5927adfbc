// Run-time choice of the CPU kernel table (AVX-512 > AVX2 > scalar), overridable with SFTNATIVE_ISA or
// jbnb_set_cpu_isa for tests and benchmarks.
#include "dispatch.hpp"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "../common.hpp"

namespace sftn {

static int detect_isa() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
#if defined(SFTN_HAVE_AVX512)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return JBNB_ISA_AVX512;
#endif
#if defined(SFTN_HAVE_AVX2)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return JBNB_ISA_AVX2;
#endif
#endif
    return JBNB_ISA_SCALAR;
}

static int g_best = -1;
static int g_active = -1;
static std::once_flag g_once;

static void init() {
    g_best = detect_isa();
    g_active = g_best;
    const char *env = std::getenv("SFTNATIVE_ISA");
    if (env != nullptr) {
        int want = std::strcmp(env, "scalar") == 0 ? JBNB_ISA_SCALAR
                   : std::strcmp(env, "avx2") == 0 ? JBNB_ISA_AVX2
                   : std::strcmp(env, "avx512") == 0 ? JBNB_ISA_AVX512
                                                     : g_best;
        if (want < g_active) g_active = want;
    }
}

int best_isa() {
    std::call_once(g_once, init);
    return g_best;
}

int active_isa() {
    std::call_once(g_once, init);
    return __atomic_load_n(&g_active, __ATOMIC_RELAXED);
}

void set_active_isa(int isa) {
    if (isa < JBNB_ISA_SCALAR || isa > JBNB_ISA_AVX512)
        invalid("isa must be 0 (scalar), 1 (avx2) or 2 (avx512), got " + std::to_string(isa));
    if (isa > best_isa())
        throw Error(JBNB_EUNSUPPORTED, "isa " + std::to_string(isa) + " is not available on this CPU/build (best is " +
                                           std::to_string(best_isa()) + ")");
    __atomic_store_n(&g_active, isa, __ATOMIC_RELAXED);
}

const isa::Table &kernels() {
    switch (active_isa()) {
#if defined(SFTN_HAVE_AVX512)
    case JBNB_ISA_AVX512:
        return isa::AVX512;
#endif
#if defined(SFTN_HAVE_AVX2)
    case JBNB_ISA_AVX2:
        return isa::AVX2;
#endif
    default:
        return isa::SCALAR;
    }
}

} // namespace sftn
