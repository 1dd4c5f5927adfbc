#pragma once

#include "kernels_isa.hpp"

namespace sftn {
int best_isa();                 // best jbnb_isa this CPU and build support
int active_isa();               // the one in use
void set_active_isa(int isa);   // throws Error(EUNSUPPORTED) above best_isa()
const isa::Table &kernels();    // table of the active ISA
void set_num_threads(int t);    // 0 = hardware concurrency
} // namespace sftn
