# Decides whether the CUDA library is built. SFTNATIVE_CUDA: AUTO (default: build when nvcc is found), ON (fail
# without nvcc), OFF. Architectures default to sm_80 and sm_90 (A100, H100/H200) plus PTX for newer GPUs;
# override with -DCMAKE_CUDA_ARCHITECTURES=...
set(SFTNATIVE_CUDA "AUTO" CACHE STRING "Build the CUDA kernels: AUTO, ON or OFF")
set_property(CACHE SFTNATIVE_CUDA PROPERTY STRINGS AUTO ON OFF)

set(SFTNATIVE_WITH_CUDA OFF)
if(NOT SFTNATIVE_CUDA STREQUAL "OFF")
  if(NOT DEFINED ENV{CUDACXX} AND NOT CMAKE_CUDA_COMPILER)
    find_program(SFTNATIVE_NVCC NAMES nvcc PATHS /usr/local/cuda/bin /opt/cuda/bin)
    if(SFTNATIVE_NVCC)
      set(CMAKE_CUDA_COMPILER "${SFTNATIVE_NVCC}" CACHE FILEPATH "CUDA compiler" FORCE)
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(SFTNATIVE_WITH_CUDA ON)
  elseif(SFTNATIVE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "sft-native: SFTNATIVE_CUDA=ON but no working nvcc was found; install the CUDA toolkit "
                        "or set CUDACXX, or use -DSFTNATIVE_CUDA=AUTO/OFF")
  else()
    message(STATUS "sft-native: nvcc not found, building the CPU library only")
  endif()
endif()

if(SFTNATIVE_WITH_CUDA AND NOT CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "80-real;90-real;90-virtual")
endif()
