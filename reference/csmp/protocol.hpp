// CSMP in the protocol and plant registries.
#pragma once

#include "core/registry.hpp"

namespace msglab::csmp {

void register_protocol(Registry& registry);

}  // namespace msglab::csmp
