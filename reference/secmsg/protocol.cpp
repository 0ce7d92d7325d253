#include "secmsg/protocol.hpp"

#include "secmsg/codec.hpp"
#include "secmsg/session.hpp"
#include "secmsg/stream.hpp"

namespace msglab::secmsg {

namespace {

// The responder's machine as a connecting client sees it: the states are
// Session's (state_name), the transitions what session.cpp does with each
// input. Every rejection closes the connection, because SecMsg has no error
// message (README, Sessions).
SessionModel responder_model() {
    const std::string idle = state_name(State::idle), waiting = state_name(State::awaiting_request),
                      keyed = state_name(State::established), closed = state_name(State::closed);
    SessionModel m;
    m.role = "responder";
    m.states = {idle, waiting, keyed, closed};
    m.initial = idle;
    m.closed = closed;
    auto& t = m.transitions;
    t.push_back({idle, "connect", waiting, "", ""});
    for (const auto& s : {waiting, keyed}) {
        t.push_back({s, "malformed", closed, "", ""});
        // A frame still incomplete is waited for, unless its announced
        // length is over the bound, which closes at once.
        t.push_back({s, "partial", s, "", ""});
        t.push_back({s, "partial", closed, "", ""});
        t.push_back({s, "desync", "*", "", ""});
        t.push_back({s, "close", closed, "", ""});
        t.push_back({s, "huge-length", closed, "", "UNBOUNDED_LENGTH"});
    }
    t.push_back({waiting, "HANDSHAKE_REQUEST", keyed, "HANDSHAKE_RESPONSE", ""});
    // The handshake carries no MAC: a changed timestamp within the window or
    // a non-zero HMAC field is still a valid request; other changes break
    // the hash or the framing.
    t.push_back({waiting, "HANDSHAKE_REQUEST!mutated", keyed, "HANDSHAKE_RESPONSE", ""});
    t.push_back({waiting, "HANDSHAKE_REQUEST!mutated", closed, "", ""});
    // The first message is taken, then the rest judged: the answer may or
    // may not leave before the close.
    t.push_back({waiting, "HANDSHAKE_REQUEST!trailing", "*", "", ""});
    t.push_back({waiting, "HANDSHAKE_REQUEST!weak-key", closed, "", "WEAK_DH_PUBLIC_ACCEPTED"});
    t.push_back({waiting, "HANDSHAKE_REQUEST!stale", closed, "", "STALE_MESSAGE_ACCEPTED"});
    t.push_back({waiting, "HANDSHAKE_RESPONSE*", closed, "", ""});
    t.push_back({waiting, "REGULAR_MESSAGE*", closed, "", ""});
    // Echoing is the endpoint's choice, so a REGULAR may be answered or not.
    t.push_back({keyed, "REGULAR_MESSAGE", keyed, "", ""});
    // Re-MACed after a change (a timestamp moved within the window, say).
    t.push_back({keyed, "REGULAR_MESSAGE!mutated", "*", "", ""});
    t.push_back({keyed, "REGULAR_MESSAGE!trailing", "*", "", ""});
    t.push_back({keyed, "REGULAR_MESSAGE!replay", closed, "", "REPLAY_ACCEPTED"});
    t.push_back({keyed, "REGULAR_MESSAGE!reflection", closed, "", "REFLECTION_ACCEPTED"});
    t.push_back({keyed, "REGULAR_MESSAGE!tampered", closed, "", "MAC_NOT_VERIFIED"});
    t.push_back({keyed, "REGULAR_MESSAGE!stale", closed, "", "STALE_MESSAGE_ACCEPTED"});
    t.push_back({keyed, "HANDSHAKE*", closed, "", "LATE_HANDSHAKE_ACCEPTED"});
    return m;
}

FuzzFields fuzz_fields() {
    FuzzFields f;
    f.length = "secmsg.length";
    f.type = "secmsg.type";
    f.timestamp = "secmsg.timestamp";
    f.key_share = "secmsg.payload";
    f.mac = "secmsg.hmac";
    // 0, 1, p-1 and p: what public_value_ok refuses.
    const Bytes& p = crypto::dh14::prime();
    Bytes zero(crypto::dh14::kValueBytes, 0), one = zero, p_minus_1 = p;
    one.back() = 1;
    p_minus_1.back() -= 1;  // p is odd
    f.weak_key_shares = {zero, one, p_minus_1, p};
    // The original reads each packet with one recv(8192): packets of 8192
    // and 8193 bytes sit on its edge.
    f.payload_sizes = {kOriginalRecvBytes - kOverheadBytes, kOriginalRecvBytes - kOverheadBytes + 1};
    f.max_payload = Limits{}.max_payload;
    return f;
}

}  // namespace

void register_protocol(Registry& r) {
    r.add_protocol(ProtocolInfo{
        "secmsg",
        "SecMsg (SegMSG v0.1)",
        "tcp",
        kDefaultPort,
        "Peer-to-peer over raw TCP: DH group 14, SHA-256, a non-standard AES in CTR mode, HMAC-SHA256",
        "PROTOCOLS.md section 4",
        {kKeyLogLabel, kKeyLogLabelShared},
        // Forced by the wire format (section 4.7), so reported about the protocol.
        {"KEYSTREAM_REUSE", "PLAINTEXT_HASH_EXPOSED", "UNAUTHENTICATED_KEY_EXCHANGE", "NONSTANDARD_CIPHER"},
        {"secmsg.magic", "secmsg.type", "secmsg.length", "secmsg.original_hash", "secmsg.timestamp",
         "secmsg.payload", "secmsg.hmac"},
        detect,
        make_stream_codec,
        make_live_client,
        responder_model(),
        fuzz_fields(),
        {"--echo"},
        {},  // no probes: scenarios speak its messages directly
        {},
    });

    r.add_plant({plant::accept_weak_dh, "secmsg", 20, Severity::high,
                 "accepts DH public values 0, 1, p-1 and values not below p",
                 "The original never validates the peer's DH value. With this plant the endpoint derives keys "
                 "from y = 1 (or 0, p-1), so an attacker who rewrites both handshake values knows every key.",
                 {"WEAK_DH_PUBLIC_ACCEPTED"}});
    r.add_plant({plant::no_freshness, "secmsg", 294, Severity::high,
                 "no timestamp window and no replay cache",
                 "The original never checks the timestamp and keeps no record of packets seen, so a recorded "
                 "packet can be sent again in the same session, or long after, and is accepted.",
                 {"REPLAY_ACCEPTED", "STALE_MESSAGE_ACCEPTED"}});
    r.add_plant({plant::accept_reflection, "secmsg", 301, Severity::high,
                 "accepts its own packets sent back to it",
                 "Both directions share one key and nothing marks the direction, so a peer's own REGULAR packet "
                 "reflected to it verifies. The clean endpoint remembers what it sent and refuses it.",
                 {"REFLECTION_ACCEPTED"}});
    r.add_plant({plant::skip_hmac, "secmsg", 345, Severity::critical,
                 "does not verify the HMAC of REGULAR packets",
                 "Any REGULAR packet is decrypted and delivered whatever its HMAC, including 32 zero bytes, so "
                 "an attacker can forge messages by flipping ciphertext bits.",
                 {"MAC_NOT_VERIFIED"}});
    r.add_plant({plant::late_handshake, "secmsg", 372, Severity::high,
                 "accepts a handshake packet after keys exist and re-keys from it",
                 "A HANDSHAKE_* injected into a keyed session replaces the keys with ones derived from the "
                 "injected public value; with y = 1 the attacker knows the new keys.",
                 {"LATE_HANDSHAKE_ACCEPTED"}});
    r.add_plant({plant::recv_overflow, "secmsg", 193, Severity::high,
                 "off-by-one in the 8192-byte receive buffer (memory safety)",
                 "Each packet is copied into a fixed 8192-byte buffer whose bound check is off by one: a packet "
                 "of exactly 8193 bytes writes one byte past the end. Nothing visible happens without a "
                 "sanitizer; ASan reports a heap-buffer-overflow. Meant to be found by fuzzing.",
                 {"CRASH"}});
}

}  // namespace msglab::secmsg
