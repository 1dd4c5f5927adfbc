// Library facts and settings (jbnb_abi_version, errors, ISA, threads, codebooks).
#include <string>

#include "../common.hpp"
#include "dispatch.hpp"

using namespace sftn;

extern "C" {

int32_t jbnb_abi_version(void) { return JBNB_ABI_VERSION; }

int32_t jbnb_cpu_isa(void) { return active_isa(); }

int32_t jbnb_set_cpu_isa(int32_t isa) {
    return guarded(__func__, [&] { set_active_isa(isa); });
}

int32_t jbnb_set_num_threads(int32_t threads) {
    return guarded(__func__, [&] {
        if (threads < 0) invalid("threads must be >= 0 (0 = all hardware threads), got " + std::to_string(threads));
        set_num_threads(threads);
    });
}

int32_t jbnb_num_threads(void) { return num_threads(); }

int32_t jbnb_codebook(int32_t which, float *out) {
    return guarded(__func__, [&] {
        require_ptr(out, "out");
        const float *src = which == JBNB_NF4 ? NF4_CODE
                           : which == JBNB_FP4 ? FP4_CODE
                           : which == 8       ? dynamic_map()
                           : which == 9       ? unsigned_dynamic_map()
                                              : nullptr;
        if (src == nullptr)
            invalid("which must be 1 (FP4), 2 (NF4), 8 (dynamic map) or 9 (unsigned dynamic map), got " +
                    std::to_string(which));
        int count = which >= 8 ? 256 : 16;
        for (int i = 0; i < count; ++i) out[i] = src[i];
    });
}

} // extern "C"
