// Every built-in protocol, one line each.
#include "core/registry.hpp"
#include "secmsg/protocol.hpp"
#include "slmp/protocol.hpp"
#include "csmp/protocol.hpp"
#include "spchat/protocol.hpp"
#include "socp/protocol.hpp"
#include "signal/protocol.hpp"

namespace msglab {

const Registry& Registry::builtin() {
    static const Registry registry = [] {
        Registry r;
        register_builtin_protocols(r);
        return r;
    }();
    return registry;
}

void register_builtin_protocols(Registry& registry) {
    secmsg::register_protocol(registry);
    slmp::register_protocol(registry);
    // Before CSMP: decode asks each protocol's detect() in this order, and
    // CSMP's claims any request for "/", where SOCP's WebSocket lives.
    socp::register_protocol(registry);
    signal::register_protocol(registry);
    csmp::register_protocol(registry);
    spchat::register_protocol(registry);
}

}  // namespace msglab
