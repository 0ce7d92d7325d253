#include "secmsg/protocol.hpp"

#include "secmsg/codec.hpp"
#include "secmsg/session.hpp"
#include "secmsg/stream.hpp"

namespace msglab::secmsg {

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
