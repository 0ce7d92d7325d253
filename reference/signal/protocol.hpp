// Signal-style chat in the protocol registry.
#pragma once

#include "core/registry.hpp"

namespace msglab::signal {

void register_protocol(Registry& registry);

}  // namespace msglab::signal
