// SLMP's entry in the protocol registry and its plants.
#pragma once

#include "core/registry.hpp"

namespace msglab::slmp {
void register_protocol(Registry& registry);
}
