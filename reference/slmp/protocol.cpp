#include "slmp/protocol.hpp"

#include "slmp/codec.hpp"
#include "slmp/session.hpp"
#include "slmp/stream.hpp"

namespace msglab::slmp {

namespace {

// The server's machine as a connecting client sees it. Every rejection
// closes the connection (SLMP has no error message), and so does the answer
// to the one request a connection carries.
SessionModel server_model() {
    const std::string idle = state_name(State::idle), key = state_name(State::awaiting_key),
                      request = state_name(State::awaiting_request), closed = state_name(State::closed);
    SessionModel m;
    m.role = "server";
    m.states = {idle, key, request, closed};
    m.initial = idle;
    m.closed = closed;
    auto& t = m.transitions;
    t.push_back({idle, "connect", key, "", ""});
    for (const auto& s : {key, request}) {
        t.push_back({s, "malformed", closed, "", ""});
        // A unit still incomplete is waited for (the exchange has a deadline).
        t.push_back({s, "partial", s, "", ""});
        t.push_back({s, "partial", closed, "", ""});
        t.push_back({s, "desync", "*", "", ""});
        t.push_back({s, "close", closed, "", ""});
    }
    t.push_back({key, "CLIENT_KEY", request, "SERVER_KEY", ""});
    // A changed PEM is most often no key at all; now and then still one.
    t.push_back({key, "CLIENT_KEY!mutated", closed, "", ""});
    t.push_back({key, "CLIENT_KEY!mutated", request, "SERVER_KEY", ""});
    t.push_back({key, "CLIENT_KEY!trailing", "*", "", ""});
    t.push_back({key, "CLIENT_KEY!weak-key", closed, "", "WEAK_DH_PUBLIC_ACCEPTED"});
    t.push_back({key, "REQUEST*", closed, "", ""});
    t.push_back({request, "REQUEST", closed, "RESPONSE", ""});
    // The token is taken, then the connection closes: the answer may or may
    // not leave first.
    t.push_back({request, "REQUEST!trailing", "*", "", ""});
    t.push_back({request, "REQUEST!mutated", closed, "", ""});
    t.push_back({request, "REQUEST!tampered", closed, "", "MAC_NOT_VERIFIED"});
    t.push_back({request, "REQUEST!stale", closed, "", "STALE_MESSAGE_ACCEPTED"});
    t.push_back({request, "REQUEST!replay", closed, "", "REPLAY_ACCEPTED"});
    t.push_back({request, "REQUEST!reflection", closed, "", "REFLECTION_ACCEPTED"});
    t.push_back({request, "CLIENT_KEY*", closed, "", "LATE_HANDSHAKE_ACCEPTED"});
    return m;
}

// A P-256 SPKI whose point is not on the curve, in the original's layout.
Bytes off_curve_pem(std::uint8_t fill) {
    Bytes der = unhex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    der.push_back(0x04);
    der.insert(der.end(), 64, fill);
    std::string b64 = crypto::base64_encode(der);
    return to_bytes(std::string(kPemBegin) + b64.substr(0, 64) + "\n" + b64.substr(64) + "\n-----END PUBLIC KEY-----\n");
}

FuzzFields fuzz_fields() {
    FuzzFields f;
    // Everything else lies inside base64 text: the whole unit is the field.
    f.key_share = "slmp.pem";
    f.mac = "slmp.token";
    f.weak_key_shares = {off_curve_pem(0x00), off_curve_pem(0x01), off_curve_pem(0xff)};
    // The original reads each unit with one recv(1024): plaintexts of 703
    // and 704 bytes make tokens on either side of it (with the live
    // client's 66-byte "token;user;" prefix counted in).
    std::size_t prefix = 64 + 2 + std::string(kDefaultUser).size();
    f.payload_sizes = {max_plaintext(kOriginalUnitBytes) - prefix, max_plaintext(kOriginalUnitBytes) - prefix + 1};
    f.max_payload = ServerConfig{}.max_plaintext - prefix;
    return f;
}

}  // namespace

void register_protocol(Registry& r) {
    r.add_protocol(ProtocolInfo{
        "slmp",
        "SLMP",
        "tcp",
        kDefaultPort,
        "One request per TCP connection, unframed: P-256 ECDH with PEM keys, HKDF-SHA256, Fernet, a "
        "SHA-256(user || secret) bearer token",
        "PROTOCOLS.md section 3",
        {kKeyLogLabel},
        // Forced by the wire format (section 3.8), so reported about the protocol.
        {"UNAUTHENTICATED_KEY_EXCHANGE", "STATIC_BEARER_TOKEN"},
        {"slmp.pem", "slmp.token"},
        detect,
        make_stream_codec,
        make_live_client,
        server_model(),
        fuzz_fields(),
        {},  // the server answers every request
        {},  // no probes: scenarios speak its messages directly
        {},
    });

    r.add_plant({plant::static_server_key, "slmp", 323, Severity::high,
                 "one server key pair for the whole process, as the original",
                 "The original generates its ECDH key once per process. Every session's key then depends on the "
                 "client's key alone: there is no forward secrecy, and a recorded client key plus token sent again "
                 "on a new connection derive the same Fernet key and are accepted.",
                 {"STATIC_KEY_REUSE", "REPLAY_ACCEPTED"}});
    r.add_plant({plant::no_ttl, "slmp", 294, Severity::medium, "Fernet tokens are opened without a TTL, as the original",
                 "The original calls Fernet.decrypt without a TTL, so a token of any age (or from the future) is "
                 "accepted; with a static key a year-old capture still replays.",
                 {"STALE_MESSAGE_ACCEPTED"}});
    r.add_plant({plant::serial_server, "slmp", 410, Severity::medium,
                 "one client at a time, without a deadline, as the original",
                 "The original serves connections one after another in a single thread and waits forever in "
                 "recv(). One client that connects and stops sending blocks every other client.",
                 {"SINGLE_PEER_BLOCKS_OTHERS"}});
    r.add_plant({plant::crash_on_bad_input, "slmp", 248, Severity::high,
                 "the whole server dies on any bad input, as the original",
                 "Any exception in the original (a bad PEM, another curve, a bad token, a wrong field count, "
                 "non-UTF-8) ends the server process. With this plant the reference server stops serving everyone "
                 "after the first bad unit.",
                 {"ENDPOINT_DIES_ON_BAD_INPUT"}});
    r.add_plant({plant::unit_overflow, "slmp", 193, Severity::high,
                 "off-by-one in a fixed 1024-byte unit buffer (memory safety)",
                 "Each unit is assembled in a buffer of the original's recv size whose bound check is off by one: a "
                 "unit over 1024 bytes writes one byte past the end and is then refused. Nothing visible happens "
                 "without a sanitizer beyond the refusal; ASan reports a heap-buffer-overflow. Meant to be found by "
                 "fuzzing.",
                 {"CRASH"}});
}

}  // namespace msglab::slmp
