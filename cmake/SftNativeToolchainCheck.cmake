# Fails with ONE clear message when no C++ compiler exists, before project() would print its long probe log.
# Included before project(); honours CMAKE_CXX_COMPILER / CXX when the user set them.
if(NOT CMAKE_CXX_COMPILER AND NOT DEFINED ENV{CXX})
  find_program(SFTNATIVE_CXX_PROBE NAMES c++ g++ clang++)
  if(NOT SFTNATIVE_CXX_PROBE)
    message(FATAL_ERROR
      "sft-native: no C++17 compiler found (looked for c++, g++, clang++ on PATH). "
      "Install one (Debian/Ubuntu: apt-get install g++; Fedora: dnf install gcc-c++) "
      "or build without the native kernels: mvn -Dnative.skip=true ...")
  endif()
endif()
