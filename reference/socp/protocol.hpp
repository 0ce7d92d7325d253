// SOCP v1.3 in the protocol registry.
#pragma once

#include "core/registry.hpp"

namespace msglab::socp {

void register_protocol(Registry& registry);

}  // namespace msglab::socp
