// SecMsg's entry in the protocol registry and its plants.
#pragma once

#include "core/registry.hpp"

namespace msglab::secmsg {
void register_protocol(Registry& registry);
}
