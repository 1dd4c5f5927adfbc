// The shared library exports exactly what the header declares: every SFTN_API name in sftnative_bnb.h resolves
// with dlsym (the CUDA-only bitsandbytes names only in libsftnative_cuda), and calls through dlsym work.
#include <dlfcn.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "check.hpp"

int main(int argc, char **argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: test_abi <header> <library> [cuda]\n");
        return 2;
    }
    bool cuda_lib = argc > 3 && std::string(argv[3]) == "cuda";
    std::ifstream in(argv[1]);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    // Section 1b (CUDA drop-ins) lies between these two markers.
    size_t cuda_begin = text.find("1b. bitsandbytes drop-ins, CUDA");
    size_t cuda_end = text.find("2. Extensions");
    CHECK(cuda_begin != std::string::npos && cuda_end != std::string::npos);

    void *lib = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    CHECK_MSG(lib != nullptr, dlerror() ? dlerror() : "dlopen failed");
    if (!lib) return check::finish("test_abi");

    std::regex decl(R"(\nSFTN_API\s+(?:const\s+)?\w+\s*\*?\s*(\w+)\()");
    int count = 0;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), decl); it != std::sregex_iterator(); ++it) {
        std::string name = (*it)[1];
        size_t pos = size_t(it->position(0));
        bool cuda_only = pos > cuda_begin && pos < cuda_end;
        void *sym = dlsym(lib, name.c_str());
        ++count;
        if (cuda_only && !cuda_lib)
            CHECK_MSG(sym == nullptr, name + " must not be exported by the CPU library");
        else
            CHECK_MSG(sym != nullptr, name + " is declared but not exported");
    }
    CHECK_MSG(count > 60, "parsed only " + std::to_string(count) + " declarations");
    // libstdc++ is linked statically and not re-exported
    CHECK(dlsym(lib, "_ZSt9terminatev") == nullptr || cuda_lib);
    auto version = reinterpret_cast<int32_t (*)()>(dlsym(lib, "jbnb_abi_version"));
    CHECK(version && version() == 1);
    auto has_cuda = reinterpret_cast<int32_t (*)()>(dlsym(lib, "jbnb_has_cuda"));
    CHECK(has_cuda && has_cuda() == (cuda_lib ? 1 : 0));
    std::printf("%d declarations checked in %s\n", count, argv[2]);
    return check::finish("test_abi");
}
