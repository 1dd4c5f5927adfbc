# Per-file ISA flags for the run-time dispatched CPU kernels. Each ISA file is compiled only when the compiler
# accepts its flags; dispatch.cpp is told which exist through SFTN_HAVE_AVX2 / SFTN_HAVE_AVX512.
include(CheckCXXCompilerFlag)

set(SFTNATIVE_AVX2_FLAGS -mavx2 -mfma -mf16c)
# GCC 12 warns about _mm512_undefined_* inside its own intrinsic headers: silence that noise for this file.
set(SFTNATIVE_AVX512_FLAGS -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c -Wno-uninitialized -Wno-maybe-uninitialized)

function(sftnative_add_isa_sources target)
  set(defs "")
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
    check_cxx_compiler_flag("-mavx2 -mfma -mf16c" SFTNATIVE_CXX_HAS_AVX2)
    check_cxx_compiler_flag("-mavx512f -mavx512bw -mavx512vl -mavx512dq" SFTNATIVE_CXX_HAS_AVX512)
    if(SFTNATIVE_CXX_HAS_AVX2)
      target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/src/cpu/kernels_avx2.cpp)
      set_source_files_properties(${PROJECT_SOURCE_DIR}/src/cpu/kernels_avx2.cpp
        PROPERTIES COMPILE_OPTIONS "${SFTNATIVE_AVX2_FLAGS}")
      target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/src/cpu/fused_avx2.cpp)
      set_source_files_properties(${PROJECT_SOURCE_DIR}/src/cpu/fused_avx2.cpp
        PROPERTIES COMPILE_OPTIONS "${SFTNATIVE_AVX2_FLAGS}")
      list(APPEND defs SFTN_HAVE_AVX2)
    endif()
    if(SFTNATIVE_CXX_HAS_AVX512)
      target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/src/cpu/kernels_avx512.cpp)
      set_source_files_properties(${PROJECT_SOURCE_DIR}/src/cpu/kernels_avx512.cpp
        PROPERTIES COMPILE_OPTIONS "${SFTNATIVE_AVX512_FLAGS}")
      target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/src/cpu/fused_avx512.cpp)
      set_source_files_properties(${PROJECT_SOURCE_DIR}/src/cpu/fused_avx512.cpp
        PROPERTIES COMPILE_OPTIONS "${SFTNATIVE_AVX512_FLAGS}")
      list(APPEND defs SFTN_HAVE_AVX512)
    endif()
  endif()
  set_source_files_properties(${PROJECT_SOURCE_DIR}/src/cpu/dispatch.cpp PROPERTIES COMPILE_DEFINITIONS "${defs}")
  set_source_files_properties(${PROJECT_SOURCE_DIR}/src/cpu/fused_cpu.cpp PROPERTIES COMPILE_DEFINITIONS "${defs}")
  message(STATUS "sft-native CPU kernels: scalar ${defs}")
endfunction()
