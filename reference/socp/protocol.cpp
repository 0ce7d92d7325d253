#include "socp/protocol.hpp"

#include "socp/plants.hpp"
#include "socp/probes.hpp"
#include "socp/stream.hpp"
#include "socp/wire.hpp"

namespace msglab::socp {

namespace {

ProtocolInfo protocol_info() {
    ProtocolInfo p;
    p.id = "socp";
    p.name = "SOCP v1.3 overlay";
    p.transport = "ws";
    p.default_port = kDefaultPort;
    p.summary =
        "The cohort's Secure Overlay Chat Protocol: a mesh of servers and their users over WebSocket, one JSON "
        "envelope {type, from, to, ts, payload, sig} per text message, RSA-4096 OAEP for end-to-end payloads and "
        "PSS signatures on frames and content";
    p.spec = "PROTOCOLS.md section 2.8";
    // Users' private keys, so that decode reads their direct messages.
    p.keylog_labels = {kKeyLogLabel};
    p.field_paths = {kFieldPaths.begin(), kFieldPaths.end()};
    p.detect = detect;
    p.make_codec = make_stream_codec;
    // What the v1.3 wire format itself forces (scenarios/socp/design-*.yaml).
    p.design_findings = {"UNAUTHENTICATED_SERVER_JOIN", "UNAUTHENTICATED_KEY_EXCHANGE", "UNBOUNDED_RSA_PAYLOAD"};
    p.probes = probes();
    // RSA-4096 key generation takes seconds: the audit's servers use a cached key.
    p.hunt_serve_options = {"--cached-key", "server-a"};
    return p;
}

}  // namespace

void register_protocol(Registry& r) {
    r.add_protocol(protocol_info());
    register_plants(r);
}

}  // namespace msglab::socp
