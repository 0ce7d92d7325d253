#include "signal/protocol.hpp"

#include "signal/app.hpp"
#include "signal/plants.hpp"
#include "signal/probes.hpp"
#include "signal/ratchet.hpp"
#include "signal/stream.hpp"

namespace msglab::signal {

namespace {

ProtocolInfo protocol_info() {
    ProtocolInfo p;
    p.id = "signal";
    p.name = "Signal-style chat (X3DH and Double Ratchet over Socket.IO)";
    p.transport = "http+ws";
    p.default_port = kDefaultPort;
    p.summary =
        "rohankalbag's Signal-style messenger: a relay and key directory over Engine.IO v4 / Socket.IO v5 "
        "(long-polling, then WebSocket), X25519 identity and signed prekeys with an Ed25519 signing key, X3DH "
        "without one-time prekeys, and a Double Ratchet with AES-256-CBC and HMAC-SHA256";
    p.spec = "PROTOCOLS.md section 5";
    p.keylog_labels = {kKeylogX3dhSk, kKeylogMessageKey};
    p.field_paths = {kFieldPaths.begin(), kFieldPaths.end()};
    p.detect = detect;
    p.make_codec = make_stream_codec;
    // What the protocol itself forces (scenarios/signal/design-*.yaml).
    p.design_findings = {"FIRST_MESSAGE_REPLAYABLE", "UNAUTHENTICATED_KEY_EXCHANGE"};
    p.probes = probes();
    // The client checks talk to an echo bot run beside the server; its keys
    // go to a directory file in the run's folder.
    p.hunt_serve_options = {"--bot", kDefaultBot};
    p.server_files = {{"db", "--db", "signal-keys.db"}};
    return p;
}

}  // namespace

void register_protocol(Registry& r) {
    r.add_protocol(protocol_info());
    register_plants(r);
}

}  // namespace msglab::signal
