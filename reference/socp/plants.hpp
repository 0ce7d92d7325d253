// SOCP's plants (the backdoor catalogue of PROTOCOLS.md section 2.9), each
// off by default and only reachable through --plant.
#pragma once

#include "core/registry.hpp"

namespace msglab::socp {

void register_plants(Registry& r);

}  // namespace msglab::socp
