// The Signal-style chat's plants (the weaknesses of PROTOCOLS.md section 5.9
// that the original has), each off by default and only reachable through
// --plant.
#pragma once

#include "core/registry.hpp"

namespace msglab::signal {

void register_plants(Registry& r);

}  // namespace msglab::signal
