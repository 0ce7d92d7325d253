// SP-SimpleChat in the protocol and plant registries.
#pragma once

#include "core/registry.hpp"

namespace msglab::spchat {

void register_protocol(Registry& registry);

}  // namespace msglab::spchat
